"""Which style the live filter paints the next frame with, and how a change gets there.

Two ways, and the caller never waits for either:
- a style of the running style's bank (nets/conditional.py), or a mix of two of them, is
  folded into a fresh network on the caller's thread: milliseconds, from the bank already
  in memory, ready for the very next frame;
- any other style file loads on a background thread and is swapped in when it is ready;
  a newer request drops an older one still loading.

The inference thread takes the result between frames (`take`), so a frame never sees a
half-changed network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from streamnst.core.errors import CheckpointError, InputError, StreamNSTError
from streamnst.engine.stylizer import Stylizer
from streamnst.nets.checkpoint_io import available_styles, bank_names

log = logging.getLogger(__name__)

#: a mix: (the other style, how much of it, 0..1)
Mix = tuple[str, float]


class StyleSwitcher:
    def __init__(self, running: Callable[[], Stylizer],
                 factory: Callable[[str], Stylizer] | None = None) -> None:
        self.running = running  # the stylizer the frames use now
        self.factory = factory  # name -> a loaded Stylizer (for styles outside the bank)
        self.switching: str | None = None  # a style loading in the background
        self.error: str | None = None  # why the last switch failed
        self.mix: Mix | None = None
        self._pending: Stylizer | None = None
        self._pending_reset = False
        self._request = 0  # the newest request; a load finishing after a newer one is dropped
        self._lock = threading.Lock()
        self._folding = threading.Lock()  # one fold at a time (keys and viewers at once)
        self.loaders: list[threading.Thread] = []

    # ----- what the frames get -----------------------------------------------------------
    def take(self) -> tuple[Stylizer | None, bool]:
        """The stylizer to paint the next frame with, if it changed, and whether the temporal
        blend starts over (a new file: yes; a change inside the bank: no, the blend carries
        the change over a few frames instead of cutting)."""
        with self._lock:
            new, self._pending = self._pending, None
            return new, self._pending_reset

    def base(self) -> Stylizer:
        with self._lock:
            return self._pending or self.running()

    @property
    def style_name(self) -> str:
        """The style in effect or about to be: loading, loaded and waiting, or running."""
        return self.switching or self.base().name

    def mixable(self) -> list[str]:
        """The styles the current one can be mixed with: the others of its bank."""
        base = self.base()
        if base.checkpoint.bank is None:
            return []
        return [n for n in bank_names(base.checkpoint.bank) if n != base.name]

    # ----- changes -------------------------------------------------------------------------
    def switch(self, style: str) -> threading.Thread | None:
        """Paint `style` from the next frame on (keeping the mix where its bank allows);
        returns the loading thread when a file must be loaded, None when it is in place."""
        with self._folding:
            new = self._fold(self.base(), style) if self._in_bank(style) else None
            if new is not None:
                self._offer(new, self._next_request(), reset=False)
                return None
        if self.factory is None:
            raise StreamNSTError("this pipeline was built without a way to load styles")
        request = self._next_request()
        self.switching = style
        thread = threading.Thread(target=self._load, args=(style, request),
                                  name="style-loader", daemon=True)
        thread.start()
        self.loaders = [t for t in self.loaders if t.is_alive()] + [thread]
        return thread

    def offer(self, new: Stylizer, reset: bool = False) -> None:
        """Paint with `new` (made elsewhere: a style being learnt) from the next frame; the
        blend carries the change over unless `reset`."""
        self._offer(new, self._next_request(), reset)

    def set_mix(self, other: str, amount: float) -> None:
        """Mix `amount` (0..1) of style `other` into the current style, from the next frame."""
        if not 0.0 <= amount <= 1.0:
            raise InputError(f"mix must be between 0 and 1, got {amount}")
        if self.switching:  # a style file is loading: it takes the mix when it lands
            self.mix = (other, amount)
            return
        with self._folding:
            base = self.base()
            if base.checkpoint.bank is None or base.settings.backend != "torch":
                raise InputError(f"{base.name} is a style file of its own: only styles of one "
                                 "bank mix (torch backend); pick a bank style first")
            new = base.restyled(base.name, (other, amount))
            self.mix = (other, amount)
            self._offer(new, self._next_request(), reset=False)

    # ----- inside ----------------------------------------------------------------------------
    def _in_bank(self, style: str) -> bool:
        """Whether `style` is to come from the running style's bank: the style index names
        that bank for it (a file of that name wins: it loads), or the index has no style of
        that name at all (a bank given by its path)."""
        bank = self.base().checkpoint.bank
        if bank is None:
            return False
        indexed = available_styles().get(style)
        return indexed is None or Path(indexed).resolve() == Path(bank).resolve()

    def _fold(self, base: Stylizer, style: str) -> Stylizer | None:
        """`style` painted by `base`'s bank with the current mix (dropped if the mix style is
        not in that bank); None if `style` is not in it."""
        try:
            return base.restyled(style, self._live_mix())
        except CheckpointError:  # the mix's other style is in another bank
            self.mix = None
            return base.restyled(style)
        except OSError:  # the bank file went away: a load says so clearly
            return None

    def _live_mix(self) -> Mix | None:
        return self.mix if self.mix and self.mix[1] > 0 else None

    def _next_request(self) -> int:
        with self._lock:
            self._request += 1
            return self._request

    def _offer(self, new: Stylizer | None, request: int, reset: bool,
               error: str | None = None) -> None:
        with self._lock:
            if request != self._request:
                return  # a newer change was asked for meanwhile: it wins
            if new is None:
                self.error = error
                log.warning("style switch failed: %s", error)
            else:
                self._pending, self._pending_reset, self.error = new, reset, None
            self.switching = None

    def _load(self, style: str, request: int) -> None:
        try:
            new = self.factory(style)
            if self._live_mix():  # a bank style loaded from its file takes the mix too
                new = self._fold(new, style) or new
        except Exception as exc:  # every failure is said (an OSError left it stuck)
            error = str(exc) if isinstance(exc, StreamNSTError) else \
                f"cannot load {style[:60]!r} ({type(exc).__name__}: {str(exc)[:200]})"
            self._offer(None, request, reset=True, error=error)
            return
        self._offer(new, request, reset=True)
