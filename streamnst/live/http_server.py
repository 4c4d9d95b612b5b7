"""The aiohttp server under our pages, with the limits aiohttp leaves to its user.

aiohttp has no deadline for a request's headers, no cap on open connections, answers its
own errors (a bad request line, a 500) without our security headers, and logs a
55-line traceback whenever a client leaves mid-request. Here:
- a connection that has not sent a whole request head within HEADER_TIMEOUT_S is closed;
- past MAX_CONNECTIONS open connections, a new one is closed at once;
- every response aiohttp makes itself carries SECURITY_HEADERS;
- a client that leaves is one debug line; any other failure is one error line (its
  traceback at debug level).
The body's own deadline and size cap are checked per request (http_guard.py).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from streamnst.live.http_guard import SECURITY_HEADERS

log = logging.getLogger(__name__)
HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 64
KEEPALIVE_S = 15.0


class _Handler(RequestHandler):
    """One connection: a deadline for its first request head, quiet about leavers."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_timer = self._loop.call_later(HEADER_TIMEOUT_S, self._head_deadline)

    def _head_deadline(self) -> None:
        if self._request_count == 0 and self.transport is not None:
            log.debug("closed a connection that sent no request within %.0f s",
                      HEADER_TIMEOUT_S)
            self.force_close()  # closes the transport, and forgets it (None from here)

    def connection_lost(self, exc: BaseException | None) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        response.headers.update(SECURITY_HEADERS)
        return response

    def log_exception(self, *args, **kw) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, (ConnectionError, asyncio.CancelledError, asyncio.TimeoutError)):
            log.debug("client left mid-request (%s)", type(exc).__name__)
            return
        if isinstance(exc, HttpProcessingError):  # the client's malformed request: a 400
            log.debug("bad request: %s", " ".join(str(exc).split()))
            return
        what = args[0] % args[1:] if args else "request failed"
        log.error("%s: %s", what, exc if isinstance(exc, BaseException) else "see debug log")
        log.debug("traceback", exc_info=exc)


class _Server(Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) > MAX_CONNECTIONS:
            log.debug("over %d connections: closed a new one", MAX_CONNECTIONS)
            transport.close()


class GuardedRunner(web.AppRunner):
    """`web.AppRunner` whose server applies the module docstring's limits."""

    def __init__(self, app: web.Application, **kwargs) -> None:
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_S)
        kwargs.setdefault("access_log", None)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _Server  # the same object, handing out our connections
        return server
