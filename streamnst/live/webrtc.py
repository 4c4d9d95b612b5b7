"""WebRTC output: an aiohttp server that streams the stylised frames to browsers.

The server runs its own asyncio loop in a thread and serves the viewer page, `/offer`
(signalling: the peers themselves are live/webrtc_peers.py), `/api/state` and
`/api/control`. The sink thread turns each output frame into encoder-ready frames (CPU
work stays off the event loop) and hands them to the loop. Binding anything but loopback
requires a token printed at start. Every request passes the Host, Origin and
Content-Type checks of `http_guard` first, even on loopback.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import secrets
import threading
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
from aiohttp import web

from streamnst.core.errors import InputError, OutputError
from streamnst.core.frame import Frame
from streamnst.live import paintings
from streamnst.live.control import LiveControl
from streamnst.live.http_guard import HostPolicy, guard_middleware
from streamnst.live.http_server import GuardedRunner
from streamnst.live.loopback_ice import use_loopback_candidates
from streamnst.live.sinks import Sink
from streamnst.live.webrtc_peers import (
    CONNECT_TIMEOUT_S,
    MAX_SDP_CHARS,
    CameraReceiver,
    OfferRefused,
    Peers,
)

if TYPE_CHECKING:
    from streamnst.live.pipeline import Pipeline

log = logging.getLogger(__name__)
MAX_OFFER_BYTES = 64 * 1024  # request body cap (aiohttp answers 413 beyond it)
__all__ = ["MAX_OFFER_BYTES", "MAX_SDP_CHARS", "WebRTCServer", "WebRTCSink", "is_loopback"]
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


class WebRTCServer:
    """aiohttp app: viewer page, /offer, /api/state, /api/control; in its own thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, max_viewers: int = 4,
                 token: str | None = None, allow_hosts: tuple[str, ...] = (),
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.host, self.port, self.max_viewers = host, port, max_viewers
        self.token = token or (None if is_loopback(host) else secrets.token_urlsafe(16))
        self.policy = HostPolicy(port, allow_hosts)
        self.viewers = Peers(max_viewers, self._apply_control_text, connect_timeout)
        self.pipeline: Pipeline | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._receiving = asyncio.Lock()  # one painting upload decodes at a time
        self._startup_error: BaseException | None = None
        self.published = 0
        #: called once with the full URL (token included) as soon as the server listens,
        #: before any camera frame: the front end shows it (never a log)
        self.on_listening: Callable[[str], None] | None = None

    # what the peers know, as the server's own (a webrtc source sets `source`)
    @property
    def peers(self) -> set:
        return self.viewers.connections

    @property
    def sender(self):
        return self.viewers.sender

    @property
    def offers_answered(self) -> int:
        return self.viewers.answered

    @property
    def source(self) -> CameraReceiver | None:
        return self.viewers.source

    @source.setter
    def source(self, receiver: CameraReceiver | None) -> None:
        self.viewers.source = receiver

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
        guard = guard_middleware(self.policy, JSON_PATHS, MAX_OFFER_BYTES,
                                 {"/api/paintings": paintings.MAX_BYTES})
        app = web.Application(client_max_size=paintings.MAX_BYTES,
                              middlewares=[guard, self._auth])
        app.router.add_get("/", self._asset)
        app.router.add_get("/viewer.js", self._asset)
        app.router.add_get("/viewer.css", self._asset)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/control", self._control)
        app.router.add_post("/api/paintings", self._painting)
        self._runner = GuardedRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # an OS-chosen port (tests)
            self.port = site._server.sockets[0].getsockname()[1]
        self.policy.port = self.port

    async def _shutdown(self) -> None:
        await self.viewers.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    def publish(self, image: np.ndarray, timestamp: float) -> None:
        """Thread-safe, called from the sink thread: build each viewer's frame here and
        hand them to the loop."""
        if self.loop is None or not self.loop.is_running():
            return
        ready = self.viewers.frames_for(image)
        if ready:
            self.loop.call_soon_threadsafe(self.viewers.deliver, ready, timestamp)
            self.published += 1

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
        try:
            answer = await self.viewers.offer(data.get("sdp"), data.get("type"),
                                              data.get("send") is True)
        except OfferRefused as refused:
            return web.json_response({"error": str(refused)}, status=refused.status)
        return web.json_response(answer)

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _control(self, request: web.Request) -> web.Response:
        reply = self.apply_control(await self._json(request))
        return web.json_response(reply, status=400 if "error" in reply else 200)

    async def _painting(self, request: web.Request) -> web.Response:
        """A painting to learn live: raw image bytes (see live/paintings.py)."""
        if self.pipeline is None:
            return web.json_response({"error": "no pipeline attached"}, status=503)
        try:  # busy: refused before anything is read, decoded or stored
            self.pipeline.learning.check_free()
        except InputError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        if self._receiving.locked():  # one decode at a time: each may take a GB
            return web.json_response({"error": "another painting is being received; one "
                                      "painting at a time"}, status=409)
        async with self._receiving:
            data = await request.read()
            name = paintings.display_name(request.headers.get(paintings.NAME_HEADER))
            try:  # decoding a 25-megapixel image takes a while: not on the event loop
                path = await asyncio.get_running_loop().run_in_executor(
                    None, paintings.store_painting, data)
                self.pipeline.learning.start(path, name=name)
            except InputError as exc:
                busy = "one painting at a time" in str(exc)
                return web.json_response({"error": str(exc)}, status=409 if busy else 400)
            except OutputError as exc:  # the style directory is read-only, full, a file
                return web.json_response({"error": str(exc)}, status=507)
        return web.json_response(self.state())

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
