"""Latest-value hand-off between threads: the newest frame wins, older ones are counted."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item. `put` overwrites (counting a drop if it was never taken);
    `get` waits for an item newer than the last one taken. Never grows a queue."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._fresh = False
        self._closed = False
        self.put_count = 0
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._cond:
            if self._fresh:
                self.dropped += 1
            self._item, self._fresh = item, True
            self.put_count += 1
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """The newest untaken item, or None on timeout or once closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._fresh or self._closed, timeout):
                return None
            if not self._fresh:
                return None
            self._fresh = False
            return self._item

    def close(self) -> None:
        """Wake every waiter; further gets return what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class Handoff(Generic[T]):
    """One item at a time from a producer to a consumer that must see every item, in
    order (the two halves of the live chain): `put` waits while the previous item is
    untaken, and `drain` waits until the consumer has `finished` everything handed over."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._busy = False  # taken, not yet finished
        self._closed = False

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Hand `item` over; False on timeout or once closed (the item was not taken)."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._full or self._closed, timeout) \
                    or self._closed:
                return False
            self._item, self._full = item, True
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The next item, or None on timeout or once closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout) \
                    or not self._full:
                return None
            item, self._item, self._full, self._busy = self._item, None, False, True
            self._cond.notify_all()
            return item

    def finished(self) -> None:
        """The consumer is done with the item it took last."""
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every item handed over is finished (or the hand-off is closed)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (not self._full and not self._busy) or self._closed, timeout)

    @property
    def closed_and_empty(self) -> bool:
        with self._cond:
            return self._closed and not self._full

    def close(self) -> None:
        """Refuse further puts; the consumer gets what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
