import os
import signal
import time

import pytest

from streamnst.core.signals import stop_requested


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_sets_the_event_and_raises_nothing(sig):
    before = signal.getsignal(sig)
    with stop_requested() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), sig)
        deadline = time.monotonic() + 5
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)  # the handler runs between bytecodes of the main thread
        assert stop.is_set()
    assert signal.getsignal(sig) is before


def test_ctrl_c_outside_raises_again():
    # Python's own handler first: a run started in the background (`cmd &`) inherits
    # SIGINT ignored, and restoring that would be right but raise nothing
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with stop_requested():
        pass
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


def test_without_restore_later_signals_are_ignored():
    before = signal.getsignal(signal.SIGTERM)
    try:
        with stop_requested(restore=False):
            pass
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)  # would end the test run if not ignored
        time.sleep(0.2)
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGINT, signal.default_int_handler)
