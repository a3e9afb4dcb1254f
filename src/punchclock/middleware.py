"""Outermost ASGI middleware: request ids, one access-log line per request, request metrics, and
``Connection: close`` while draining so that clients stop reusing connections before the listener closes."""

from __future__ import annotations

import itertools
import secrets
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from punchclock.lifecycle import Lifecycle
from punchclock.logs import AccessLog
from punchclock.metrics import Metrics


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        lifecycle: Lifecycle,
        access_log: AccessLog | None,
        post_app: ASGIApp | None = None,
    ) -> None:
        self.app = app
        self.post_app = post_app  # POST /app's own ASGI callable: the hot path skips Starlette's stack
        self.lifecycle = lifecycle
        self.metrics = metrics
        self.access_log = access_log
        # Request ids: a random prefix per process and a counter, 32 hex digits like a uuid4 but without its
        # cost on every request (os.urandom and a UUID object); workers each build their own app.
        self._id_prefix = secrets.token_hex(8)
        self._ids = itertools.count(1)
        # The instruments' children by label values: ``labels()`` validates and locks on every call.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope) or f"{self._id_prefix}{next(self._ids):016x}"
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                if self.lifecycle.draining:
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        fast = self.post_app is not None and scope["method"] == "POST" and scope["path"] == "/app"
        try:
            if fast:
                await self.post_app(scope, receive, send_with_id)  # type: ignore[misc]
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            label = "/app" if fast else getattr(scope.get("route"), "path", "unmatched")
            counter, latency = self._instruments(label, scope["method"], status)
            counter.inc()
            latency.observe(elapsed)
            if self.access_log is not None:
                self.access_log.request(
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                    request_id=request_id,
                )

    def _instruments(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter and latency histogram children for these labels, made once."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.metrics.requests.labels(route, method, str(status)),
                self.metrics.latency.labels(route, method),
            )
        return children


def _request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            # Echo a caller's id only when it is short and printable, so it is safe in logs and headers.
            if 0 < len(text) <= 128 and text.isprintable() and text.isascii():
                return text
    return None
