"""Frame sinks: virtual camera, file, preview window, null. Each runs in its own
thread behind a LatestSlot, so a slow sink loses frames (counted) instead of
slowing the stylizer or the other sinks."""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av

from streamnst.core.atomic import atomic_path
from streamnst.core.audio import AudioFeed
from streamnst.core.errors import OutputError
from streamnst.core.frame import Frame
from streamnst.core.slots import LatestSlot
from streamnst.core.stages import StageTimes
from streamnst.live.outputs import OutputContext
from streamnst.media.video import VideoWriter, trim_fragmented_mp4

log = logging.getLogger(__name__)


class Sink:
    """Base class: subclasses implement open/send/close; the thread is shared."""

    name = "sink"

    def __init__(self) -> None:
        self.slot: LatestSlot[Frame] = LatestSlot()
        self.sent = 0
        self.latencies: list[float] = []  # capture -> sent, seconds (bounded)
        self.error: BaseException | None = None  # a failure after it opened
        self.open_error: OutputError | None = None  # why it could not open
        self.settled = threading.Event()  # open() has returned or failed
        self._thread: threading.Thread | None = None
        self.stages = StageTimes()  # the pipeline hands in its own
        self.audio: AudioFeed | None = None  # the source's sound (the pipeline hands it in)

    # -- to implement ---------------------------------------------------------------
    def open(self, width: int, height: int, fps: float) -> None:
        """Prepare for frames of this size; raise OutputError with advice if impossible."""

    def send(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; a file must be complete and valid afterwards."""

    # -- shared ---------------------------------------------------------------------
    def start(self, width: int, height: int, fps: float) -> Sink:
        """Open and run in a thread of its own: a server that stalls while this one connects
        holds up neither the other outputs nor the stop. `settled` is set once open() has
        returned; `open_error` then says why it could not open."""
        self._thread = threading.Thread(target=self._main, args=(width, height, fps),
                                        name=f"sink-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _main(self, width: int, height: int, fps: float) -> None:
        try:
            self.open(width, height, fps)
        except Exception as exc:  # any failure to open is this output's problem alone
            self.open_error = exc if isinstance(exc, OutputError) else OutputError(
                f"{self.name}: cannot open ({one_line(exc)})")
            log.debug("sink %s failed to open", self.name, exc_info=True)
            return
        finally:
            self.settled.set()
        try:
            self._run()
        except BaseException as exc:  # surfaced when the pipeline stops
            self.error = exc
            log.error("sink %s failed: %s", self.name, one_line(exc))
        finally:
            # closed here, in its own thread: a sink stuck in a write never holds up
            # the others' close (a recording is finished whatever a server does)
            try:
                self.close()
            except BaseException as exc:
                self.error = self.error or exc

    def _run(self) -> None:
        while True:
            frame = self.slot.get(timeout=0.5)
            if frame is None:
                if self.slot.closed:
                    return
                continue
            with self.stages.time(f"send:{self.name}"):
                self.send(frame)
            self.sent += 1
            self.latencies.append(time.monotonic() - frame.timestamp)
            if len(self.latencies) > 20000:
                del self.latencies[:10000]

    def delay(self) -> float:
        """Capture to sent, seconds, lately (the median of the last 30 frames; 0.1 before
        any): how far an output that carries the source's sound delays it."""
        recent = sorted(self.latencies[-30:])
        return recent[len(recent) // 2] if recent else 0.1

    def offer(self, frame: Frame) -> None:
        self.slot.put(frame)

    @property
    def dropped(self) -> int:
        return self.slot.dropped

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the sink to finish (it closes in its own thread) and wait up to `timeout`
        seconds; False if it is still stuck then (it is left behind, a daemon thread)."""
        self.slot.close()
        if self._thread is None:  # opened by hand, never started: closed here
            self.close()
            return True
        return self.join(time.monotonic() + timeout)

    def join(self, deadline: float) -> bool:
        """Wait until the sink's thread has closed it, or the monotonic `deadline`."""
        if self._thread is None:
            return True
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("%s did not stop in time; leaving it behind", self.name)
            return False
        return True


def one_line(exc: BaseException) -> str:
    """An exception as one line of text: its message, else its type's name."""
    return " ".join(str(exc).split()) or type(exc).__name__


class NullSink(Sink):
    """Discards frames (benchmarks, or when only statistics matter)."""

    name = "null"

    def send(self, frame: Frame) -> None:
        pass


# live recordings: H.264 in mp4 keeps up in real time (VP9 and GIF are for `stylize`)
RECORDING_SUFFIXES = frozenset({".mp4", ".m4v", ".mov"})


class FileSink(Sink):
    """Records the stylised stream as H.264 mp4, written then renamed: valid when closed.

    The file is a fragmented mp4 (a fragment at least every 2 s), so when writing fails
    part-way (a full disk) what was written stays playable: the recording stops, keeps
    its frames under its name, and the error is reported once; other outputs go on.
    """

    FRAGMENT_S = 2.0

    def __init__(self, path: str | Path, overwrite: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = self.path.name
        if self.path.suffix.lower() not in RECORDING_SUFFIXES:
            raise OutputError(f"{self.path}: recordings are mp4; use a .mp4 name")
        if self.path.exists() and not overwrite:
            raise OutputError(f"{self.path} exists; pass --overwrite to replace it")
        self._writer: VideoWriter | None = None
        self._ctx = None
        self._tmp: Path | None = None
        self._failed: BaseException | None = None

    def open(self, width: int, height: int, fps: float) -> None:
        self._ctx = atomic_path(self.path)
        tmp = self._tmp = self._ctx.__enter__()
        # one encoder thread: x264 at 640x360 needs no more, and its default pool took
        # cores from the network (20.2 against 18.7 fps, 640x360 flow blend, 2 cores)
        self._writer = VideoWriter(tmp, fps, vfr=True, fragment_s=self.FRAGMENT_S, threads=1)

    def send(self, frame: Frame) -> None:
        try:
            self._writer.write(frame.image, frame.timestamp)
        except (OSError, av.error.FFmpegError) as exc:  # ENOSPC and the like
            self._failed = exc
            raise OutputError(f"{self.path}: recording stopped after {self._writer.frames} "
                              f"frames ({exc}); the file keeps them") from None

    def close(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()
        except (OSError, av.error.FFmpegError) as exc:
            self._failed = self._failed or exc  # its fragments so far are still playable
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if self._failed is not None:  # the last fragment may be cut off: players refuse it
            try:
                trim_fragmented_mp4(self._tmp)
            except OSError as exc:
                log.warning("%s: could not cut the recording back to its last whole "
                            "fragment: %s", self.path, exc)
        if writer.frames:
            self._ctx.__exit__(None, None, None)
        else:  # nothing recorded: leave no empty file behind
            self._ctx.__exit__(OutputError, OutputError("no frames"), None)
        if self._failed is not None and self.error is None:  # failed while finishing
            raise OutputError(f"{self.path}: recording ended early ({self._failed}); the "
                              f"file keeps {writer.frames} frames")


def vcam_install_hint() -> str:
    system = platform.system()
    if system == "Linux":
        return ("install v4l2loopback and load it: sudo apt install v4l2loopback-dkms && "
                "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=streamnst "
                "(exclusive_caps=1 lets Chrome and Meet see it)")
    if system == "Darwin":
        return "install OBS Studio and start its Virtual Camera once (Tools > Start Virtual Camera)"
    return "install OBS Studio (its virtual camera) or Unity Capture"


class VirtualCameraSink(Sink):
    """A pyvirtualcam camera (v4l2loopback, OBS, Unity Capture), paced to its fps."""

    name = "vcam"

    def __init__(self, device: str | None = None, backend: str | None = None) -> None:
        super().__init__()
        self.device, self.backend = device, backend
        self._cam = None

    def open(self, width: int, height: int, fps: float) -> None:
        import pyvirtualcam

        try:
            self._cam = pyvirtualcam.Camera(width=width, height=height, fps=fps,
                                            fmt=pyvirtualcam.PixelFormat.RGB,
                                            device=self.device, backend=self.backend)
        except Exception as exc:  # pyvirtualcam raises RuntimeError listing every backend
            reason = " ".join(str(exc).split())
            raise OutputError(f"virtual camera unavailable ({reason}); "
                              f"{vcam_install_hint()}") from None
        self.name = f"vcam {self._cam.device}"
        log.info("virtual camera %s (%s) %dx%d@%g", self._cam.device, self._cam.backend,
                 width, height, fps)

    def send(self, frame: Frame) -> None:
        self._cam.send(frame.image)

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None


class WindowSink(Sink):
    """A preview window with an fps/latency overlay; needs a display and GUI OpenCV."""

    name = "window"

    def __init__(self, title: str = "streamnst",
                 overlay: Callable[[], str] | None = None) -> None:
        super().__init__()
        self.title = title
        self.overlay: Callable[[], str] = overlay or (lambda: "")
        self._open = False
        self._text, self._text_time = "", 0.0

    def open(self, width: int, height: int, fps: float) -> None:
        import os

        import cv2

        if platform.system() == "Linux" and not os.environ.get("DISPLAY") and not \
                os.environ.get("WAYLAND_DISPLAY"):
            raise OutputError("no display for a preview window (DISPLAY is not set); use "
                              "--output vcam, webrtc or a .mp4 file")
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise OutputError("this OpenCV build has no GUI (opencv-python-headless); pip "
                              "install opencv-python instead, or use another --output") from None
        self._open = True

    def send(self, frame: Frame) -> None:
        import cv2

        bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
        now = time.monotonic()
        if now - self._text_time > 0.5:  # statistics are not free: refresh twice a second
            self._text, self._text_time = self.overlay(), now
        text = self._text
        if text:
            cv2.putText(bgr, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        cv2.imshow(self.title, bgr)
        cv2.waitKey(1)

    def close(self) -> None:
        if self._open:
            import cv2

            cv2.destroyWindow(self.title)
            self._open = False


SinkFactory = Callable[[str, OutputContext], Sink]
SINKS: dict[str, SinkFactory] = {}


def register_sink(scheme: str, factory: SinkFactory) -> None:
    """Make `--output scheme[:ARGS]` create sinks with `factory(ARGS, context)`."""
    SINKS[scheme] = factory


def _vcam(args: str, context: OutputContext) -> Sink:
    # vcam, vcam:/dev/video4, vcam@backend or vcam:/dev/video4@backend
    device, _, backend = args.partition("@")
    return VirtualCameraSink(device or None, backend or None)


def _webrtc(args: str, context: OutputContext) -> Sink:
    from streamnst.live.webrtc import WebRTCSink  # aiortc loads only when asked for

    return WebRTCSink(server=context.webrtc_server())


register_sink("vcam", _vcam)
register_sink("null", lambda args, context: NullSink())
register_sink("window", lambda args, context: WindowSink(overlay=context.status_line))
register_sink("webrtc", _webrtc)


def _rtmp(url: str, context: OutputContext) -> Sink:
    from streamnst.live.broadcast import RtmpSink

    return RtmpSink(url, context.bitrate_kbps)


register_sink("rtmp", lambda args, context: _rtmp(f"rtmp:{args}", context))
register_sink("rtmps", lambda args, context: _rtmp(f"rtmps:{args}", context))


def _whip(url: str, context: OutputContext) -> Sink:
    from streamnst.live.whip import WhipSink  # aiortc loads only when asked for

    return WhipSink(url, context.whip_token)


register_sink("whip+http", lambda args, context: _whip(f"whip+http:{args}", context))
register_sink("whip+https", lambda args, context: _whip(f"whip+https:{args}", context))


def open_sink(spec: str, context: OutputContext | None = None) -> Sink:
    """A Sink for an --output spec: a registered scheme or a .mp4 path."""
    context = context or OutputContext(overwrite=True)
    scheme, sep, args = spec.partition(":")
    scheme = scheme.lower()  # RTMP://, Whip+Https:// as well
    if "@" in scheme:
        scheme, _, backend = scheme.partition("@")
        args = f"{args}@{backend}"
    if scheme in SINKS:
        return SINKS[scheme](args, context)
    known = f"use {', '.join(SINKS)} or a .mp4 path"
    if args.startswith("//"):  # a URL of a scheme we do not know: it may hold a key
        raise OutputError(f"unknown output scheme {scheme!r}; {known}")
    if Path(spec).suffix:
        return FileSink(spec, overwrite=context.overwrite)
    raise OutputError(f"unknown output {spec!r}; {known}")
