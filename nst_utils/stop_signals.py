"""Ctrl-C (SIGINT) and SIGTERM as a polite request to stop: the run ends after the current
iteration and still writes its image and record. A second signal stops at once.

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

    `requested()` is the should_stop hook for training.optimize; exit_code() is 128 + the
    signal's number (130 for SIGINT, 143 for SIGTERM), as shells report it.
    """

    def __init__(self, stream=None):
        self.signal_number = None
        self.stream = stream
        self._previous = {}

    def requested(self) -> bool:
        return self.signal_number is not None

    def exit_code(self) -> int:
        return 128 + int(self.signal_number)

    def _handle(self, number, frame):
        if self.signal_number is not None:
            raise KeyboardInterrupt  # the second signal: stop now
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
        the process open).
        """
        outcome = {}

        def target():
            try:
                outcome["value"] = work()
            except BaseException as exc:  # handed to the main thread below
                outcome["error"] = exc

        worker = threading.Thread(target=target, name="nst-run", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(WAIT_SECONDS)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

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
