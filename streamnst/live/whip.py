"""`--output whip+https://HOST/PATH`: publish the painted stream over WebRTC to a WHIP
endpoint (RFC 9725): an SFU such as Janus, LiveKit, MediaMTX or Cloudflare Stream, which
fans it out to any number of viewers. One peer connection, one encode.

The offer goes out whole (ICE gathered first, no trickle) in one POST of `application/sdp`,
with `Authorization: Bearer TOKEN` where a token is given; the `201 Created` answer names
the session's resource in `Location`, which is DELETEd on stop. Video is H.264 where the
server takes it (else VP8); audio is Opus: the source's sound where it has some (a video
file), delayed as the pictures are (core/audio.py), else silence (many SFUs want an audio
track). WebRTC's congestion control sets the bitrate.

When the media connection fails (ICE consent lapses about 30 s after the server goes
away, RFC 7675) the sink publishes again after 1, 2, 4, then every 8 s, one line per
outage; frames offered meanwhile are dropped and counted, and the filter never waits.
The token never appears in a message, nor does the URL's path (which often holds a key).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urljoin, urlsplit

import aiohttp
import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

from streamnst.core.audio import LAYOUT, RATE, SoundQueue, sample_at
from streamnst.core.errors import OutputError
from streamnst.core.frame import Frame
from streamnst.live import urls
from streamnst.live.broadcast import RETRY_S
from streamnst.live.sinks import Sink, one_line
from streamnst.live.webrtc_peers import LatestFrameTrack
from streamnst.media.video import even_size

log = logging.getLogger(__name__)
SCHEMES = ("whip+http", "whip+https")
CONNECT_S = 15.0  # the POST, then ICE and DTLS, must be done within this
DELETE_S = 3.0
PREFERRED_VIDEO = ("video/H264", "video/VP8")  # what SFUs and their HLS egress take
PACKET_S = 0.02  # one Opus packet of sound


def mask_url(url: str) -> str:
    """The URL with its user, path and query hidden: WHIP URLs often carry a key there."""
    return urls.mask_url(url, whole_path=True)


def check_url(url: str) -> str:
    """The endpoint's http(s) URL for a `whip+http(s)://` output; else a one-line error."""
    parts = urls.split(url)
    if parts is None or parts.scheme not in SCHEMES or not parts.hostname:
        raise OutputError(f"{mask_url(url)}: a WHIP output looks like "
                          "whip+https://HOST[:PORT]/PATH (the endpoint URL your server gives)")
    return parts.geturl().removeprefix("whip+")


class WhipRefused(Exception):
    """The endpoint answered, and not with a session; the message says why."""


class WhipSink(Sink):
    """One WHIP session (and its peer connection) to one endpoint, published again when
    its connection fails. Its event loop runs in a thread of its own."""

    def __init__(self, url: str, token: str | None = None) -> None:
        super().__init__()
        self.endpoint = check_url(url)
        self.shown = mask_url(url)
        self.name = f"whip {self.shown}"
        self.token = token or None
        self.outages = 0  # connections lost (each told in one line)
        self.reconnects = 0
        self.offline = 0  # frames that came while there was no connection
        self.resource: str | None = None  # the session's URL (Location)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._http: aiohttp.ClientSession | None = None
        self._pc: RTCPeerConnection | None = None
        self._track: LatestFrameTrack | None = None
        self._retrying: asyncio.Task | None = None
        self._closing = False
        self._sound: SoundQueue | None = None

    # -- the sink thread ------------------------------------------------------------------
    def open(self, width: int, height: int, fps: float) -> None:
        # one queue for every connection: a new one per reconnection would stay fed
        self._sound = self.audio.subscribe() if self.audio is not None else None
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever,
                                             name="whip-loop", daemon=True)
        self._loop_thread.start()
        try:
            self._call(self._publish(), CONNECT_S + DELETE_S)
        except Exception as exc:  # whatever the server did, one line and the loop closed
            self.close()
            raise OutputError(f"{self.shown}: cannot publish over WHIP "
                              f"({self._reason(exc)})") from None

    def send(self, frame: Frame) -> None:
        track = self._track
        if track is None:  # between connections: the frame is dropped
            self.offline += 1
            return
        # the colour conversion is CPU work: here, not on the event loop
        picture = av.VideoFrame.from_ndarray(even_size(frame.image), format="rgb24")
        picture = picture.reformat(format="yuv420p")
        self._loop.call_soon_threadsafe(track.publish, picture, frame.timestamp)

    def close(self) -> None:
        if self._loop is None:
            return
        self._closing = True
        try:
            self._call(self._hang_up(), DELETE_S + 2)
        except (OSError, aiohttp.ClientError, asyncio.TimeoutError, FutureTimeout):
            pass  # the server is gone: nothing is left to delete
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(5)
        if not self._loop_thread.is_alive():
            self._loop.close()
        self._loop = None

    def _call(self, coroutine, timeout: float):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, (asyncio.TimeoutError, FutureTimeout)):
            return f"no media connection within {CONNECT_S:g} s"
        if isinstance(exc, aiohttp.ClientConnectorError):
            return f"nothing answers at {urls.host(urlsplit(self.endpoint))}"
        # aiohttp names the URL it asked, with or without its user and password
        return urls.hide(one_line(exc), self.endpoint, self.token, whole_path=True)

    # -- the event loop ---------------------------------------------------------------------
    async def _publish(self) -> None:
        """POST an offer, take the answer and wait until media flows."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CONNECT_S))
        pc, track = RTCPeerConnection(), LatestFrameTrack()
        video = pc.addTransceiver(track, direction="sendonly")
        codecs = RTCRtpSender.getCapabilities("video").codecs
        video.setCodecPreferences(sorted(codecs, key=_video_rank))
        sound = (SoundTrack(self._sound, self.delay)
                 if self._sound is not None else AudioStreamTrack())  # silence
        pc.addTransceiver(sound, direction="sendonly")
        connected = asyncio.get_running_loop().create_future()

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and not connected.done():
                connected.set_result(True)
            elif state in ("failed", "closed"):
                if not connected.done():
                    connected.set_exception(WhipRefused(f"the media connection {state}"))
                elif pc is self._pc:
                    self._lost(state)

        try:
            await pc.setLocalDescription(await pc.createOffer())  # gathers ICE first
            answer = await self._post(pc.localDescription.sdp)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            except Exception as exc:  # aiortc's parser raises what it meets (ValueError...)
                raise WhipRefused(f"the server's answer is not usable SDP ({one_line(exc)})"
                                  ) from None
            await asyncio.wait_for(connected, CONNECT_S)
        except BaseException:
            connected.cancel()  # else closing sets an exception no one reads (logged)
            await pc.close()
            await self._delete()
            raise
        self._pc, self._track = pc, track

    async def _post(self, offer: str) -> str:
        headers = {"Content-Type": "application/sdp", **self._auth()}
        async with self._http.post(self.endpoint, data=offer, headers=headers) as reply:
            body = (await reply.read()).decode("utf-8", "replace")  # SDP is UTF-8 (RFC 8866)
            if reply.status in (401, 403):
                raise WhipRefused(f"the server refused the token (HTTP {reply.status}); "
                                  "check --whip-token")
            if reply.status != 201:
                raise WhipRefused(f"the server answered HTTP {reply.status}, not 201 Created; "
                                  "is this the endpoint URL it gave?")
            if "Location" not in reply.headers or not body.startswith("v=0"):
                raise WhipRefused("the answer has no Location or no SDP: not a WHIP server")
            self.resource = urljoin(str(reply.url), reply.headers["Location"])
            return body

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def _delete(self) -> None:
        """End the session on the server (RFC 9725 section 4.2); best effort."""
        resource, self.resource = self.resource, None
        if resource is None or self._http is None:
            return
        try:
            async with self._http.delete(resource, headers=self._auth(),
                                         timeout=aiohttp.ClientTimeout(total=DELETE_S)):
                pass
        except (OSError, aiohttp.ClientError, asyncio.TimeoutError):
            pass

    def _lost(self, state: str) -> None:
        self._track = None
        self.outages += 1
        log.warning("%s: connection lost (%s); publishing again", self.shown, state)
        self._retrying = asyncio.get_running_loop().create_task(self._retry())

    async def _retry(self) -> None:
        pc, self._pc = self._pc, None
        if pc is not None:
            await pc.close()
        await self._delete()
        tries = 0
        while not self._closing:
            await asyncio.sleep(RETRY_S[min(tries, len(RETRY_S) - 1)])
            try:
                await self._publish()
            except Exception:  # a refusal, a timeout, an answer aiortc cannot read
                tries += 1
                continue
            self.reconnects += 1
            log.warning("%s: reconnected", self.shown)
            return

    async def _hang_up(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
        pc, self._pc, self._track = self._pc, None, None
        if pc is not None:
            await pc.close()
        await self._delete()
        if self._http is not None:
            await self._http.close()
            self._http = None


def _video_rank(codec) -> int:
    """Sort key: H.264, then VP8, then the rest (rtx follows, as the preferences allow)."""
    mime = codec.mimeType
    return PREFERRED_VIDEO.index(mime) if mime in PREFERRED_VIDEO else len(PREFERRED_VIDEO)


class SoundTrack(AudioStreamTrack):
    """The source's sound, 20 ms at a time in real time, `delay()` behind its capture
    (the pictures' delay through the filter), so the two arrive together."""

    def __init__(self, queue: SoundQueue, delay) -> None:
        super().__init__()
        self.queue, self.delay = queue, delay
        self._start: float | None = None
        self._from = 0  # the sample clock's index of this track's first sample
        self._sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        count = round(PACKET_S * RATE)
        if self._start is None:
            self._start = time.monotonic()
            self._from = sample_at(self._start - self.delay())
        else:
            self._sent += count
            wait = self._start + self._sent / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = self.queue.read(self._from + self._sent, count)
        pcm = (np.clip(samples.T, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout=LAYOUT)
        frame.sample_rate, frame.pts = RATE, self._sent
        frame.time_base = fractions.Fraction(1, RATE)
        return frame
