"""The in-order hand-off between the live chain's two halves (core/slots.py)."""

from __future__ import annotations

import threading
import time

from streamnst.core.slots import Handoff


def test_every_item_arrives_in_order_and_put_waits_for_the_consumer():
    h: Handoff[int] = Handoff()
    got: list[int] = []

    def consume() -> None:
        while (item := h.get(timeout=1.0)) is not None:
            time.sleep(0.01)  # a slow second half: the producer must wait, not drop
            got.append(item)
            h.finished()

    thread = threading.Thread(target=consume)
    thread.start()
    t0 = time.monotonic()
    for i in range(20):
        assert h.put(i, timeout=1.0)
    h.close()
    thread.join(5)
    assert got == list(range(20))
    assert time.monotonic() - t0 > 0.15  # it waited for the consumer
    assert not h.put(99, timeout=0.1)  # closed: refused, not queued
    assert h.closed_and_empty


def test_drain_waits_until_the_item_taken_is_finished():
    h: Handoff[str] = Handoff()
    assert h.put("frame", timeout=1.0)
    assert not h.drain(timeout=0.05)  # handed over, not taken
    assert h.get(timeout=1.0) == "frame"
    assert not h.drain(timeout=0.05)  # taken, still being finished
    h.finished()
    assert h.drain(timeout=0.5)
