"""Learn a new painting while the filter runs (`live --style PAINTING.jpg`, a painting
dropped on the viewer page).

The filter goes on with the style it has; a background thread finds the bank style
nearest the painting and swaps it in, then fits the painting's modulation
(training/quick.py) on the bundled frames plus the live camera's own, swapping in the
improved network every few seconds, so the user watches the painting being learnt on
their own picture. When the time is up the style is saved in the user's style directory
under a name made from the painting's content hash, so `streamnst styles` lists it and
the same painting is used at once next time. The training takes a share of the CPU
(`DUTY`) and sleeps the rest, so the filter keeps its frames. A failure or a cancel
keeps the current style and writes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from streamnst.core.errors import InputError, StreamNSTError
from streamnst.engine.stylizer import Stylizer
from streamnst.media.imageio import IMAGE_SUFFIXES
from streamnst.nets.checkpoint_io import user_dir

log = logging.getLogger(__name__)

#: share of the wall clock the learning trains for; it sleeps the rest
DUTY = 0.5
SWAP_S = 5.0  # how often the improved style is swapped in
CAMERA_EVERY_S = 2.0  # how often a live frame joins the training frames
MAX_CAMERA = 24  # live frames kept (the oldest goes first)
MINUTES = 4.0  # of training, as `train --quick`


def is_painting(spec: str) -> bool:
    """Whether a --style value is an image file (a painting to learn), not a style."""
    path = Path(spec).expanduser()
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def learnt_path(painting: Path, name: str | None = None) -> Path:
    """Where the style learnt from `painting` lives: the user's style directory, named
    from `name` (default: the file's name; letters and digits only) and the file's content
    hash."""
    digest = hashlib.sha256(painting.read_bytes()).hexdigest()[:10]
    stem = re.sub(r"[^a-z0-9]+", "_", (name or painting.stem).lower()).strip("_")[:40] \
        or "painting"
    return user_dir() / f"{stem}_{digest}.pth"


@dataclass(frozen=True)
class Progress:
    """What the viewer page and the status line show of a learning."""

    painting: str
    state: str  # starting | learning | done | failed | cancelled
    fraction: float
    nearest: str | None
    style: str | None  # the saved style's name, once done
    error: str | None


class Learner:
    """One painting learnt in a background thread for a live pipeline."""

    def __init__(self, pipeline, painting: str | Path, minutes: float = MINUTES,
                 name: str | None = None, out: Path | None = None) -> None:
        self.pipeline = pipeline
        self.painting = Path(painting)
        self.minutes = minutes
        self.out = out or learnt_path(self.painting, name)
        self.name = self.out.stem  # the style's name in every list: unique per painting
        self.state, self.fraction = "starting", 0.0
        self.nearest: str | None = None
        self.error: str | None = None
        self.saved: Path | None = None
        self._cancel = threading.Event()
        self.thread = threading.Thread(target=self._main, name="learner", daemon=True)

    def start(self) -> Learner:
        self.thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def progress(self) -> Progress:
        return Progress(self.name, self.state, round(self.fraction, 3), self.nearest,
                        self.out.stem if self.saved else None, self.error)

    # ----- the thread -------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._learn()
        except StreamNSTError as exc:
            self._failed(str(exc))
        except Exception as exc:  # a learning never takes the filter down with it
            self._failed(f"{type(exc).__name__}: {exc}")

    def _failed(self, message: str) -> None:
        self.state, self.error = "failed", message
        log.warning("learning %s failed (%s); the current style stays", self.name, message)

    def _learn(self) -> None:
        from streamnst.training.quick import QuickTrainer, plan

        torch.set_num_threads(1)  # this thread's torch work: one core at most
        quick = plan(self.painting, self.out, device="cpu")
        self.nearest = quick.nearest
        if self._cancel.is_set():
            self.state = "cancelled"
            return
        self.pipeline.switch_style(quick.config.init_from)  # BANK:NEAREST, at once
        config = replace(quick.config, name=self.name)
        trainer = QuickTrainer(config, quick.vgg)
        self.state = "learning"
        last_swap = last_frame = time.monotonic()

        def on_step(step: int, fraction: float, losses: dict) -> None:
            nonlocal last_swap, last_frame
            self.fraction = fraction
            now = time.monotonic()
            if now - last_frame >= CAMERA_EVERY_S:
                self._add_camera_frame(trainer)
                last_frame = now
            if now - last_swap >= SWAP_S:
                self._offer(trainer)
                last_swap = time.monotonic()

        written = trainer.run_for(60.0 * self.minutes, self._paced(on_step),
                                  cancel=self._cancel.is_set)
        if written is None:
            self.state = "cancelled"
            return
        self._offer(trainer)  # the final network (the saved file holds the same)
        self.saved, self.fraction, self.state = written, 1.0, "done"
        log.info("learnt %s: saved as %s", self.name, written)

    def _paced(self, on_step):
        """on_step, then a sleep as long as DUTY asks for after the step just taken."""
        last = [time.monotonic()]

        def paced(step: int, fraction: float, losses: dict) -> None:
            on_step(step, fraction, losses)
            took = time.monotonic() - last[0]
            self._cancel.wait(took * (1.0 - DUTY) / DUTY)
            last[0] = time.monotonic()

        return paced

    def _add_camera_frame(self, trainer) -> None:
        frame = self.pipeline.last_frame
        if frame is not None:
            trainer.sampler.add(frame.image, MAX_CAMERA)

    def _offer(self, trainer) -> None:
        """The network as it stands, painting the next frames (the blend carries it over),
        unless the user has picked another style meanwhile: the learning goes on, and its
        result is saved, but the user's choice stays on screen."""
        if self.pipeline.style_name not in (self.name, self.nearest):
            return
        checkpoint = trainer.snapshot()  # as the file will be
        running = self.pipeline.stylizer
        self.pipeline.styles.offer(Stylizer(checkpoint, running.settings))


class Learning:
    """At most one painting learns at a time in a pipeline: a second gets a clear message."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.current: Learner | None = None
        self._lock = threading.Lock()

    def start(self, painting: str | Path, minutes: float = MINUTES,
              name: str | None = None) -> Learner:
        with self._lock:
            self.check_free()
            self.current = Learner(self.pipeline, painting, minutes, name).start()
            return self.current

    def check_free(self) -> None:
        """InputError ("one painting at a time") while a painting is being learnt."""
        busy = self.current
        if busy is not None and busy.running:
            raise InputError(f"{busy.name} is still being learnt "
                             f"({round(100 * busy.fraction)}%); one painting at a time: "
                             "wait for it to finish")

    def progress(self) -> dict | None:
        current = self.current
        return None if current is None else current.progress().__dict__

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel a learning under way (nothing is written) and wait for its thread."""
        current = self.current
        if current is not None and current.running:
            current.cancel()
            current.thread.join(timeout)


def check_painting(path: Path) -> None:
    """A painting given as --style must be an image that decodes."""
    from streamnst.media.imageio import read_image, resize_painting

    try:
        resize_painting(read_image(path), 64)  # refuses one too small to learn from
    except InputError as exc:
        raise InputError(f"--style {path}: {exc}") from None
