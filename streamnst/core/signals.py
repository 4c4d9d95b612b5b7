"""Ctrl+C and SIGTERM as a request to stop, not an exception.

Python raises KeyboardInterrupt wherever the main thread happens to be: inside a queue's
lock, a progress bar's refresh or a library's cleanup. Some of those places swallow it or
are left half-done, and a process then hangs instead of finishing its file. Long loops
that must end cleanly (the live filter, an offline render) take the signal as an event
they check between frames instead.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_requested(restore: bool = True) -> Iterator[threading.Event]:
    """While inside, SIGINT and SIGTERM set the yielded event. On leaving, the handlers
    that were there before come back, or with `restore=False` the signals are ignored
    from then on: the process is finishing, and Python puts the default handlers (which
    kill at once) back during its own shutdown, where a late signal would lose the exit
    status. Call from the main thread only."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    for sig in _SIGNALS:
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if restore else signal.SIG_IGN)
