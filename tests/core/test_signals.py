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
    with stop_requested():
        pass
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
