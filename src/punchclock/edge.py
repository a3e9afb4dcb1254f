"""Limits at the edge of each instance, enforced in uvicorn's httptools protocol before any ASGI code runs.

uvicorn bounds neither the size nor the number of headers, and its only timer starts after a first
response, so a client that never finishes its headers or its body holds a connection and its buffers
forever. ``EdgeProtocol`` adds, per connection:

- request line plus headers at most ``max_header_bytes`` and at most ``max_headers`` headers, else ``431``;
- the headers read within ``header_timeout`` (counted from the connection or the request's first byte), else
  ``408`` and the connection closed;
- a body, once its headers are in, read within ``body_timeout``, else ``408`` and the connection closed;
- past ``max_connections`` open connections a request is answered ``503`` with ``Retry-After`` and its
  connection closed, so overload is back-pressure rather than memory.

Idle keep-alive and WebSockets stay uvicorn's settings (``timeout_keep_alive``, ``ws="none"``).

uvicorn writes a response's head and its body with a transport write each: two send(2) calls and two TCP
segments per answer, the largest single cost in a profile of ``POST /app``. ``EdgeProtocol`` hands uvicorn
a transport that gathers what is written during one turn of the event loop and sends it at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = structlog.get_logger("punchclock.edge")

_PHRASES = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class EdgeLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_timeout: float
    max_connections: int


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that has just been refused."""


def _problem(status: int, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"type": "about:blank", "title": _PHRASES[status].decode(), "status": status, "detail": detail})
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    return headers, body.encode()


_OVERLOADED = _problem(503, "too many connections to this instance; retry shortly")


async def _overloaded(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    headers, body = _OVERLOADED
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _OneSendPerTurn:
    """The connection's transport for uvicorn: writes made in one event-loop turn go out as one send."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()  # what was written before the close is sent first, as it would have been
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, pause_reading, resume_reading...
        return getattr(self._transport, name)


class EdgeProtocol(HttpToolsProtocol):
    limits: ClassVar[EdgeLimits]
    _last_overload_log: ClassVar[float] = 0.0

    # The phase of the request being read: between requests, in its headers, in its body.
    _IDLE, _HEADERS, _BODY = 0, 1, 2

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn's flow control keeps the real transport; requests' cycles and this protocol write through this.
        self.transport = _OneSendPerTurn(transport, self.loop)  # type: ignore[assignment]
        self._phase = self._IDLE
        self._header_bytes = 0  # request line and headers parsed so far
        self._unparsed = 0  # bytes received while a request's headers were incomplete
        self._header_count = 0
        # Nothing sent yet: the first request's headers are due within the header timeout too.
        self._timer: asyncio.TimerHandle | None = self.loop.call_later(self.limits.header_timeout, self._timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase != self._BODY:
            self._unparsed += len(data)
        super().data_received(data)  # a _Refused from a callback reaches uvicorn as a parser error: see below
        if self.transport.is_closing():
            return
        if self._phase == self._HEADERS and self._unparsed > self.limits.max_header_bytes:
            self._refuse(431, f"request line and headers exceed {self.limits.max_header_bytes} bytes")
        elif self._phase != self._IDLE and self._timer is None:
            timeout = self.limits.header_timeout if self._phase == self._HEADERS else self.limits.body_timeout
            self._timer = self.loop.call_later(timeout, self._timed_out)

    def send_400_response(self, msg: str) -> None:
        if self.transport.is_closing():  # refused already, from inside a parser callback
            return
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = self._HEADERS
        self._header_bytes = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        self._check_headers()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        self._header_count += 1
        self._check_headers()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_timer()
        self._phase = self._BODY
        self._unparsed = 0
        if len(self.connections) <= self.limits.max_connections:
            super().on_headers_complete()
            return
        self._log_overload()
        app, self.app = self.app, _overloaded  # uvicorn starts (or queues) self.app for this request
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._cancel_timer()
        self._phase = self._IDLE
        super().on_message_complete()

    def _check_headers(self) -> None:
        if self._header_count > self.limits.max_headers:
            self._refuse(431, f"more than {self.limits.max_headers} header fields")
        elif self._header_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"request line and headers exceed {self.limits.max_header_bytes} bytes")
        else:
            return
        raise _Refused

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._phase == self._IDLE:
            self.transport.close()  # connected but never sent a byte: nothing to answer
        else:
            which = "headers" if self._phase == self._HEADERS else "body"
            timeout = self.limits.header_timeout if self._phase == self._HEADERS else self.limits.body_timeout
            self._refuse(408, f"the request's {which} did not arrive within {timeout:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer ``status`` without running the app and close; if an earlier pipelined response is still being
        written, just close."""
        log.warning("request refused at the edge", status=status, reason=detail, client=self.client)
        cycle = self.cycle
        # Bytes written now would land inside a response being written, or ahead of one still due.
        if cycle is None:
            busy = False
        elif self._phase == self._BODY:  # this request's cycle: answered already, or not yet
            busy = cycle.response_started
        else:  # a new request's headers: the previous response must be out
            busy = not cycle.response_complete
        busy = busy or bool(self.pipeline)
        if self._phase == self._BODY and self.cycle is not None:
            self.cycle.disconnected = True  # the app's later sends are dropped; its receive sees a disconnect
        if not busy:
            headers, body = _problem(status, detail)
            head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
            self.transport.write(b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (status, _PHRASES[status], head, body))
        self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _log_overload(self) -> None:
        now = time.monotonic()
        if now - EdgeProtocol._last_overload_log >= 1:  # one line a second at most under a flood
            EdgeProtocol._last_overload_log = now
            log.warning(
                "more connections than max_connections: answering 503 with Retry-After",
                connections=len(self.connections),
                max_connections=self.limits.max_connections,
            )


def protocol_for(limits: EdgeLimits) -> type[EdgeProtocol]:
    """An ``EdgeProtocol`` class bound to ``limits``, for ``uvicorn.Config(http=...)``."""
    return type("EdgeProtocol", (EdgeProtocol,), {"limits": limits})
