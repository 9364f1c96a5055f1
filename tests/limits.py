"""The tests' only time limit: against a hang, never a speed figure.

A process a test starts may run many times slower on a loaded 2-core machine than on a quiet
one, so every wait is for an event (a line, a file, a state, the process's end) and this
limit only stops a test that would otherwise wait for ever. Speed belongs to benchmarks/.
"""

#: Seconds after which a test's process or wait counts as hung (quiet machine: under a minute).
HANG_SECONDS = 1800


def json_child(args: list, env: dict) -> dict:
    """Run `python ARGS` from the project's folder with `env`; it must exit 0 within HANG_SECONDS.
    Returns its last line of stdout, read as JSON (how the tests' child processes report)."""
    import json
    import subprocess
    import sys

    from nst_utils.config import PROJECT_ROOT

    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=HANG_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
