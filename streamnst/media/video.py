"""Video files through PyAV: RGB frames in; H.264 mp4, VP9 WebM or animated GIF out,
chosen by the file's suffix, with the source's audio kept where the container holds audio."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamnst.core.errors import InputError, OutputError
from streamnst.core.frame import check_image
from streamnst.media.imageio import resize_max_side

log = logging.getLogger(__name__)
VFR_CLOCK = 1000  # ticks per second for timestamped (live) recordings


@dataclass(frozen=True)
class Container:
    """How one output suffix is written."""

    muxer: str
    video_codec: str
    video_options: dict[str, str]
    audio_codec: str
    audio_format: str  # the sample format the audio encoder takes
    audio_copy: frozenset[str]  # source audio codecs the muxer takes as they are


_MP4 = Container("mp4", "libx264", {"preset": "veryfast"}, "aac", "fltp",
                 frozenset({"aac", "mp3", "alac", "opus", "ac3", "eac3"}))
# VP9 in constant-quality mode; row-mt and cpu-used 5 keep it within a few x of x264
_WEBM = Container("webm", "libvpx-vp9", {"b": "0", "deadline": "good", "cpu-used": "5",
                                         "row-mt": "1"}, "libopus", "flt",
                  frozenset({"opus", "vorbis"}))
CONTAINERS = {".mp4": _MP4, ".m4v": _MP4, ".mov": _MP4, ".webm": _WEBM}
GIF_SUFFIX = ".gif"
VIDEO_OUT_SUFFIXES = frozenset({*CONTAINERS, GIF_SUFFIX})
# VP9's crf scale is not x264's: the same look needs a higher number
_CRF = {"libx264": 0, "libvpx-vp9": 12}


class VideoReader:
    """Decode a video file's first video stream as HxWx3 uint8 RGB frames."""

    def __init__(self, path: str | os.PathLike, threads: int = 0) -> None:
        """`threads`: decoder threads (0: FFmpeg's choice, one per core and then some)."""
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: file not found")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, ValueError):
            raise InputError(f"{self.path}: not a video file FFmpeg can read") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        if threads:
            self._stream.codec_context.thread_count = threads
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(30)
        self.fps: Fraction = Fraction(rate)
        self.width = self._stream.codec_context.width
        self.height = self._stream.codec_context.height
        self.has_audio = bool(self._container.streams.audio)

    @property
    def frame_count(self) -> int | None:
        """The stream's frame count, or an estimate from its duration; None if unknown."""
        if self._stream.frames:
            return int(self._stream.frames)
        if self._container.duration:
            return max(1, round(self._container.duration / av.time_base * float(self.fps)))
        return None

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            for frame in self._container.decode(self._stream):
                yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.path}: decoding failed ({exc})") from None

    def with_sound(self) -> Iterator[tuple[np.ndarray | None, np.ndarray | None, float]]:
        """Video frames and sound in file order: (rgb, None, t) or (None, samples, t), where
        t is seconds on the file's clock and samples are (CHANNELS, n) float32 at RATE."""
        from streamnst.core.audio import LAYOUT, RATE

        streams = [self._stream, *self._container.streams.audio[:1]]
        resample = av.AudioResampler(format="fltp", layout=LAYOUT, rate=RATE)
        sound_start, produced = None, 0  # resampled sound is timed by its sample count
        try:
            for packet in self._container.demux(*streams):
                for frame in packet.decode():
                    if packet.stream.type == "video":
                        yield frame.to_ndarray(format="rgb24"), None, float(frame.time or 0)
                        continue
                    if sound_start is None:
                        sound_start = float(frame.time or 0)
                    for part in resample.resample(frame):
                        samples = part.to_ndarray().astype(np.float32, copy=False)
                        yield None, samples, sound_start + produced / RATE
                        produced += samples.shape[1]
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.path}: decoding failed ({exc})") from None

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def even_size(image: np.ndarray) -> np.ndarray:
    """`image` padded by one edge pixel where a side is odd: yuv420p needs even sides."""
    h, w = image.shape[:2]
    if w % 2 or h % 2:
        return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return image


def open_writer(path: str | os.PathLike, fps: float | Fraction, *,
                audio_from: str | os.PathLike | None = None, vfr: bool = False):
    """The writer for `path`'s suffix: VideoWriter (mp4, mov, webm) or GifWriter."""
    if Path(path).suffix.lower() == GIF_SUFFIX:
        return GifWriter(path, fps)
    return VideoWriter(path, fps, audio_from=audio_from, vfr=vfr)


class VideoWriter:
    """Encode RGB frames to H.264 mp4 (or VP9 WebM, by suffix) at a constant frame rate.

    `audio_from`: a video file whose first audio stream is copied into the output
    (re-encoded to AAC or Opus when the container cannot hold its codec), cut at the
    video's length.
    Every stream is declared before the first packet is written, as muxers require.
    Dimensions must be even for yuv420p: odd ones are padded by one edge pixel.
    """

    def __init__(self, path: str | os.PathLike, fps: float | Fraction, *,
                 audio_from: str | os.PathLike | None = None, crf: int = 20,
                 preset: str = "veryfast", vfr: bool = False, tune: str | None = None,
                 threads: int = 0, fragment_s: float | None = None) -> None:
        """`fragment_s`: write a fragmented mp4 with a keyframe and fragment at least this
        often, so the file is playable up to the last fragment if writing stops early (a
        full disk, a crash); for live recordings."""
        self.path = Path(path)
        self._file = None
        suffix = self.path.suffix.lower()
        # a temporary name from atomic_path ends in .partial.mp4 and the like
        self.container = CONTAINERS.get(suffix, _MP4)
        try:
            options = ({"movflags": "frag_keyframe+empty_moov+default_base_moof"}
                       if fragment_s else {})
            # through a Python file: FFmpeg's own I/O drops write errors (a full disk
            # went unnoticed), a Python file raises them into mux()
            self._file = open(self.path, "wb")  # noqa: SIM115 (closed in close())
            self._out = av.open(self._file, mode="w", format=self.container.muxer,
                                options=options)
        except (av.error.FFmpegError, OSError) as exc:
            if self._file is not None:
                self._file.close()
            raise OutputError(f"{self.path}: cannot write ({exc})") from None
        self.fps = Fraction(fps).limit_denominator(1001)
        self.vfr = vfr
        self._crf, self._preset, self._tune, self._threads = crf, preset, tune, threads
        self._gop = max(1, round(float(fps) * fragment_s)) if fragment_s else None
        self._video = None
        self.frames = 0
        self._t0: float | None = None
        self._last_pts = -1
        self._src = self._a_in = self._a_out = None
        self._copy = False
        if audio_from is not None:
            self._open_audio(Path(audio_from))

    def _open_audio(self, source: Path) -> None:
        try:
            self._src = av.open(str(source))
        except av.error.FFmpegError as exc:
            log.warning("audio not copied from %s: %s", source, exc)
            return
        if not self._src.streams.audio:
            self._src.close()
            self._src = None
            return
        self._a_in = self._src.streams.audio[0]
        ctx = self._a_in.codec_context
        self._copy = ctx.name in self.container.audio_copy
        if self._copy:
            self._a_out = self._out.add_stream_from_template(self._a_in)
        else:
            codec = self.container.audio_codec
            rate = 48000 if codec == "libopus" else (ctx.sample_rate or 48000)  # Opus: 48k
            self._a_out = self._out.add_stream(codec, rate=rate)
            # mono stays mono; anything else (even an unnamed layout) becomes stereo
            self._a_out.layout = "mono" if ctx.channels == 1 else "stereo"

    def _open_video(self, width: int, height: int) -> None:
        codec = self.container.video_codec
        stream = self._out.add_stream(codec, rate=self.fps)
        stream.codec_context.time_base = Fraction(1, VFR_CLOCK) if self.vfr else 1 / self.fps
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        options = dict(self.container.video_options, crf=str(self._crf + _CRF[codec]))
        if codec == "libx264":
            options["preset"] = self._preset
            if self._tune:
                options["tune"] = self._tune
        if self._threads:
            options["threads"] = str(self._threads)
        if self._gop:
            options["g"] = str(self._gop)
        stream.options = options
        self._video = stream

    def write(self, image: np.ndarray, timestamp: float | None = None) -> None:
        """Append a frame. With `timestamp` (seconds, monotonic) frames keep their real
        timing (variable frame rate, as a live recording needs); without, 1/fps apart."""
        check_image(image)
        h, w = image.shape[:2]
        if self._video is None:
            self._open_video(w, h)
        if (w + w % 2, h + h % 2) != (self._video.width, self._video.height):
            raise OutputError(f"{self.path}: frame size changed from "
                              f"{self._video.width}x{self._video.height} to {w}x{h}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even_size(image)),
                                           format="rgb24")
        if timestamp is None:
            frame.pts = self.frames
            frame.time_base = 1 / self.fps
        else:
            self._t0 = timestamp if self._t0 is None else self._t0
            pts = max(self._last_pts + 1, round((timestamp - self._t0) * VFR_CLOCK))
            frame.pts, self._last_pts = pts, pts
            frame.time_base = Fraction(1, VFR_CLOCK)
        for packet in self._video.encode(frame):
            self._out.mux(packet)
        self.frames += 1

    def _mux_audio(self) -> None:
        """Copy (or transcode) the source's audio up to the video's duration."""
        limit = self.frames / self.fps if not self.vfr else \
            Fraction(self._last_pts + 1, VFR_CLOCK)
        a_in, a_out = self._a_in, self._a_out
        if self._copy:
            for packet in self._src.demux(a_in):
                if packet.dts is None:
                    continue
                if packet.pts is not None and packet.pts * a_in.time_base >= limit:
                    break
                packet.stream = a_out
                self._out.mux(packet)
            return
        resampler = av.AudioResampler(format=self.container.audio_format, layout=a_out.layout,
                                      rate=a_out.codec_context.sample_rate)
        done = 0
        for frame in self._src.decode(a_in):
            if frame.time is not None and frame.time >= limit:
                break
            for piece in resampler.resample(frame):
                piece.pts = done
                done += piece.samples
                for packet in a_out.encode(piece):
                    self._out.mux(packet)
        for packet in a_out.encode(None):
            self._out.mux(packet)

    def close(self) -> None:
        """Flush the encoder, add the audio and finish the file (valid for frames so far)."""
        try:
            if self._video is not None:
                for packet in self._video.encode(None):
                    self._out.mux(packet)
                if self._src is not None and self.frames:
                    self._mux_audio()
        finally:
            if self._src is not None:
                self._src.close()
            try:
                self._out.close()
            finally:
                self._file.close()


def trim_fragmented_mp4(path: str | os.PathLike) -> int:
    """Cut a fragmented mp4 whose writing stopped part-way (a full disk) back to its last
    whole fragment; returns the bytes kept. FFmpeg refuses a file whose last top-level box
    (a `moof` cut mid-way) runs past its end, which would lose every fragment before it.
    Truncating needs no free space, so this works on the disk that filled up."""
    path = Path(path)
    end = keep = 0
    with open(path, "rb") as f:
        size_on_disk = os.fstat(f.fileno()).st_size
        while end + 8 <= size_on_disk:
            f.seek(end)
            size, kind = int.from_bytes(f.read(4), "big"), f.read(4)
            if size == 1:  # a 64-bit size follows
                size = int.from_bytes(f.read(8), "big")
            if size < 8 or end + size > size_on_disk:  # 0 (to the end) or cut off
                break
            end += size
            if kind != b"moof":  # a fragment is whole once the mdat after its moof is
                keep = end
    if keep < size_on_disk:
        os.truncate(path, keep)
    return keep


GIF_MAX_FPS = 15.0  # a chat's GIF: more frames are bytes no one sees
GIF_MAX_SIDE = 480  # ... and more pixels too: larger frames are scaled down to this


class GifWriter:
    """Animated GIF (looping forever), the format people share in chats.

    At most GIF_MAX_FPS frames a second (`keeps` says which source frames are used, so a
    renderer paints no other), at most GIF_MAX_SIDE pixels on the long side. One
    255-colour palette for the whole clip, from the first frame (Pillow's median cut),
    each frame mapped to it without dithering: the same colours frame to frame (no palette
    flicker), unchanged parts identical (Pillow then stores only the changed box), and 15x
    faster than a median cut a frame (87 -> 6 ms at 640x480). Frames are kept as one byte
    a pixel until `close` writes the file. GIF holds no audio, and its frame delays are
    whole hundredths of a second: they are spread so the clip keeps its length.
    """

    def __init__(self, path: str | os.PathLike, fps: float | Fraction) -> None:
        self.path = Path(path)
        self.source_fps = float(fps) or GIF_MAX_FPS
        self.fps = min(self.source_fps, GIF_MAX_FPS)
        self.frames = 0
        self._images: list = []
        self._size: tuple[int, int] | None = None
        self._palette = None

    def keeps(self, index: int) -> bool:
        """Whether source frame `index` (0, 1, ...) is one of the GIF's frames."""
        ratio = self.fps / self.source_fps
        return index == 0 or int(index * ratio) > int((index - 1) * ratio)

    def write(self, image: np.ndarray, timestamp: float | None = None) -> None:
        from PIL import Image

        check_image(image)
        image = resize_max_side(image, GIF_MAX_SIDE)
        size = (image.shape[1], image.shape[0])
        if self._size is not None and size != self._size:
            raise OutputError(f"{self.path}: frame size changed from "
                              f"{self._size[0]}x{self._size[1]} to {size[0]}x{size[1]}")
        self._size = size
        rgb = Image.fromarray(np.ascontiguousarray(image), "RGB")
        if self._palette is None:
            self._palette = rgb.quantize(255, method=Image.Quantize.MEDIANCUT)
        self._images.append(rgb.quantize(palette=self._palette, dither=Image.Dither.NONE))
        self.frames += 1

    def _durations(self) -> list[int]:
        """Milliseconds per frame, in 10 ms steps, whose running sum tracks the real time."""
        out, shown = [], 0
        for i in range(1, self.frames + 1):
            end = round(i * 100 / self.fps) * 10  # GIF counts centiseconds
            out.append(max(20, end - shown))  # browsers slow down delays under 20 ms
            shown += out[-1]
        return out

    def close(self) -> None:
        if not self._images:
            return
        first, rest = self._images[0], self._images[1:]
        try:
            first.save(self.path, format="GIF", save_all=True, append_images=rest, loop=0,
                       duration=self._durations(), disposal=1, optimize=False)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write ({exc})") from None
        finally:
            self._images = []
