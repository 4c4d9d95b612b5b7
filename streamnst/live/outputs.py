"""What every source and output factory of a live session receives: the server options, the
one WebRTC server a session shares (a browser that sends its camera watches the painted
stream on the same connection), the overwrite rule and, once the session is built, its
pipeline (the handle a server's controls and a window's overlay read)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamnst.live.pipeline import Pipeline
    from streamnst.live.webrtc import WebRTCServer


@dataclass(frozen=True)
class ServerOptions:
    """Where the WebRTC server listens and whom it answers (see live/http_guard.py)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_viewers: int = 4
    allow_hosts: tuple[str, ...] = ()


@dataclass
class OutputContext:
    server: ServerOptions = field(default_factory=ServerOptions)
    overwrite: bool = False
    bitrate_kbps: int = 2500  # a broadcast output's video bitrate
    #: told the server's full URL (token included) as soon as it listens
    on_listening: Callable[[str], None] | None = None
    pipeline: Pipeline | None = None
    #: outputs a source needs beside the ones asked for (a browser's camera needs the page)
    required_outputs: list[str] = field(default_factory=list)
    whip_token: str | None = None  # the bearer token of whip+http(s):// outputs
    _webrtc: WebRTCServer | None = None

    def webrtc_server(self) -> WebRTCServer:
        """The session's one WebRTC server, made on first use."""
        if self._webrtc is None:
            from streamnst.live.webrtc import WebRTCServer

            o = self.server
            self._webrtc = WebRTCServer(o.host, o.port, o.max_viewers, allow_hosts=o.allow_hosts)
            self._webrtc.on_listening = self.on_listening
            self._webrtc.pipeline = self.pipeline
        return self._webrtc

    def bind(self, pipeline: Pipeline) -> None:
        """The session's pipeline exists: its controls are served from now on."""
        self.pipeline = pipeline
        if self._webrtc is not None:
            self._webrtc.pipeline = pipeline

    def status_line(self) -> str:
        """One line of what the filter is doing (a preview window draws it)."""
        if self.pipeline is None:
            return ""
        s = self.pipeline.summary()
        return (f"{s.style} | {s.fps:.1f} fps | p95 {s.latency_p95_ms:.0f} ms | "
                f"{s.blend} {s.strength:.2f}")
