"""WebRTC output: an aiohttp + aiortc server that streams the stylised frames to browsers.

The server runs its own asyncio loop in a thread. The sink thread turns each output
frame into encoder-ready `av.VideoFrame`s (CPU work stays off the event loop) and
hands them to the loop. Every viewer has its own latest-frame track: `recv()` only
awaits the newest frame, so a stalled viewer holds one stale frame, never a queue,
and never slows the others. (aiortc's MediaRelay would hand the same PyAV frame to
every peer's encoder thread; sharing it stalled the second viewer here.) Binding
anything but loopback requires a token printed at start. Every request passes the
Host, Origin and Content-Type checks of `http_guard` first, even on loopback.
"""

from __future__ import annotations

import asyncio
import fractions
import hmac
import ipaddress
import json
import logging
import secrets
import threading
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Protocol

import av
import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from streamnst.core.errors import OutputError
from streamnst.core.frame import Frame
from streamnst.live.control import LiveControl
from streamnst.live.http_guard import HostPolicy, guard_middleware
from streamnst.live.http_server import GuardedRunner
from streamnst.live.sinks import Sink

if TYPE_CHECKING:
    from streamnst.live.pipeline import Pipeline

log = logging.getLogger(__name__)
VIDEO_CLOCK = 90000
MAX_OFFER_BYTES = 64 * 1024  # request body cap (aiohttp answers 413 beyond it)
MAX_SDP_CHARS = 32 * 1024  # a browser's offer is 3-8 KB
MAX_PENDING_OFFERS = 2  # offers being negotiated at once
CONNECT_TIMEOUT_S = 20.0  # a peer that has not connected by then is closed, its slot freed
JSON_PATHS = ("/offer", "/api/control")
ASSETS = {"/": ("index.html", "text/html"), "/viewer.js": ("viewer.js", "text/javascript"),
          "/viewer.css": ("viewer.css", "text/css")}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_CANDIDATES = {"loopback_only": False}


def use_loopback_candidates(only: bool) -> None:
    """Make aioice offer 127.0.0.1 (which it leaves out of its host candidates).

    only=True (a server bound to loopback): offer nothing else, so ICE traffic stays
    on 127.0.0.1 and no LAN address is advertised; otherwise loopback is added to
    the discovered addresses. Applies to every aiortc peer in this process.
    """
    import aioice.ice

    _CANDIDATES["loopback_only"] = only
    original = aioice.ice.get_host_addresses
    if getattr(original, "_streamnst", False):
        return

    def addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if _CANDIDATES["loopback_only"]:
            return ["127.0.0.1"] if use_ipv4 else []
        found = original(use_ipv4, use_ipv6)
        return found + ["127.0.0.1"] if use_ipv4 and "127.0.0.1" not in found else found

    addresses._streamnst = True
    aioice.ice.get_host_addresses = addresses


class CameraReceiver(Protocol):
    """Where a browser's camera frames go (`--source webrtc`)."""

    def take(self, image: np.ndarray) -> None: ...


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


class WebRTCServer:
    """aiohttp app: viewer page, /offer, /api/state, /api/control; in its own thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, max_viewers: int = 4,
                 token: str | None = None, allow_hosts: tuple[str, ...] = (),
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.host, self.port, self.max_viewers = host, port, max_viewers
        self.token = token or (None if is_loopback(host) else secrets.token_urlsafe(16))
        self.policy = HostPolicy(port, allow_hosts)
        self.connect_timeout = connect_timeout
        self.pending_offers = 0
        self.offers_answered = 0
        # --source webrtc: the browser whose camera feeds the filter (one at a time)
        self.source: CameraReceiver | None = None
        self.sender: RTCPeerConnection | None = None
        self.pipeline: Pipeline | None = None
        self.peers: set[RTCPeerConnection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tracks: dict[RTCPeerConnection, LatestFrameTrack] = {}
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.published = 0
        #: called once with the full URL (token included) as soon as the server listens,
        #: before any camera frame: the front end shows it (never a log)
        self.on_listening: Callable[[str], None] | None = None

    @property
    def url(self) -> str:
        query = f"?token={self.token}" if self.token else ""
        return f"http://{self.host}:{self.port}/{query}"

    @property
    def public_url(self) -> str:
        """The URL without the token: what logs and status lines show."""
        return f"http://{self.host}:{self.port}/" + ("?token=..." if self.token else "")

    # ----- lifecycle (called from other threads) -------------------------------------------
    def start(self) -> None:
        """Serve (idempotent: a webrtc source and a webrtc output share one server)."""
        if self._thread is not None:
            return
        use_loopback_candidates(only=is_loopback(self.host))
        self._thread = threading.Thread(target=self._main, name="webrtc", daemon=True)
        self._thread.start()
        self._ready.wait(15)
        if self._startup_error is not None:
            raise OutputError(f"webrtc: cannot serve on {self.host}:{self.port} "
                              f"({self._startup_error}); choose another --port") from None
        if not self._ready.is_set():
            raise OutputError("webrtc: server did not start within 15 s")
        if self.on_listening is not None:
            self.on_listening(self.url)

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._shutdown())
        self.loop.close()

    async def _serve(self) -> None:
        guard = guard_middleware(self.policy, JSON_PATHS, MAX_OFFER_BYTES)
        app = web.Application(client_max_size=MAX_OFFER_BYTES, middlewares=[guard, self._auth])
        app.router.add_get("/", self._asset)
        app.router.add_get("/viewer.js", self._asset)
        app.router.add_get("/viewer.css", self._asset)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/control", self._control)
        self._runner = GuardedRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # an OS-chosen port (tests)
            self.port = site._server.sockets[0].getsockname()[1]
        self.policy.port = self.port

    async def _shutdown(self) -> None:
        await asyncio.gather(*(pc.close() for pc in list(self.peers)), return_exceptions=True)
        self.peers.clear()
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    def publish(self, image: np.ndarray, timestamp: float) -> None:
        """Thread-safe, called from the sink thread: build one encoder-ready frame per
        viewer here (PyAV frames must not be shared between the encoder threads of
        several peers) and hand them to the loop."""
        if self.loop is None or not self.loop.is_running():
            return
        ready = [(track, av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
            format="yuv420p")) for track in list(self.tracks.values())]
        if ready:
            self.loop.call_soon_threadsafe(self._deliver, ready, timestamp)
            self.published += 1

    @staticmethod
    def _deliver(ready: list, timestamp: float) -> None:
        for track, frame in ready:
            track.publish(frame, timestamp)

    # ----- HTTP -----------------------------------------------------------------------
    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if self.token is not None:
            given = request.query.get("token") or request.headers.get("X-Streamnst-Token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.json_response({"error": "missing or wrong token"}, status=401)
        return await handler(request)

    async def _asset(self, request: web.Request) -> web.Response:
        name, ctype = ASSETS[request.path]  # only routes for known assets exist
        text = resources.files("streamnst.live.web").joinpath(name).read_text(encoding="utf-8")
        return web.Response(text=text, content_type=ctype,
                            headers={"Cache-Control": "no-store"})

    async def _json(self, request: web.Request) -> dict:
        try:
            data = await request.json()
        except web.HTTPRequestEntityTooLarge:
            raise
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, LookupError):
            raise web.HTTPBadRequest(text=json.dumps({"error": "body must be JSON"}),
                                     content_type="application/json") from None
        except RecursionError:
            raise web.HTTPBadRequest(text=json.dumps({"error": "JSON nested too deeply"}),
                                     content_type="application/json") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                     content_type="application/json")
        return data

    async def _offer(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        sdp, kind = data.get("sdp"), data.get("type")
        if not isinstance(sdp, str) or kind != "offer":
            return web.json_response({"error": "expected {sdp: string, type: 'offer'}"},
                                     status=400)
        if len(sdp) > MAX_SDP_CHARS:
            return web.json_response({"error": f"offer larger than {MAX_SDP_CHARS} bytes"},
                                     status=413)
        if len(self.peers) >= self.max_viewers:
            return web.json_response({"error": f"viewer limit ({self.max_viewers}) reached"},
                                     status=503)
        if self.pending_offers >= MAX_PENDING_OFFERS:
            return web.json_response({"error": "too many offers at once; retry"}, status=503)
        send = data.get("send") is True
        if send and self.source is None:
            return web.json_response({"error": "this server takes no camera; start it with "
                                               "--source webrtc"}, status=400)
        if send and self.sender is not None:
            return web.json_response({"error": "another browser is already sending its "
                                               "camera (one at a time); you can still watch"},
                                     status=409)
        self.pending_offers += 1
        try:
            return await self._answer(sdp, kind, send)
        finally:
            self.pending_offers -= 1

    async def _answer(self, sdp: str, kind: str, send: bool = False) -> web.Response:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peers.add(pc)
        if send:
            self.sender = pc

            @pc.on("track")
            def on_track(track) -> None:  # fires inside setRemoteDescription
                if track.kind == "video" and self.source is not None:
                    asyncio.ensure_future(self._receive(track, pc))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._drop(pc)

        @pc.on("datachannel")
        def on_channel(channel) -> None:
            @channel.on("message")
            def on_message(message) -> None:
                try:
                    reply = self._apply_control_text(message)
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
            await self._drop(pc)
            return web.json_response({"error": f"bad offer: {exc}"}, status=400)
        log.info("webrtc viewer answered (%d/%d)", len(self.peers), self.max_viewers)
        self.offers_answered += 1
        asyncio.get_running_loop().call_later(self.connect_timeout, self._expire, pc)
        return web.json_response({"sdp": pc.localDescription.sdp,
                                  "type": pc.localDescription.type})

    def _expire(self, pc: RTCPeerConnection) -> None:
        """A peer that never completed ICE and DTLS in time holds a slot: close it."""
        if pc in self.peers and pc.connectionState != "connected":
            log.info("webrtc peer did not connect within %.0f s; closed", self.connect_timeout)
            asyncio.ensure_future(self._drop(pc))

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

    async def _drop(self, pc: RTCPeerConnection) -> None:
        if self.sender is pc:
            self.sender = None
        track = self.tracks.pop(pc, None)
        if track is not None:
            track.stop()
        if pc in self.peers:
            self.peers.discard(pc)
            log.info("webrtc viewer left (%d left)", len(self.peers))
        await pc.close()

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _control(self, request: web.Request) -> web.Response:
        reply = self.apply_control(await self._json(request))
        return web.json_response(reply, status=400 if "error" in reply else 200)

    # ----- control ----------------------------------------------------------------------
    def state(self) -> dict:
        state = {"viewers": len(self.peers), "max_viewers": self.max_viewers,
                 "takes_camera": self.source is not None, "camera_sending": self.sender
                 is not None}
        if self.pipeline is not None:
            state.update(LiveControl(self.pipeline).state())
        return state

    def _apply_control_text(self, message) -> dict:
        try:
            data = json.loads(message)
        except (TypeError, ValueError):
            return {"error": "control messages are JSON objects"}
        except RecursionError:  # ignored, and the peer kept: it is one bad message
            log.warning("webrtc: ignored a control message nested too deeply")
            return {"error": "control message nested too deeply"}
        if not isinstance(data, dict):
            return {"error": "control messages are JSON objects"}
        return self.apply_control(data)

    def apply_control(self, data: dict) -> dict:
        """The JSON control of LiveControl.apply, with this server's viewer counts."""
        if self.pipeline is None:
            return {"error": "no pipeline attached"}
        reply = LiveControl(self.pipeline).apply(data)
        return reply if "error" in reply else self.state()


class WebRTCSink(Sink):
    """`--output webrtc`: serve the stylised stream to browsers."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, max_viewers: int = 4,
                 token: str | None = None, allow_hosts: tuple[str, ...] = (),
                 server: WebRTCServer | None = None) -> None:
        """`server`: share the server of a `--source webrtc` (the sender gets the painted
        stream back on the same connection)."""
        super().__init__()
        self.server = server or WebRTCServer(host, port, max_viewers, token, allow_hosts)
        self.name = "webrtc"

    def open(self, width: int, height: int, fps: float) -> None:
        self.server.start()
        self.name = f"webrtc {self.server.public_url}"
        log.info("WebRTC viewer: %s", self.server.public_url)  # the front end says the URL

    def send(self, frame: Frame) -> None:
        self.server.publish(frame.image, frame.timestamp)

    def close(self) -> None:
        self.server.stop()
