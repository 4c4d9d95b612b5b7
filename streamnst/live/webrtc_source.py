"""`--source webrtc`: a browser's camera, sent to our server, feeds the filter.

The viewer page's "use my camera" button sends the camera track on the same peer
connection that brings the painted stream back, so any browser is a client with nothing
to install. Frames go into the ordinary latest-frame slot (drops counted); one browser
sends at a time, any number watch. When the sender leaves, the last painted frame stays
up until a new sender takes over.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from streamnst.live.sources import Source
from streamnst.live.webrtc import WebRTCServer

log = logging.getLogger(__name__)
WAIT_FOR_SENDER_S = 3600.0


class WebRTCSource(Source):
    name = "webrtc"

    def __init__(self, server: WebRTCServer) -> None:
        super().__init__()
        self.server = server
        server.source = self
        self.fps = 30.0  # what browsers send by default; the auto scale follows the real rate

    def start(self) -> Source:
        self.server.start()  # the page must be up before any frame can come
        return super().start()

    def _run(self) -> None:
        self.stop_event.wait()  # frames arrive from the server's thread, through take()

    def take(self, image: np.ndarray) -> None:
        """A decoded camera frame (called from a worker thread of the server)."""
        if not self.stop_event.is_set():
            self.emit(image)

    def wait_for_size(self, timeout: float = WAIT_FOR_SENDER_S,
                      stop: threading.Event | None = None) -> tuple[int, int]:
        log.warning("waiting for a camera: click 'use my camera' on the viewer page")
        return super().wait_for_size(timeout, stop)

    def stop(self, timeout: float = 1.0) -> None:
        super().stop(timeout)
        self.server.source = None
