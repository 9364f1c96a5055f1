"""The tests' only time limit: against a hang, never a speed figure.

A process a test starts may run many times slower on a loaded 2-core machine than on a quiet
one, so every wait is for an event (a line, a file, a state, the process's end) and this
limit only stops a test that would otherwise wait for ever. Speed belongs to benchmarks/.
"""

#: Seconds after which a test's process or wait counts as hung (quiet machine: under a minute).
HANG_SECONDS = 1800
