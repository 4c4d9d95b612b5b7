"""A live run's source and outputs, opened from their specs. The one place that knows that
`--source webrtc` and `--output webrtc` share one server: the browser that sends its camera
watches the painted stream on the same connection."""

from __future__ import annotations

from dataclasses import dataclass

from streamnst.live.sinks import Sink, open_sink
from streamnst.live.sources import Source, open_source


@dataclass(frozen=True)
class ServerOptions:
    """Where the WebRTC server listens and whom it answers (see live/http_guard.py)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_viewers: int = 4
    allow_hosts: tuple[str, ...] = ()


def open_live_io(source_spec: str, output_specs: list[str], server: ServerOptions,
                 overwrite: bool = False) -> tuple[Source, list[Sink]]:
    """The source and one sink per output spec (a `webrtc` output is added for a `webrtc`
    source)."""
    shared = None
    specs = list(output_specs)
    if source_spec == "webrtc":
        from streamnst.live.webrtc import WebRTCServer
        from streamnst.live.webrtc_source import WebRTCSource

        shared = WebRTCServer(server.host, server.port, server.max_viewers,
                              allow_hosts=server.allow_hosts)
        source: Source = WebRTCSource(shared)
        specs = [spec for spec in specs if spec != "webrtc"] + ["webrtc"]
    else:
        source = open_source(source_spec)
    sinks: list[Sink] = []
    for spec in specs:
        if spec == "webrtc":
            from streamnst.live.webrtc import WebRTCSink

            sinks.append(WebRTCSink(host=server.host, port=server.port,
                                    max_viewers=server.max_viewers,
                                    allow_hosts=server.allow_hosts, server=shared))
        else:
            sinks.append(open_sink(spec, overwrite=overwrite))
    return source, sinks
