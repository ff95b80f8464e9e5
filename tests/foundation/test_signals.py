"""StopRequest: a signal becomes a flag read at a safe point; handlers are put back; re-armable."""
import os
import signal

import pytest

from foundation.signals import StopRequest


def test_a_signal_sets_the_flag_and_the_handlers_are_put_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest((signal.SIGTERM,)) as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before


def test_arm_takes_the_signal_back_from_a_library_and_exit_restores_the_first_handler():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest((signal.SIGTERM,)) as stop:
        signal.signal(signal.SIGTERM, lambda *a: None)  # as ray.init does
        stop.arm()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_second_interrupt_stops_at_once():
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
