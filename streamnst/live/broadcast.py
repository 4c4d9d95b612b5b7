"""`--output rtmp://HOST[:PORT]/APP/KEY` (and `rtmps://`): publish the painted stream once to
a media server, which fans it out to any number of viewers (nginx-rtmp, SRS, MediaMTX, an
OBS server, or the ingest of YouTube Live, Twitch and Facebook Live). The camera machine
encodes one stream however many watch; our own viewer server encodes once per viewer.

H.264 in FLV through PyAV/FFmpeg, at a constant frame rate (a frame that comes late is
repeated, one that comes early replaces the one before), a keyframe every 2 s, and AAC:
the source's sound where it has some (a video file), in step with the pictures (see
core/audio.py), else silence (many ingests refuse a stream without audio).

The stream key is secret: every message masks it. When the server drops the connection
the sink reconnects with back-off, one line per outage; the filter and the other outputs
never wait for it (frames offered meanwhile are dropped and counted by the sink's slot).
"""

from __future__ import annotations

import fractions
import logging
import os
import socket
import ssl
import time

import av
import numpy as np

from streamnst.core.audio import CHANNELS, LAYOUT, RATE, SoundQueue, sample_at
from streamnst.core.errors import OutputError
from streamnst.core.frame import Frame
from streamnst.live.sinks import Sink
from streamnst.live.urls import hide, mask_url, split
from streamnst.media.video import even_size

log = logging.getLogger(__name__)
KEYFRAME_S = 2.0
AAC_FRAME = 1024  # samples per AAC frame
RETRY_S = (1.0, 2.0, 4.0, 8.0)  # back-off between reconnection attempts, then every 8 s
PROBE_FRAMES, PROBE_GAP_S = 3, 0.1
HELD_S = 2.0  # a new connection that holds this long ends the outage (else it goes on)
# a server that accepts and then says nothing, or a receiver that stops reading, fails a
# connect, handshake or write after this long (FFmpeg's own wait is endless)
IO_TIMEOUT_S = 3.0


def mask_key(url: str) -> str:
    """The URL with its stream key (the last path part), query and password hidden."""
    return mask_url(url)


def check_url(url: str) -> str:
    """`url` if it names a server, an application and a key; else a one-line error."""
    parts = split(url)
    segments = [s for s in parts.path.split("/") if s] if parts else []
    if parts is None or parts.scheme not in ("rtmp", "rtmps") or not parts.hostname or \
            len(segments) < 2:
        raise OutputError(f"{mask_key(url)}: an RTMP output looks like "
                          "rtmp://HOST[:PORT]/APP/STREAM_KEY")
    return parts.geturl()  # the scheme in lower case, as FFmpeg wants it


class RtmpSink(Sink):
    """Publish H.264 + AAC in FLV to one RTMP(S) URL, reconnecting when it drops."""

    def __init__(self, url: str, bitrate_kbps: int = 2500) -> None:
        super().__init__()
        self.url = check_url(url)
        self.bitrate_kbps = bitrate_kbps
        self.name = f"rtmp {mask_key(url)}"
        self._container: av.container.OutputContainer | None = None
        self.outages = 0  # connections lost (each told in one line)
        self.reconnects = 0
        self.encoded = 0  # frames sent to the server, repeats included
        self._retry_at = 0.0
        self._tries = 0
        self._outage = False
        self._image: np.ndarray | None = None
        self._sound: SoundQueue | None = None

    def open(self, width: int, height: int, fps: float) -> None:
        self.width, self.height = width + width % 2, height + height % 2  # yuv420p: even
        self.fps = max(1, round(fps or 30))
        self._sound = self.audio.subscribe() if self.audio is not None else None
        self._connect()  # a wrong URL, a refused key or no server: said now, in one line

    def _connect(self, probe: bool = False) -> None:
        """Connect and publish. FFmpeg holds the GIL while it connects, shakes hands and
        writes the header: a server that stalls there stops every thread of the filter,
        for up to IO_TIMEOUT_S. With `probe` (reconnections), Python first waits for the
        server to answer, holding nothing; not on the first connection, as a receiver that
        takes a single connection (`ffmpeg -listen 1`) would take the probe's and end."""
        if probe:
            try:
                answers(self.url, IO_TIMEOUT_S)
            except OSError as exc:
                raise self._cannot_publish(exc) from None
        try:
            container = av.open(self.url, mode="w", format="flv", options={
                "rw_timeout": str(int(IO_TIMEOUT_S * 1e6))})  # microseconds
        except (av.error.FFmpegError, OSError) as exc:
            raise self._cannot_publish(exc) from None
        try:
            video = container.add_stream("libx264", rate=self.fps, options={
                "preset": "veryfast", "tune": "zerolatency", "g": str(self._gop()),
                "keyint_min": str(self._gop()), "sc_threshold": "0"})
            video.width, video.height, video.pix_fmt = self.width, self.height, "yuv420p"
            video.bit_rate = self.bitrate_kbps * 1000
            audio = container.add_stream("aac", rate=RATE)
            audio.layout, audio.bit_rate = LAYOUT, 128000
            container.start_encoding()  # connects and writes the header
            self._container, self._video, self._audio = container, video, audio
            self._t0, self._frames, self._samples = time.monotonic(), 0, 0
            # the stream's time 0 carries the sound of what was captured a delay before
            self._sound_from = sample_at(self._t0 - self.delay())
            # a server refuses a publish (a wrong key) by closing the connection after
            # the handshake: a few frames, a moment apart, find out before we go on
            black = np.zeros((self.height, self.width, 3), np.uint8)
            for _ in range(PROBE_FRAMES):
                self._encode(black)
                time.sleep(PROBE_GAP_S)
        except (av.error.FFmpegError, OSError) as exc:
            self._container = container
            self._drop_container()
            raise self._cannot_publish(exc) from None

    def _cannot_publish(self, exc: BaseException) -> OutputError:
        return OutputError(f"{mask_key(self.url)}: cannot publish ({_reason(exc, self.url)}); "
                           "check the server address and the stream key")

    def _gop(self) -> int:
        return max(1, round(KEYFRAME_S * self.fps))

    def send(self, frame: Frame) -> None:
        self._image = even_size(frame.image)
        if self._container is None and not self._reconnect():
            return
        # constant frame rate: as many frames as the clock says are due since the start
        due = int((time.monotonic() - self._t0) * self.fps) + 1
        try:
            while self._frames < due:
                self._encode(self._image)
        except (av.error.FFmpegError, OSError) as exc:
            self._lost(exc)
            return
        if self._outage and time.monotonic() - self._t0 >= HELD_S:
            self._outage = False
            self.reconnects += 1
            log.warning("%s: reconnected", mask_key(self.url))

    def _encode(self, image: np.ndarray) -> None:
        picture = av.VideoFrame.from_ndarray(image, format="rgb24")
        picture.pts, picture.time_base = self._frames, fractions.Fraction(1, self.fps)
        for packet in self._video.encode(picture):
            self._container.mux(packet)
        self._frames += 1
        self.encoded += 1
        # sound up to the video's time, so the two tracks stay together
        while self._samples < self._frames * RATE / self.fps:
            samples = (self._sound.read(self._sound_from + self._samples, AAC_FRAME)
                       if self._sound is not None else np.zeros((CHANNELS, AAC_FRAME),
                                                                 np.float32))
            sound = av.AudioFrame.from_ndarray(samples, format="fltp", layout=LAYOUT)
            sound.sample_rate, sound.pts = RATE, self._samples
            self._samples += AAC_FRAME
            for packet in self._audio.encode(sound):
                self._container.mux(packet)

    def _lost(self, exc: BaseException) -> None:
        if not self._outage:  # a connection dropped again before it held is the same outage
            self._outage = True
            self.outages += 1
            self._tries = 0
            log.warning("%s: connection lost (%s); reconnecting", mask_key(self.url),
                        _reason(exc, self.url))
        else:
            self._tries += 1
        self._drop_container()
        self._retry_at = time.monotonic() + RETRY_S[min(self._tries, len(RETRY_S) - 1)]

    def _reconnect(self) -> bool:
        now = time.monotonic()
        if now < self._retry_at:
            return False  # this frame is dropped; the filter never waited for it
        try:
            self._connect(probe=True)
        except OutputError:
            self._tries += 1
            self._retry_at = now + RETRY_S[min(self._tries, len(RETRY_S) - 1)]
            return False
        return True  # the outage ends once this connection has held (see send)

    def _drop_container(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except (av.error.FFmpegError, OSError):
                pass  # the connection is gone already

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for stream in (self._video, self._audio):
                for packet in stream.encode(None):
                    self._container.mux(packet)
        except (av.error.FFmpegError, OSError):
            pass
        self._drop_container()


def answers(url: str, timeout: float) -> None:
    """Connect to the RTMP(S) server of `url` and take the first half of its handshake
    (S0 and S1 for our C0 and C1); OSError (TimeoutError included) if it does not answer
    within `timeout` seconds."""
    parts = split(url)
    secure = parts.scheme == "rtmps"
    address = (parts.hostname, parts.port or (443 if secure else 1935))
    with socket.create_connection(address, timeout) as raw:
        sock = raw
        if secure:  # as FFmpeg's TLS does by default, no certificate check: nothing is sent
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            sock = context.wrap_socket(raw, server_hostname=parts.hostname)
        deadline = time.monotonic() + timeout
        sock.sendall(b"\x03" + bytes(8) + os.urandom(1528))  # version 3, time 0, zeros
        got = 0
        while got < 1 + 1536:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(1 + 1536 - got)
            if not chunk:
                raise ConnectionResetError("the server closed the connection in the handshake")
            got += len(chunk)


def _reason(exc: BaseException, url: str) -> str:
    """A one-line reason that never repeats the URL's secrets (FFmpeg puts the URL in its
    messages)."""
    return hide(" ".join(str(getattr(exc, "strerror", None) or exc).split()), url)
