"""Offline hand-offs: bounded (back-pressure, never a drop), errors surface, early stop ends."""

import threading
import time

import pytest

from streamnst.core.workers import WriteBehind, read_ahead


def test_read_ahead_keeps_order_and_holds_the_producer_back():
    made = []

    def produce():
        for i in range(50):
            made.append(i)
            yield i

    items = read_ahead(produce(), size=3)
    assert next(items) == 0
    time.sleep(0.3)
    assert len(made) <= 1 + 3 + 1  # the one taken, a full queue, one waiting to be put
    assert list(items) == list(range(1, 50))  # nothing dropped


def test_read_ahead_raises_the_producers_error_and_stops_early():
    def broken():
        yield 1
        raise ValueError("bad frame")

    with pytest.raises(ValueError, match="bad frame"):
        list(read_ahead(broken()))
    endless = read_ahead(iter(int, 1), size=2, name="endless")
    next(endless)
    endless.close()
    time.sleep(0.3)
    assert not any(t.name == "endless" for t in threading.enumerate())


def test_write_behind_writes_everything_and_raises_a_writer_error():
    out = []
    w = WriteBehind(out.append, size=2)
    for i in range(20):
        w.put(i)
    w.close()
    assert out == list(range(20))

    def fail(item):
        raise OSError(28, "No space left on device")

    w = WriteBehind(fail, size=2)
    w.put(1)
    with pytest.raises(OSError, match="No space"):
        for i in range(100):  # the error reaches the producer, which never blocks for good
            w.put(i)
        w.close()
