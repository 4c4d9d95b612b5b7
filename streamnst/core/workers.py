"""Bounded hand-offs for offline work: decode ahead and encode behind in threads.

Offline renders must not drop frames, so these queues block the producer when full
(back-pressure) instead of replacing items as the live path's LatestSlot does. Errors
in a worker thread are raised in the caller; stopping early stops the worker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(items: Iterable[T], size: int = 4, name: str = "read-ahead") -> Iterator[T]:
    """Iterate `items` in a thread, at most `size` items ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # raised in the consumer
            put(_Failure(exc))
            return
        put(_END)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class WriteBehind(Generic[T]):
    """Call `write(item)` in a thread, at most `size` items behind the producer."""

    def __init__(self, write: Callable[[T], None], size: int = 4,
                 name: str = "write-behind") -> None:
        self._write = write
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is None:  # after a failure, drain so the producer never blocks
                try:
                    self._write(item)
                except BaseException as exc:
                    self._error = exc

    def put(self, item: T) -> None:
        """Queue one item (blocks while the queue is full); a writer error is raised here."""
        if self._error is not None:
            raise self._error
        self._q.put(item)

    def close(self) -> None:
        """Wait until everything queued is written; raise the writer's error, if any."""
        self._q.put(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error
