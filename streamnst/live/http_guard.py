"""Request checks for our local web servers: a loopback server is not private on its own.

- Host allow-list (DNS rebinding): a page on an attacker's domain that re-resolves to
  127.0.0.1 sends its own domain as Host. Only IP literals (which no rebinding can use),
  `localhost` and names the user allows (`--allow-host`, for a reverse proxy) pass, and
  only with our port.
- Origin (cross-site requests): a state-changing request whose Origin is present and is
  not this server's own origin is refused.
- Content-Type: JSON endpoints take `application/json` only, upload endpoints
  `application/octet-stream` only. A cross-site page can send `text/plain` without a CORS
  preflight; it cannot send either of those without one, and we answer no CORS, so the
  browser never sends the real request.
- Every response carries a strict Content-Security-Policy, nosniff and no-referrer.
- A body is read within BODY_TIMEOUT_S, and one whose Content-Length is over the cap is
  refused before a byte of it is read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; media-src 'self' blob:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_TIMEOUT_S = 10.0
JSON_CHARSETS = frozenset({None, "utf-8", "utf8"})  # JSON is UTF-8 (RFC 8259)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def split_host(value: str) -> tuple[str, int | None] | None:
    """'name:port', '[::1]:port', 'name' -> (lower-case name without brackets, port)."""
    value = value.strip().lower()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    elif value.count(":") == 1:
        name, port_text = value.split(":")
    elif ":" in value:  # a bare IPv6 address is not a valid Host header
        return None
    else:
        name, port_text = value, ""
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        return name, int(port_text)
    return name, None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which Host headers and Origins a server bound to `port` answers."""

    def __init__(self, port: int, allow_hosts: Iterable[str] = ()) -> None:
        self.port = port
        self.allowed_names = {"localhost"} | {h.strip().lower().strip("[]")
                                              for h in allow_hosts if h.strip()}

    def host_ok(self, host_header: str | None) -> bool:
        parsed = split_host(host_header or "")
        if parsed is None:
            return False
        name, port = parsed
        if name in self.allowed_names - {"localhost"}:
            return True  # a reverse proxy's public name: the proxy owns the port
        if port is None:
            port = 80
        return port == self.port and (name == "localhost" or _is_ip(name))

    def origin_ok(self, origin: str, host_header: str) -> bool:
        """Same origin: http(s)://<the Host we already accepted>."""
        origin = origin.strip().lower().rstrip("/")
        host = host_header.strip().lower()
        return origin in (f"http://{host}", f"https://{host}")


def guard_middleware(policy: HostPolicy, json_paths: Iterable[str], max_body: int,
                     binary_paths: dict[str, int] | None = None):
    """aiohttp middleware enforcing the module docstring's rules before routing.
    `binary_paths`: path -> body cap, for endpoints that take raw bytes
    (`application/octet-stream` only: like JSON, no cross-site form can send it)."""
    json_paths = frozenset(json_paths)
    binary_paths = dict(binary_paths or {})

    def refuse(status: int, message: str) -> web.Response:
        return web.Response(status=status, text=json.dumps({"error": message}),
                            content_type="application/json", headers=SECURITY_HEADERS)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if not policy.host_ok(host):
            return refuse(421, "unknown Host; add --allow-host NAME for a reverse proxy")
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("Origin")
            if origin is not None and not policy.origin_ok(origin, host):
                return refuse(403, "cross-origin request refused")
            if request.path in json_paths and (request.content_type != "application/json"
                                               or _charset(request) not in JSON_CHARSETS):
                return refuse(415, "send Content-Type: application/json (UTF-8)")
            # aiohttp reads a missing header as octet-stream: the header itself must say so
            if request.path in binary_paths and (
                    "Content-Type" not in request.headers
                    or request.content_type != "application/octet-stream"):
                return refuse(415, "send Content-Type: application/octet-stream")
            cap = binary_paths.get(request.path, max_body)
            if (request.content_length or 0) > cap:
                return refuse(413, f"body larger than {cap} bytes")
            # this path's own cap, also for a chunked body (the app's is the largest one)
            request = request.clone(client_max_size=cap)
            try:  # read here, with a deadline: the handlers then find it read
                body = await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                return refuse(408, f"body not received within {BODY_TIMEOUT_S:.0f} s")
            except web.HTTPRequestEntityTooLarge:  # a chunked body past the cap
                return refuse(413, f"body larger than {cap} bytes")
            if len(body) > cap:
                return refuse(413, f"body larger than {cap} bytes")
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        response.headers.update(SECURITY_HEADERS)
        return response

    return guard


def _charset(request: web.Request) -> str | None:
    """The request's declared charset, lower case (aiohttp's property can raise on odd
    values)."""
    try:
        charset = request.charset
    except (LookupError, ValueError):
        return "?"
    return charset.lower() if charset else None
