"""Ctrl-C (SIGINT) and SIGTERM as a polite request to stop: the run ends after the current
iteration and still writes its image and record. A second signal stops at once; any later one
is ignored, so that quitting at once is never itself cut short.

Python runs signal handlers in the main thread, between bytecodes, so a long TensorFlow call
there would hold them back until the iteration ends: `StopSignals.run` runs the work in a
worker thread and keeps the main thread waiting in short, interruptible steps.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: How long the main thread sleeps at a time while the worker runs.
WAIT_SECONDS = 0.1


class StopSignals:
    """Context manager: while active, SIGINT/SIGTERM set `signal_number` instead of killing.

    `requested()` is the should_stop hook for training.optimize; the second signal raises
    KeyboardInterrupt in the main thread once (`quitting` is then True), later ones do nothing;
    whoever catches it calls `interrupt_taken()`.
    exit_code() is 128 + the first signal's number (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, stream=None):
        self.signal_number = None
        self.quitting = False
        self._undelivered = False  # the second signal's KeyboardInterrupt, until it is caught
        self._waiting = False  # the main thread is in `wait`, which raises it
        self._finishing = False  # the work is done: a second signal raises nothing (`finishing`)
        self.stream = stream
        self._previous = {}
        self._outcome, self._ended = {}, None

    def requested(self) -> bool:
        return self.signal_number is not None

    def exit_code(self) -> int:
        return 128 + int(self.signal_number or signal.SIGINT)

    def _handle(self, number, frame):
        if self.quitting:
            return  # quitting at once already: its record is being written
        if self.signal_number is not None:  # the second signal: stop now
            self.quitting = True
            if self._finishing:
                return  # the work is done; what is left ends the run as done in a moment
            self._undelivered = True
            if not self._waiting:
                raise KeyboardInterrupt
            return  # `wait` raises it, in its own frame rather than in whatever code runs now
        self.signal_number = number
        name = signal.Signals(number).name
        print(
            f"\n{name} received: stopping after this iteration and saving the image and "
            f"record (send it again to quit at once)",
            file=self.stream or sys.stderr,
            flush=True,
        )

    def run(self, work: Callable[[], object]):
        """work() in a worker thread; its result, or its exception re-raised here.

        A second signal raises KeyboardInterrupt here within a fraction of a second, while the
        worker may still be inside a long iteration (it is a daemon thread: it does not hold
        the process open); `wait()` then waits for it when its end is near.
        """
        outcome, ended = self._outcome, self._ended = {}, threading.Event()

        def target():
            try:
                outcome["value"] = work()
            except BaseException as exc:  # handed to the main thread below
                outcome["error"] = exc
            finally:
                ended.set()

        threading.Thread(target=target, name="nst-run", daemon=True).start()
        return self.wait()

    def finishing(self) -> None:
        """The work is done and only its record is left to write: from now on a second signal
        interrupts nothing (raised into that code, plots included, it could land in a weakref
        callback and be dropped with an 'Exception ignored' traceback)."""
        self._finishing = True

    def interrupt_taken(self) -> None:
        """The second signal's KeyboardInterrupt has been caught: `wait` need not raise it."""
        self._undelivered = False

    def wait(self):
        """The worker's result (its exception re-raised) once it has ended. An Event, not the
        thread's join: a KeyboardInterrupt inside join() can leave the thread taken for ended.

        The second signal's KeyboardInterrupt is raised here, within WAIT_SECONDS, not by the
        handler: raised there it can land inside a weakref callback or a __del__ that the wait
        runs, where Python prints 'Exception ignored' and drops it. One the handler raised
        elsewhere and that was dropped is raised here too, until `interrupt_taken`."""
        self._waiting = True
        try:
            while not self._ended.wait(WAIT_SECONDS) or self._undelivered:
                if self._undelivered:  # the quit comes first, even when the work has just ended
                    self._undelivered = False
                    raise KeyboardInterrupt
        finally:
            self._waiting = False
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["value"]

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
        return False


def ignore_from_now() -> None:
    """Ignore stop signals for the rest of the process: its work is done and recorded, and a
    signal in the interpreter's shutdown would kill it or print a traceback from atexit."""
    if threading.current_thread() is threading.main_thread():
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
