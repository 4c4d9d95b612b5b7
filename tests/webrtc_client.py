"""A real aiortc viewer for tests: offers recvonly video, collects decoded frames."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)


class Viewer:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url, self.token = url.rstrip("/"), token
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames: list[np.ndarray] = []
        self.arrivals: list[float] = []
        self.status: int | None = None
        self.error: str | None = None
        self._task: asyncio.Task | None = None

    send = False

    def _add_media(self, pc: RTCPeerConnection) -> None:
        pc.addTransceiver("video", direction="recvonly")

    async def connect(self) -> bool:
        pc = self.pc
        self._add_media(pc)
        self.channel = pc.createDataChannel("control")
        self.replies: list[dict] = []
        self.channel.on("message", lambda m: self.replies.append(json.loads(m)))

        @pc.on("track")
        def on_track(track) -> None:
            self._task = asyncio.ensure_future(self._read(track))

        await pc.setLocalDescription(await pc.createOffer())
        headers = {"X-Streamnst-Token": self.token} if self.token else {}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.url}/offer", headers=headers,
                                 json={"sdp": pc.localDescription.sdp,
                                       "type": pc.localDescription.type,
                                       **({"send": True} if self.send else {})}) as r:
                self.status = r.status
                body = await r.json()
        if self.status != 200:
            self.error = body.get("error")
            await pc.close()
            return False
        await pc.setRemoteDescription(RTCSessionDescription(**body))
        return True

    async def _read(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception as exc:
                self.error = repr(exc)
                return
            self.frames.append(frame.to_ndarray(format="rgb24"))
            self.arrivals.append(asyncio.get_running_loop().time())
            if len(self.frames) > 200:
                del self.frames[:100], self.arrivals[:100]

    async def wait_frames(self, n: int, timeout: float = 20.0) -> bool:
        start = len(self.frames)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if len(self.frames) - start >= n:
                return True
            await asyncio.sleep(0.05)
        return False

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        await self.pc.close()


class ColourTrack(VideoStreamTrack):
    """A generated camera: a solid colour (changeable) with a little moving texture."""

    def __init__(self, colour: tuple[int, int, int], size: tuple[int, int] = (160, 120)):
        super().__init__()
        self.colour, self.size, self.sent = colour, size, 0
        self.changed_at: float | None = None

    def set_colour(self, colour: tuple[int, int, int]) -> None:
        self.colour = colour
        self.changed_at = asyncio.get_running_loop().time()

    async def recv(self):
        import av

        pts, time_base = await self.next_timestamp()
        w, h = self.size
        img = np.empty((h, w, 3), np.uint8)
        img[:] = self.colour
        img[:, (self.sent * 2) % w] = 255  # a line moving across: the frames differ
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        return frame


class Sender(Viewer):
    """A client that sends a generated camera track and watches what comes back."""

    send = True

    def __init__(self, url: str, colour: tuple[int, int, int], token: str | None = None):
        super().__init__(url, token)
        self.camera = ColourTrack(colour)

    def _add_media(self, pc: RTCPeerConnection) -> None:
        pc.addTransceiver(self.camera, direction="sendrecv")
