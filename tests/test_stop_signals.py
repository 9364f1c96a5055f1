"""SIGINT and SIGTERM become a stop request; a second one stops at once; handlers are restored."""

import os
import signal

import pytest

from nst_utils.stop_signals import StopSignals


@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_is_a_request_and_a_second_one_interrupts(number, code, capsys):
    before = signal.getsignal(number)
    with StopSignals() as stop:
        assert not stop.requested()
        os.kill(os.getpid(), number)
        assert stop.requested() and stop.signal_number == number and stop.exit_code() == code
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), number)
    assert signal.getsignal(number) is before
    assert "stopping after this iteration" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_second_signal_dropped_inside_a_finalizer_still_stops_the_wait(capsys):
    # Raised by the handler inside a weakref callback, the KeyboardInterrupt is printed as
    # 'Exception ignored' and dropped: the run then went on to its end instead of quitting.
    import time
    import weakref

    class Thing:
        pass

    def finalizer():
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs between this callback's bytecodes
        for _ in range(100_000):
            pass

    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # the first: a request
        thing = Thing()
        weakref.finalize(thing, finalizer)
        del thing  # the second signal lands in the finalizer
        assert stop.quitting
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            stop.run(lambda: time.sleep(30))
        assert time.monotonic() - started < 30  # raised by the wait, not after the work


def test_a_second_signal_while_waiting_is_raised_by_the_wait_itself():
    # While the main thread waits, the handler only marks the stop: the wait raises it, so it
    # can never land inside code the wait runs (a weakref callback, a __del__).
    import threading

    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        seen = {}

        def work():
            while not stop._waiting:
                pass
            seen["waiting"] = True
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(30)

        with pytest.raises(KeyboardInterrupt):
            stop.run(work)
        assert seen == {"waiting": True} and stop.quitting
        stop.interrupt_taken()
