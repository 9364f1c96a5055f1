"""Ctrl-C (SIGINT) and SIGTERM as a polite request to stop: the run ends after the current
iteration and still writes its image and record. A second signal stops at once."""

from __future__ import annotations

import signal
import sys
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
        print(f"\n{name} received: stopping after this iteration and saving the image and "
              f"record (send it again to quit at once)", file=self.stream or sys.stderr, flush=True)

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
