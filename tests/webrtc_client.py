"""A real aiortc viewer for tests: offers recvonly video, collects decoded frames."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription


class Viewer:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url, self.token = url.rstrip("/"), token
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames: list[np.ndarray] = []
        self.status: int | None = None
        self.error: str | None = None
        self._task: asyncio.Task | None = None

    async def connect(self) -> bool:
        pc = self.pc
        pc.addTransceiver("video", direction="recvonly")
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
                                       "type": pc.localDescription.type}) as r:
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
            if len(self.frames) > 200:
                del self.frames[:100]

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
