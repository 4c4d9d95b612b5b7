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
