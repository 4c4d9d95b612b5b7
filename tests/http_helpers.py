"""Talk to a running viewer server as the viewer page does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def post_control(port: int, body: object) -> tuple[int, dict]:
    """POST `body` as JSON to /api/control on loopback; (status, parsed JSON answer)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/control",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
