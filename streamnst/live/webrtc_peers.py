"""The viewer server's WebRTC peers: one aiortc connection per viewer, each with its own
latest-frame track; the one browser that may send its camera (`--source webrtc`); and
each peer's data channel, whose messages are control requests.

Every viewer has its own track: `recv()` only awaits the newest frame, so a stalled
viewer holds one stale frame, never a queue, and never slows the others. (aiortc's
MediaRelay would hand the same PyAV frame to every peer's encoder thread; sharing it
stalled the second viewer here.) Everything runs on the server's event loop except
`frames_for`, which the sink thread calls.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
from collections.abc import Callable
from typing import Protocol

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

log = logging.getLogger(__name__)
VIDEO_CLOCK = 90000
MAX_SDP_CHARS = 32 * 1024  # a browser's offer is 3-8 KB
MAX_PENDING_OFFERS = 2  # offers being negotiated at once
CONNECT_TIMEOUT_S = 20.0  # a peer that has not connected by then is closed, its slot freed


class CameraReceiver(Protocol):
    """Where a browser's camera frames go (`--source webrtc`)."""

    def take(self, image: np.ndarray) -> None: ...


class OfferRefused(Exception):
    """An offer that gets no answer: the HTTP status and the reason, for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


class LatestFrameTrack(VideoStreamTrack):
    """A video track whose recv() awaits the newest published frame (no CPU work here)."""

    def __init__(self) -> None:
        super().__init__()
        self._frame: av.VideoFrame | None = None
        self._new = asyncio.Event()
        self._t0: float | None = None

    def publish(self, frame: av.VideoFrame, timestamp: float) -> None:
        """Called on the event loop: replace the pending frame (older ones are dropped)."""
        self._t0 = timestamp if self._t0 is None else self._t0
        frame.pts = int((timestamp - self._t0) * VIDEO_CLOCK)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._frame = frame
        self._new.set()

    async def recv(self) -> av.VideoFrame:
        await self._new.wait()
        self._new.clear()
        return self._frame


class Peers:
    """The viewers of one server, at most `max_viewers`; `control(text)` answers a data
    channel message."""

    def __init__(self, max_viewers: int, control: Callable[[str], dict],
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.max_viewers = max_viewers
        self.control = control
        self.connect_timeout = connect_timeout
        self.connections: set[RTCPeerConnection] = set()
        self.tracks: dict[RTCPeerConnection, LatestFrameTrack] = {}
        self.source: CameraReceiver | None = None  # set by a webrtc source
        self.sender: RTCPeerConnection | None = None  # the browser sending its camera
        self.pending = 0
        self.answered = 0

    async def offer(self, sdp: object, kind: object, send: bool) -> dict:
        """The answer ({sdp, type}) to a browser's offer; OfferRefused says why not."""
        if not isinstance(sdp, str) or kind != "offer":
            raise OfferRefused(400, "expected {sdp: string, type: 'offer'}")
        if len(sdp) > MAX_SDP_CHARS:
            raise OfferRefused(413, f"offer larger than {MAX_SDP_CHARS} bytes")
        if len(self.connections) >= self.max_viewers:
            raise OfferRefused(503, f"viewer limit ({self.max_viewers}) reached")
        if self.pending >= MAX_PENDING_OFFERS:
            raise OfferRefused(503, "too many offers at once; retry")
        if send and self.source is None:
            raise OfferRefused(400, "this server takes no camera; start it with --source "
                                    "webrtc")
        if send and self.sender is not None:
            raise OfferRefused(409, "another browser is already sending its camera (one at "
                                    "a time); you can still watch")
        self.pending += 1
        try:
            return await self._answer(sdp, kind, send)
        finally:
            self.pending -= 1

    async def _answer(self, sdp: str, kind: str, send: bool) -> dict:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.connections.add(pc)
        if send:
            self.sender = pc

            @pc.on("track")
            def on_track(track) -> None:  # fires inside setRemoteDescription
                if track.kind == "video" and self.source is not None:
                    asyncio.ensure_future(self._receive(track, pc))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.drop(pc)

        @pc.on("datachannel")
        def on_channel(channel) -> None:
            @channel.on("message")
            def on_message(message) -> None:
                try:
                    reply = self.control(message)
                except Exception as exc:  # one bad message must not cost the peer
                    log.warning("webrtc: control message failed: %s", exc)
                    reply = {"error": "control message failed"}
                if channel.readyState == "open":
                    channel.send(json.dumps(reply))

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
            if not any(t.kind == "video" for t in pc.getTransceivers()):
                raise ValueError("the offer has no video section")
            self.tracks[pc] = LatestFrameTrack()
            pc.addTrack(self.tracks[pc])
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError and others on bad SDP
            await self.drop(pc)
            raise OfferRefused(400, f"bad offer: {exc}") from None
        log.info("webrtc viewer answered (%d/%d)", len(self.connections), self.max_viewers)
        self.answered += 1
        asyncio.get_running_loop().call_later(self.connect_timeout, self._expire, pc)
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    def _expire(self, pc: RTCPeerConnection) -> None:
        """A peer that never completed ICE and DTLS in time holds a slot: close it."""
        if pc in self.connections and pc.connectionState != "connected":
            log.info("webrtc peer did not connect within %.0f s; closed", self.connect_timeout)
            asyncio.ensure_future(self.drop(pc))

    async def _receive(self, track, pc: RTCPeerConnection) -> None:
        """The sender's camera into the source's latest-frame slot. Converting a frame to
        RGB is CPU work: it runs in a worker thread, never on the event loop."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await track.recv()
                image = await loop.run_in_executor(None, _to_rgb, frame)
                source = self.source
                if source is None:  # the filter stopped taking frames
                    break
                source.take(image)
        except MediaStreamError:
            pass  # the sender left: the last painted frame stays up
        finally:
            if self.sender is pc:
                self.sender = None
                log.info("webrtc camera sender left")

    async def drop(self, pc: RTCPeerConnection) -> None:
        if self.sender is pc:
            self.sender = None
        track = self.tracks.pop(pc, None)
        if track is not None:
            track.stop()
        if pc in self.connections:
            self.connections.discard(pc)
            log.info("webrtc viewer left (%d left)", len(self.connections))
        await pc.close()

    async def close_all(self) -> None:
        await asyncio.gather(*(pc.close() for pc in list(self.connections)),
                             return_exceptions=True)
        self.connections.clear()

    def frames_for(self, image: np.ndarray) -> list[tuple[LatestFrameTrack, av.VideoFrame]]:
        """One encoder-ready frame per viewer (thread-safe, called from the sink thread):
        PyAV frames must not be shared between the encoder threads of several peers."""
        return [(track, av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
            format="yuv420p")) for track in list(self.tracks.values())]

    @staticmethod
    def deliver(ready: list, timestamp: float) -> None:
        """On the event loop: hand each viewer its frame."""
        for track, frame in ready:
            track.publish(frame, timestamp)
