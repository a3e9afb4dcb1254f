"""The stamp endpoints: ``POST /app``, ``GET /app/{id}``, ``GET /app`` and the brief's ``GET /display``."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from punchclock import problems
from punchclock.errors import InvalidRequest, NotFound, PayloadTooLarge, PunchclockError
from punchclock.settings import Settings
from punchclock.store import NewStamp, Stamp, Store
from punchclock.store.base import MAX_ID
from punchclock.writer import Writer

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
KEY_MAX_LENGTH = 255
KEY_HEADER = "Idempotency-Key"


def rfc3339(moment: datetime) -> str:
    """UTC with microseconds and a ``Z``: ``2026-11-27T10:00:00.123456Z``."""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def to_json(stamp: Stamp) -> dict[str, Any]:
    """The stamp for ``dumps``. orjson renders an aware UTC datetime as RFC 3339 itself, ten times faster
    than ``rfc3339``, but drops a zero fraction; that rare case is formatted here to keep six digits."""
    moment = stamp.recorded_at
    return {"id": stamp.id, "recorded_at": moment if moment.microsecond else rfc3339(moment)}


def dumps(body: object) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type="application/json")


def parse_idempotency_key(values: list[str]) -> str | None:
    """The key from the header, which may be a Structured Field string (``"abc"``) or a bare token."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("send one Idempotency-Key header, not several", parameter=KEY_HEADER)
    value = values[0].strip(" \t")  # HTTP's optional whitespace only (str.strip also takes \x1c-\x1f, \xa0)
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value:
        raise InvalidRequest("Idempotency-Key is empty", parameter=KEY_HEADER)
    if len(value) > KEY_MAX_LENGTH:
        raise InvalidRequest(f"Idempotency-Key is longer than {KEY_MAX_LENGTH} characters", parameter=KEY_HEADER)
    if not all(0x21 <= ord(char) <= 0x7E for char in value):
        raise InvalidRequest("Idempotency-Key may hold only visible ASCII characters", parameter=KEY_HEADER)
    return value


def encode_cursor(stamp_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{stamp_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, value = text.partition(":")
        if version != "v1" or not _is_number(value) or len(value) > _ID_DIGITS or int(value) > MAX_ID:
            raise ValueError(text)
        if base64.urlsafe_b64encode(text.encode()).decode().rstrip("=") != cursor:  # base64url as issued: no
            raise ValueError(text)  # padding, no characters the lenient decoder would skip
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("before is not a cursor this service issued", parameter="before") from None


def _is_number(text: str) -> bool:
    """Plain ASCII digits only (``str.isdigit`` also accepts characters such as ``²`` that ``int`` refuses)."""
    return text.isascii() and text.isdigit()


# The most digits an id can have (MAX_ID has 19); longer digit strings are refused before int() sees them,
# which would otherwise spend time on them and, past 4,300 digits, raise.
_ID_DIGITS = len(str(MAX_ID))


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not _is_number(raw) or len(raw) > len(str(MAX_LIMIT)) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}", parameter="limit")
    return int(raw)


class _ClientGone(Exception):
    """The connection closed before the request's body was complete."""


class StampsAPI:
    def __init__(self, writer: Writer, store: Store, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.writer = writer
        self.store = store
        self.clock = clock
        self.max_body = settings.max_body_bytes

    def routes(self) -> list[Route]:
        return [
            Route("/app", self.collection, methods=["GET", "POST"]),
            Route("/app/{stamp_id}", self.read, methods=["GET"]),
            Route("/display", self.display, methods=["GET"]),
        ]

    async def collection(self, request: Request) -> Response:
        """One route for both methods of ``/app``, so a 405 there lists every allowed method. ``POST`` is
        normally dispatched to ``create_asgi`` before Starlette (see ``RequestContext``); here it runs the
        same callable, which Starlette calls as it calls a response."""
        if request.method == "POST":
            return self.create_asgi  # type: ignore[return-value]
        return await self.list(request)

    async def create_asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /app`` as a bare ASGI callable: the hot path, without Starlette's request object, router and
        exception middleware (each adds coroutine frames to every resume). Errors are answered by the same
        problem handlers as every other route."""
        received_at = self.clock()
        generated: str | None = None
        try:
            keys = [value.decode("latin-1") for name, value in scope["headers"] if name == b"idempotency-key"]
            key = parse_idempotency_key(keys)
            if key is None:
                # 128 random bits as 32 hex digits, the shape of a uuid4's hex without building a UUID object.
                key = generated = os.urandom(16).hex()
            await self._drain(scope, receive)
            stored = await self.writer.record(NewStamp(key, received_at))
        except _ClientGone:
            return  # the client left before its request was complete: nothing is recorded, nobody to answer
        except PunchclockError as exc:
            response = await problems.punchclock_error(Request(scope), exc)
            await self._with_generated_key(response, exc.status, generated)(scope, receive, send)
            return
        except Exception as exc:  # the outermost catch-all, as ServerErrorMiddleware is for other routes
            response = await problems.unexpected_error(Request(scope), exc)
            await self._with_generated_key(response, 500, generated)(scope, receive, send)
            return
        location = f"/app/{stored.stamp.id}".encode()
        body = dumps(to_json(stored.stamp))
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (b"location", location),
        ]
        if not stored.created:
            headers.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _with_generated_key(response: Response, status: int, generated: str | None) -> Response:
        """A server error on a POST that came without a key may hide a stamp that was recorded after all (its
        commit landed as the budget ran out): hand out the key the server used, so a retry with it is safe."""
        if generated is not None and status >= 500:
            response.headers[KEY_HEADER] = generated
        return response

    async def _drain(self, scope: Scope, receive: Receive) -> None:
        """Read at most ``max_body`` bytes of a body nobody needs; refuse more without reading it all."""
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_body):
                raise PayloadTooLarge(f"POST /app takes no body; at most {self.max_body} bytes are accepted")
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":  # gone mid-body, or its body timed out: not a request
                raise _ClientGone
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            more = message.get("more_body", False)
            if received > self.max_body:
                raise PayloadTooLarge(f"POST /app takes no body; at most {self.max_body} bytes are accepted")

    async def read(self, request: Request) -> Response:
        raw: str = request.path_params["stamp_id"]
        if not _is_number(raw):
            raise NotFound(f"there is nothing at {request.url.path}")
        stamp_id = int(raw) if len(raw) <= _ID_DIGITS else MAX_ID + 1
        stamp = await self.store.get(stamp_id) if stamp_id <= MAX_ID else None
        if stamp is None:
            raise NotFound(f"there is no stamp {raw if len(raw) <= _ID_DIGITS else raw[:_ID_DIGITS] + '...'}")
        return json_response(to_json(stamp))

    async def list(self, request: Request) -> Response:
        for name in request.query_params:
            if name not in ("limit", "before"):
                raise InvalidRequest(f"unknown query parameter {name!r}", parameter=name)
        limit = parse_limit(request.query_params.get("limit"))
        raw_before = request.query_params.get("before")
        before = decode_cursor(raw_before) if raw_before is not None else None
        return await self._page(limit, before)

    async def display(self, request: Request) -> Response:
        return await self._page(DEFAULT_LIMIT, None)

    async def _page(self, limit: int, before: int | None) -> Response:
        stamps = await self.store.page(limit + 1, before)
        more = len(stamps) > limit
        stamps = stamps[:limit]
        next_cursor = encode_cursor(stamps[-1].id) if more else None
        return json_response({"items": [to_json(stamp) for stamp in stamps], "next": next_cursor})
