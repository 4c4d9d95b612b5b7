"""Frame sources: each a thread that keeps only the newest frame in a LatestSlot.

Spec strings pick a source: `webcam[:N]`, `screen[:N]` or `screen:N@X,Y,W,H`,
`demo` (bundled clip), `pattern[:WxH[@FPS]]` (a moving test pattern), a video
file (played at its native rate, looping) or an image file.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from streamnst.core.audio import AudioFeed
from streamnst.core.errors import InputError, StreamNSTError
from streamnst.core.frame import Frame, check_image
from streamnst.core.slots import LatestSlot
from streamnst.core.stages import StageTimes
from streamnst.live.outputs import OutputContext
from streamnst.media.demo import DEMO_NAME, demo_clip
from streamnst.media.imageio import is_image_path, read_image
from streamnst.media.video import VideoReader

log = logging.getLogger(__name__)


class Source:
    """Base class: subclasses implement `_run` (capture until the stop event is set).

    `slot` holds the newest frame; `error` keeps an exception that ended the thread,
    re-raised by `check()`; `ended` is set when a finite source ran out.
    """

    name = "source"

    def __init__(self) -> None:
        self.slot: LatestSlot[Frame] = LatestSlot()
        self.stop_event = threading.Event()
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self.fps: float = 30.0
        self.size: tuple[int, int] | None = None  # (width, height) once known
        self.audio: AudioFeed | None = None  # the source's sound, where it has some
        self._index = 0
        self._thread: threading.Thread | None = None
        self.stages = StageTimes()  # the pipeline hands in its own

    def start(self) -> Source:
        self._thread = threading.Thread(target=self._main, name=f"source-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # surfaced by check() / the pipeline
            self.error = exc
        finally:
            self.ended.set()
            self.slot.close()

    def _run(self) -> None:
        raise NotImplementedError

    def emit(self, image: np.ndarray) -> None:
        """Publish a captured picture (copied out of any borrowed buffer)."""
        image = check_image(np.ascontiguousarray(image), f"{self.name} frame")
        self.size = (image.shape[1], image.shape[0])
        self.slot.put(Frame(image, index=self._index, timestamp=time.monotonic()))
        self._index += 1

    @property
    def captured(self) -> int:
        return self.slot.put_count

    @property
    def dropped(self) -> int:
        return self.slot.dropped

    def stop(self, timeout: float = 1.0) -> None:
        self.stop_event.set()
        self.slot.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def wait_for_size(self, timeout: float = 10.0,
                      stop: threading.Event | None = None) -> tuple[int, int]:
        """Block until the first frame is known (sinks need the size to open). A `stop`
        set meanwhile (Ctrl+C before anything began) raises KeyboardInterrupt."""
        deadline = time.monotonic() + timeout
        while self.size is None and time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                self.stop()
                raise KeyboardInterrupt
            if self.ended.is_set():
                self.check()
                raise InputError(f"{self.name}: ended before producing a frame")
            time.sleep(0.005)
        if self.size is None:
            raise InputError(f"{self.name}: no frame within {timeout:.0f} s")
        return self.size


def _pace(next_time: float, stop: threading.Event) -> float:
    """Sleep until `next_time` (monotonic) unless stopping; returns the time now."""
    delay = next_time - time.monotonic()
    if delay > 0:
        stop.wait(delay)
    return time.monotonic()


class VideoFileSource(Source):
    """Plays a video file at its native frame rate, looping by default."""

    def __init__(self, path: str | Path, loop: bool = True, speed: float = 1.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = self.path.name
        self.loop = loop
        self.speed = speed
        with VideoReader(self.path) as reader:  # validate now: a clear error before threads
            self.fps = float(reader.fps)
            self.size = (reader.width, reader.height)
            if reader.has_audio and speed == 1:  # sped-up sound would need stretching
                self.audio = AudioFeed()

    def _run(self) -> None:
        period = 1.0 / (self.fps * self.speed)
        next_time = time.monotonic()
        while not self.stop_event.is_set():
            shown = 0
            with VideoReader(self.path) as reader:
                items = reader.with_sound() if self.audio else \
                    ((image, None, 0.0) for image in reader)
                clock = None  # the monotonic time of the file's time 0, this pass
                while True:
                    with self.stages.time("capture"):  # decoding, for a file
                        image, sound, t = next(items, (None, None, 0.0))
                    if image is None and sound is None:
                        break
                    if self.stop_event.is_set():
                        return
                    clock = next_time - t if clock is None else clock
                    if sound is not None:  # it plays at its time on the file's clock
                        self.audio.publish(sound, clock + t)
                        continue
                    _pace(next_time, self.stop_event)
                    self.emit(image)
                    shown += 1
                    next_time = max(next_time + period, time.monotonic() - period)
            if not self.loop or shown == 0:
                return


class ImageSource(Source):
    """Repeats one image at a fixed rate (handy for tuning a style)."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        super().__init__()
        self.name = Path(path).name
        self.image = read_image(path)
        self.fps = fps
        self.size = (self.image.shape[1], self.image.shape[0])

    def _run(self) -> None:
        next_time = time.monotonic()
        while not self.stop_event.is_set():
            _pace(next_time, self.stop_event)
            self.emit(self.image)
            next_time += 1.0 / self.fps


class PatternSource(Source):
    """A moving synthetic pattern: a gradient with a coloured square sliding across."""

    def __init__(self, width: int = 640, height: int = 360, fps: float = 30.0,
                 frames: int | None = None, speed_px: int = 4) -> None:
        super().__init__()
        self.name = f"pattern {width}x{height}@{fps:g}"
        self.fps, self.frames, self.speed_px = fps, frames, speed_px
        self.size = (width, height)
        yy, xx = np.mgrid[0:height, 0:width]
        self._base = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                               np.full_like(xx, 96)], -1).astype(np.uint8)

    def picture(self, i: int) -> np.ndarray:
        img = self._base.copy()
        w, h = self.size
        s = max(4, min(w, h) // 4)
        x = (i * self.speed_px) % max(1, w - s)
        img[h // 3:h // 3 + s, x:x + s] = (240, 40, 40)
        return img

    def _run(self) -> None:
        next_time = time.monotonic()
        i = 0
        while not self.stop_event.is_set() and (self.frames is None or i < self.frames):
            _pace(next_time, self.stop_event)
            self.emit(self.picture(i))
            i += 1
            next_time += 1.0 / self.fps


class WebcamSource(Source):
    """An OpenCV camera. A camera that disappears is reopened every second; the
    pipeline keeps showing the last frame meanwhile."""

    def __init__(self, index: int | str = 0, width: int | None = 1280,
                 height: int | None = 720, fps: float | None = 30.0,
                 retry_s: float = 1.0) -> None:
        super().__init__()
        # an int is a local camera; a string is anything OpenCV opens as a live stream
        # (rtsp:// or http:// network cameras, a capture device path)
        self.index, self.req = index, (width, height, fps)
        self.name = f"webcam:{index}"
        self.retry_s = retry_s
        self.reopens = 0
        self._cap = self._open()
        if self._cap is None:
            raise InputError(f"webcam {index}: cannot be opened (is it connected and free?); "
                             "use --source demo or a video file")

    def _open(self):
        import cv2

        with quiet_opencv():
            cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            return None
        w, h, fps = self.req
        if w and h:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        self.fps = cap.get(cv2.CAP_PROP_FPS) or fps or 30.0
        actual = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        log.info("webcam %s: asked %sx%s@%s, got %dx%d@%.1f", self.index, w, h, fps, *actual,
                 self.fps)
        return cap

    def _run(self) -> None:
        import cv2

        cap = self._cap
        next_time = time.monotonic()
        while not self.stop_event.is_set():
            ok, bgr = cap.read() if cap is not None else (False, None)
            if ok:
                self.emit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                # a camera's read() already waits for the next frame; a stream that
                # answers at once must not flood the pipeline
                next_time = max(next_time + 1.0 / self.fps, time.monotonic() - 1.0)
                _pace(next_time, self.stop_event)
                continue
            log.warning("webcam %s: no frame; retrying in %.1f s", self.index, self.retry_s)
            if cap is not None:
                cap.release()
            self.stop_event.wait(self.retry_s)
            cap = self._open()
            self.reopens += 1
        if cap is not None:
            cap.release()


def _grabber():
    import mss

    return (getattr(mss, "MSS", None) or mss.mss)()


class ScreenSource(Source):
    """Screen capture with mss: a whole monitor or a region, paced to `fps`."""

    def __init__(self, monitor: int = 1, region: tuple[int, int, int, int] | None = None,
                 fps: float = 30.0) -> None:
        super().__init__()
        import importlib.util

        if importlib.util.find_spec("mss") is None:
            raise InputError("screen capture needs the 'mss' package: pip install mss")
        self.fps = fps
        self.name = f"screen:{monitor}"
        try:
            with _grabber() as grabber:
                monitors = grabber.monitors
        except Exception as exc:  # mss raises its own error types per platform
            raise InputError(f"screen capture is not available here ({exc}); is a display "
                             "set (DISPLAY)?") from None
        if not 0 <= monitor < len(monitors):
            raise InputError(f"screen {monitor} does not exist; monitors 1-{len(monitors) - 1}")
        mon = monitors[monitor]
        if region:
            x, y, w, h = region
            mon = {"left": mon["left"] + x, "top": mon["top"] + y, "width": w, "height": h}
        self.area = {k: mon[k] for k in ("left", "top", "width", "height")}
        self.size = (self.area["width"], self.area["height"])

    def _run(self) -> None:
        next_time = time.monotonic()
        with _grabber() as grabber:
            while not self.stop_event.is_set():
                _pace(next_time, self.stop_event)
                shot = np.asarray(grabber.grab(self.area))  # BGRA, borrowed buffer
                self.emit(shot[..., 2::-1].copy())
                next_time = max(next_time + 1.0 / self.fps, time.monotonic() - 1.0)


SourceFactory = Callable[[str, OutputContext], Source]
SOURCES: dict[str, SourceFactory] = {}


def register_source(scheme: str, factory: SourceFactory) -> None:
    """Make `scheme[:ARGS]` specs create sources with `factory(ARGS, context)`."""
    SOURCES[scheme] = factory


def _webcam(args: str, context: OutputContext) -> Source:
    return WebcamSource(int(args) if args.isdigit() else (args or 0))


def _webrtc(args: str, context: OutputContext) -> Source:
    from streamnst.live.webrtc_source import WebRTCSource  # aiortc loads only when asked for

    context.required_outputs.append("webrtc")  # the page the camera is sent from
    return WebRTCSource(context.webrtc_server())


def _screen(args: str, context: OutputContext) -> Source:
    m = re.fullmatch(r"(\d*)(?:@(\d+),(\d+),(\d+),(\d+))?", args)
    if not m:
        raise InputError(f"screen spec 'screen:{args}' must look like screen:1 or "
                         "screen:1@X,Y,W,H")
    region = tuple(int(v) for v in m.groups()[1:]) if m.group(2) else None
    return ScreenSource(int(m.group(1) or 1), region)


def _pattern(args: str, context: OutputContext) -> Source:
    m = re.fullmatch(r"(?:(\d+)x(\d+))?(?:@([\d.]+))?", args)
    if not m:
        raise InputError(f"pattern spec 'pattern:{args}' must look like pattern:640x360@30")
    w, h, fps = int(m.group(1) or 640), int(m.group(2) or 360), float(m.group(3) or 30)
    if not (2 <= w <= PATTERN_MAX_SIDE and 2 <= h <= PATTERN_MAX_SIDE and 1 <= fps <= 240):
        raise InputError(f"pattern:{args}: width and height must be 2 to {PATTERN_MAX_SIDE} "
                         "and the frame rate 1 to 240, e.g. pattern:640x360@30")
    return PatternSource(w, h, fps)


PATTERN_MAX_SIDE = 7680  # 8K: the largest frame a camera or screen gives


register_source("webcam", _webcam)
register_source("screen", _screen)
register_source("pattern", _pattern)
register_source(DEMO_NAME, lambda args, context: VideoFileSource(demo_clip()))
register_source("webrtc", _webrtc)


def open_source(spec: str, context: OutputContext | None = None) -> Source:
    """A Source (not yet started) for a spec string; see the module docstring."""
    scheme, _, args = spec.partition(":")
    if scheme in SOURCES and not Path(spec).exists():
        try:
            return SOURCES[scheme](args, context or OutputContext())
        except StreamNSTError:
            raise
        except ValueError as exc:
            raise InputError(f"bad source spec {spec!r}: {exc}") from None
    path = Path(spec).expanduser()
    if not path.exists():
        known = ", ".join(f"{s}[:...]" for s in SOURCES)
        raise InputError(f"source {spec!r} is neither a file nor one of: {known}")
    if path.is_dir():
        raise InputError(f"{spec}: is a folder; give a video or an image file in it")
    if is_image_path(path):
        return ImageSource(path)
    return VideoFileSource(path)


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log while probing cameras: a missing camera is expected, and
    we say so in one line of our own."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def default_source_spec() -> str:
    """`webcam` where a camera answers, else the bundled demo clip."""
    import cv2

    with quiet_opencv():
        cap = cv2.VideoCapture(0)
        ok = cap.isOpened()
        cap.release()
    return "webcam" if ok else DEMO_NAME
