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
