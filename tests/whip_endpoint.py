"""A real WHIP server for the WHIP tests: Eyevinn's WHIP endpoint from npm
(`whip_server/`, installed by tools/test.sh with `npm ci`), in a Node process on a free
loopback port. Its "rtmp" plugin decodes the published WebRTC stream in libwebrtc and
restreams it to an RTMP URL, so a test pulls the stream back from nginx-rtmp and checks
what a viewer gets."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

from cli_helpers import free_port, port_open, wait_until

FOLDER = Path(__file__).parent / "whip_server"


def available() -> bool:
    return bool(shutil.which("node")) and (FOLDER / "node_modules" / "@eyevinn").is_dir()


class WhipServer:
    def __init__(self, token: str, log: Path) -> None:
        self.token, self.log, self.port = token, log, free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(["node", str(FOLDER / "server.js"), str(self.port),
                                          self.token], stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if not wait_until(lambda: port_open(self.port), 15):
            raise RuntimeError(f"the WHIP server did not start; see {self.log}")

    def kill(self) -> None:
        """Kill the server and the FFmpeg processes it started (its process group): an
        orphaned relay would keep the server's fixed UDP port."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def url(self, rtmp_url: str, size: str) -> str:
        """The output spec that publishes here, restreamed to `rtmp_url` at `size`."""
        job = json.dumps({"rtmpUrl": rtmp_url, "resolution": size}).encode()
        return (f"whip+http://127.0.0.1:{self.port}/api/v2/whip/rtmp?b64json="
                f"{base64.b64encode(job).decode()}")

    def sessions(self) -> list[str]:
        """The server's live WHIP resources (its own listing)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/whip", timeout=5) as r:
            return json.load(r)
