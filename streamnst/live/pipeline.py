"""The live pipeline: source thread -> inference thread (the chain up to the network) ->
finish thread (shading, blend, faces) -> sink threads.

Latency first: the inference thread always takes the newest captured frame (older
ones are dropped and counted by the source's slot). The two halves of the stylizer's
chain run in threads of their own, one frame apart, so the network of frame N+1 runs
while frame N is finished: each half gets a core instead of one thread doing both in
turn while torch's second thread competes with it (docs/benchmarks.md). The finish
thread hands its output to every sink's own slot. Worker exceptions are kept and raised
by `stop()`. A failure on one frame reuses the last good output (counted, logged at a
limited rate); many in a row stop the pipeline.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streamnst.core.errors import InputError, OutputError
from streamnst.core.frame import Frame
from streamnst.core.slots import Handoff
from streamnst.core.stages import StageTimes
from streamnst.engine.autoscale import AutoScale
from streamnst.engine.faces import FaceKeeper
from streamnst.engine.stylizer import Painting, Stylizer
from streamnst.engine.temporal import Blender, BlendSettings
from streamnst.live.learner import Learning
from streamnst.live.sinks import Sink
from streamnst.live.sources import Source
from streamnst.live.stats import LiveStats, SinkProblem, Stats, cores, percentile, rss_mb
from streamnst.live.style_switch import StyleSwitcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _InFlight:
    """A frame between the inference and finish threads."""

    frame: Frame
    stylizer: Stylizer  # the one that began it finishes it
    painting: Painting | None  # None: its first half failed (the last output is reused)
    t0: float  # when its first half began (monotonic)
    begun_ms: float  # how long the first half took


class Pipeline:
    """Run a live stylised stream until stopped, a frame or time limit, or the source ends."""

    MAX_CONSECUTIVE_FAILURES = 30
    OPEN_WAIT_S = 8.0  # how long start() waits for the outputs to connect
    STOP_S = 10.0  # how long stop() gives the outputs, all together, to finish

    def __init__(self, source: Source, stylizer: Stylizer, sinks: list[Sink],
                 blend: BlendSettings | None = None, max_frames: int | None = None,
                 duration: float | None = None,
                 stylizer_factory: Callable[[str], Stylizer] | None = None,
                 auto_scale: bool = False, target_fps: float | None = None) -> None:
        """`auto_scale` adapts the working scale so frames keep up with `target_fps`
        (default: the source's rate, at most 30; see autoscale.py)."""
        self.source = source
        self.stylizer = stylizer
        self.sinks = list(sinks)
        self.blender = Blender(blend)
        self.faces = FaceKeeper(background=True)  # detects only while keep-face is on
        self.max_frames = max_frames
        self.duration = duration
        self.auto_scale = auto_scale
        self.target_fps = target_fps
        self.autoscaler: AutoScale | None = None
        self.sink_problems: list[SinkProblem] = []
        self.stats = Stats()
        self.stages = StageTimes()
        self._share_stages(stylizer)
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.styles = StyleSwitcher(lambda: self.stylizer, stylizer_factory)
        self.learning = Learning(self)  # a painting being learnt (live/learner.py)
        self.last_frame: Frame | None = None  # the newest frame taken (the learner reads it)
        self._pending_blend: BlendSettings | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._handoff: Handoff[_InFlight] = Handoff()
        self._failures = 0  # frames failed in a row
        self._last_out: np.ndarray | None = None  # reused where a frame fails
        self._last_log = 0.0
        self.rss_start = rss_mb()

    # ----- control (thread-safe, for keys, the CLI and the WebRTC control channel) ----
    def switch_style(self, style: str) -> threading.Thread | None:
        """Paint `style` from the next frame on; never stalls (live/style_switch.py).
        Returns the loading thread where a style file must be loaded in the background."""
        return self.styles.switch(style)

    def set_mix(self, other: str, amount: float) -> None:
        """Mix `amount` (0..1) of bank style `other` into the current one."""
        self.styles.set_mix(other, amount)

    @property
    def style_name(self) -> str:
        return self.styles.style_name

    @property
    def switching(self) -> str | None:
        return self.styles.switching

    @property
    def switch_error(self) -> str | None:
        return self.styles.error

    def set_blend(self, settings: BlendSettings) -> None:
        with self._lock:
            self._pending_blend = settings

    @property
    def blend_settings(self) -> BlendSettings:
        """The blend in effect, or the one about to be at the next frame."""
        with self._lock:
            return self._pending_blend or self.blender.settings

    def set_scale(self, scale: float | str) -> None:
        """A fixed scale (a user's explicit choice: adaptation stops) or "auto"."""
        if scale == "auto":
            self.auto_scale = True
            self._start_autoscale()
            return
        with self._lock:
            self.stylizer.set_scale(float(scale))  # refused before anything else changes
            self.auto_scale, self.autoscaler = False, None

    def set_keep_colors(self, on: bool) -> None:
        """The input's colours with the painting's light and strokes, from the next frame."""
        with self._lock:
            self.stylizer.set_keep_colors(on)

    def set_keep_face(self, amount: float | None) -> None:
        """Let `amount` (0..1) of faces show through from the next frame; None: the style's
        own amount."""
        if amount is not None and not 0.0 <= amount <= 1.0:
            raise InputError(f"keep_face must be between 0 and 1, got {amount}")
        with self._lock:
            self.stylizer.set_keep_face(amount)

    def _start_autoscale(self) -> None:
        """Adapt from the ladder step nearest the current scale."""
        scaler = AutoScale(self.target_fps or min(self.source.fps or 30.0, 30.0))
        now = self.stylizer.settings.scale
        scaler.index = min(range(len(scaler.ladder)), key=lambda i: abs(scaler.ladder[i] - now))
        with self._lock:
            self.autoscaler = scaler
            self.stylizer.set_scale(scaler.scale)

    # ----- lifecycle --------------------------------------------------------------------
    def start(self, stop: threading.Event | None = None) -> Pipeline:
        """Start the source and every output, each opening in its own thread; wait up to
        OPEN_WAIT_S for them (or until `stop` is set): one still connecting then goes on
        connecting on its own and gets frames once it can."""
        self.source.start()
        width, height = self.source.wait_for_size(stop=stop)
        for sink in self.sinks:
            sink.audio = self.source.audio  # outputs that carry sound take it from here
            sink.start(width, height, self.source.fps)
        deadline = time.monotonic() + self.OPEN_WAIT_S
        for sink in self.sinks:
            while not sink.settled.wait(0.05):
                if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                    break
        if not self._take_open_failures():
            self.source.stop()
            reasons = "; ".join(p.message for p in self.sink_problems)
            raise OutputError(f"no output could be opened ({reasons}); add another --output, "
                              "such as a .mp4 file or webrtc")
        self.stats = Stats()
        if self.auto_scale:
            self._start_autoscale()
        self._handoff = Handoff()
        self._threads = [threading.Thread(target=self._main, name="inference", daemon=True),
                         threading.Thread(target=self._finish_main, name="finish",
                                          daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def _share_stages(self, stylizer: Stylizer) -> None:
        """One StageTimes for every part of this pipeline: the whole budget in one place."""
        for part in (self.source, stylizer, *self.sinks):
            part.stages = self.stages

    def _take_open_failures(self) -> bool:
        """Move the outputs that could not open to `sink_problems` (e.g. no virtual camera
        driver: told once, the others go on); False when no output is left."""
        with self._lock:
            failed = [sink for sink in self.sinks if sink.open_error is not None]
            if failed:
                for sink in failed:
                    self.sink_problems.append(SinkProblem(sink.name, str(sink.open_error)))
                    log.info("%s", sink.open_error)  # said by whoever reads sink_problems
                self.sinks = [sink for sink in self.sinks if sink.open_error is None]
            return bool(self.sinks)

    def _main(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._handoff.close()  # the finish thread ends once it has the last frame

    def _finish_main(self) -> None:
        try:
            self._finish_loop()
        except BaseException as exc:
            self._fail(exc)
        finally:
            self.done.set()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            log.error("pipeline stopped: %s", exc)
        self.stop_event.set()
        self._handoff.close()

    def _apply_pending(self) -> None:
        new, reset = self.styles.take()
        with self._lock:
            blend, self._pending_blend = self._pending_blend, None
        if new is None and blend is None:
            return
        # the frame in flight finishes with the blend and style it began with
        self._handoff.drain()
        if new is not None:
            new.set_scale(self.stylizer.settings.scale)  # a live change outlasts a style
            new.set_keep_colors(self.stylizer.settings.keep_colors)
            if self.stylizer.settings.keep_face is not None:  # else the new style's own
                new.set_keep_face(self.stylizer.settings.keep_face)
            new.stages = self.stages
            self.stylizer = new
            if reset:
                self.blender.reset()
            log.info("style is now %s", new.name)
        if blend is not None:
            self.blender.update(blend)

    def _loop(self) -> None:
        """The inference thread: the newest frame, its chain up to the network."""
        while not self.stop_event.is_set():
            if self._limits_reached():
                return
            frame = self.source.slot.get(timeout=0.1)
            if frame is None:
                if self.source.ended.is_set():
                    self.source.check()
                    return
                continue
            self._apply_pending()
            self.last_frame = frame
            stylizer, t0 = self.stylizer, time.monotonic()
            try:
                painting = stylizer.begin(frame.image, self.blender)
            except Exception as exc:  # cv2.error and the like too: one frame never ends it
                self._frame_failed(frame, exc)
                painting = None
            item = _InFlight(frame, stylizer, painting, t0, (time.monotonic() - t0) * 1000.0)
            while not self._handoff.put(item, timeout=0.1):
                if self.stop_event.is_set():
                    return

    def _finish_loop(self) -> None:
        """The finish thread: each frame's second half, in order, then the sinks."""
        while True:
            item = self._handoff.get(timeout=0.1)
            if item is None:
                if self._handoff.closed_and_empty:
                    return
                continue
            try:
                self._finish(item)
            finally:
                self._handoff.finished()

    def _finish(self, item: _InFlight) -> None:
        t1 = time.monotonic()
        image = None
        if item.painting is not None:
            try:
                image = item.stylizer.finish(item.painting, self.blender, self.faces)
                self._failures = 0
            except Exception as exc:
                self._frame_failed(item.frame, exc)
        image = self._last_out if image is None else image
        if image is None or (self.max_frames is not None
                             and self.stats.frames_out >= self.max_frames):
            return
        self._last_out = image
        self._emit(item.frame.with_image(image), item.t0)
        # the halves overlap: a frame costs the slower of the two
        self._adapt_scale(max(item.begun_ms, (time.monotonic() - t1) * 1000.0))

    def _frame_failed(self, frame: Frame, exc: Exception) -> None:
        self._failures += 1
        self.stats.frame_failures += 1
        self._log_limited(f"frame {frame.index} failed ({exc}); reusing last output")
        if self._failures >= self.MAX_CONSECUTIVE_FAILURES:
            raise exc

    def _emit(self, out: Frame, t0: float) -> None:
        now = time.monotonic()
        s = self.stats
        s.infer_ms.append((now - t0) * 1000.0)
        s.process_latencies.append(now - out.timestamp)
        if len(s.infer_ms) > 20000:
            del s.infer_ms[:10000], s.process_latencies[:10000]
        if not all(sink.settled.is_set() for sink in self.sinks) or \
                any(sink.open_error for sink in self.sinks):
            if not self._take_open_failures():  # the last output still connecting failed
                reasons = "; ".join(p.message for p in self.sink_problems)
                raise OutputError(f"no output could be opened ({reasons})")
        for sink in self.sinks:
            sink.offer(out)
        s.frames_out += 1
        if s.first_out is None:
            s.first_out, s.cpu_at_first = now, time.process_time()
        s.last_out = now

    def _adapt_scale(self, frame_ms: float) -> None:
        with self._lock:
            scaler = self.autoscaler
        if scaler is None:
            return
        new = scaler.observe(frame_ms)
        if new is not None:
            with self._lock:
                if self.autoscaler is not scaler:  # the user fixed a scale meanwhile
                    return
                self.stylizer.set_scale(new)
            log.info("auto scale: %.2f (median frame over or well under %.0f ms)", new,
                     scaler.budget_ms)

    def _limits_reached(self) -> bool:
        if self.max_frames is not None and self.stats.frames_out >= self.max_frames:
            return True
        return self.duration is not None and \
            time.monotonic() - self.stats.started >= self.duration

    def _log_limited(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_log > 5.0:
            log.warning(message)
            self._last_log = now

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def stop(self, timeout: float = 1.0) -> LiveStats:
        """Stop every thread (joined with timeouts) and raise a worker's error, if any."""
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout)
        self.source.stop(timeout)
        self.faces.close()
        self.learning.stop()
        # a style still loading is waited for: the process exiting under a thread that is
        # inside torch's C++ aborted it ("terminate called without an active exception")
        for loader in self.styles.loaders:
            loader.join(5.0)
        # every output finishes in its own thread, all at once, within one deadline: a
        # recording is completed whatever a stalled server does
        for sink in self.sinks:
            sink.slot.close()
        deadline, sink_errors = time.monotonic() + self.STOP_S, []
        for sink in self.sinks:
            if not sink.settled.is_set():  # still connecting: nothing of it to finish (it
                continue  # closes itself if it ever connects), so it is not waited for
            if not sink.join(deadline):
                self.sink_problems.append(SinkProblem(sink.name, (
                    f"{sink.name}: did not finish within {self.STOP_S:g} s; left behind")))
            if sink.error is not None:
                sink_errors.append(sink.error)
        summary = self.summary()
        if self.error is not None:
            raise self.error
        if sink_errors:
            raise sink_errors[0]
        return summary

    def run(self) -> LiveStats:
        """start(), wait for the end (Ctrl+C included), stop(); returns the summary."""
        self.start()
        try:
            while not self.wait(0.1):
                pass
        finally:
            summary = self.stop()
        return summary

    # ----- statistics ---------------------------------------------------------------------
    def summary(self) -> LiveStats:
        self._take_open_failures()
        s, scaler = self.stats, self.autoscaler
        elapsed = (s.last_out - s.first_out) if s.first_out and s.last_out else 0.0
        sink_lat = [v for sink in self.sinks for v in sink.latencies]
        lat = sink_lat or s.process_latencies
        return LiveStats(
            frames_out=s.frames_out,
            fps=(s.frames_out - 1) / elapsed if elapsed > 0 else 0.0,
            latency_p50_ms=percentile(lat, 0.5) * 1000.0,
            latency_p95_ms=percentile(lat, 0.95) * 1000.0,
            infer_ms_median=statistics.median(s.infer_ms) if s.infer_ms else 0.0,
            dropped=self.source.dropped,
            captured=self.source.captured,
            source_fps=self.source.fps,
            frame_failures=s.frame_failures,
            style=self.stylizer.name,
            mix_style=self.styles.mix[0] if self.styles.mix else None,
            mix=self.styles.mix[1] if self.styles.mix else 0.0,
            keep_colors=self.stylizer.settings.keep_colors,
            keep_face=self.stylizer.keep_face,
            blend=self.blender.settings.mode,
            strength=self.blender.settings.strength,
            scale=self.stylizer.settings.scale,
            auto_scale=scaler is not None,
            target_fps=scaler.target_fps if scaler else None,
            scale_changes=scaler.changes if scaler else 0,
            max_side=self.stylizer.settings.max_side,
            device=str(self.stylizer.device),
            dtype=self.stylizer.dtype_name,
            sinks={sink.name: {"sent": sink.sent, "dropped": sink.dropped}
                   for sink in self.sinks},
            sink_problems=[p.message for p in self.sink_problems],
            stages_ms=self.stages.summary(),
            rss_mb_start=self.rss_start,
            rss_mb_end=rss_mb(),
            cpu_ms_per_frame=((time.process_time() - s.cpu_at_first) * 1000.0
                              / (s.frames_out - 1) if s.frames_out > 1 else 0.0),
            cores=cores(),
        )
