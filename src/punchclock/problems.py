"""RFC 9457 problem details: every error punchclock answers is ``application/problem+json``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from punchclock.errors import InvalidRequest, PunchclockError, StorageError, TransientStorageError

MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("punchclock.errors")


def problem(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    body.update(extra)
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=MEDIA_TYPE)


async def punchclock_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PunchclockError)
    extra: dict[str, Any] = {"instance": request.url.path}
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidRequest) and exc.parameter:
        extra["parameter"] = exc.parameter
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    detail = exc.detail
    if isinstance(exc, StorageError):  # the driver's words stay in the log: they can name hosts and ports
        detail = (
            "the database is unavailable right now"
            if isinstance(exc, TransientStorageError)
            else "the database failed this request; it has been logged"
        )
    if exc.status >= 500:
        log.warning("answering with an error", status=exc.status, detail=exc.detail, path=request.url.path)
    return problem(exc.status, detail, headers, **extra)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors: unknown path (404), wrong method (405, with ``Allow``)."""
    assert isinstance(exc, HTTPException)
    detail = {
        404: f"there is nothing at {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, exc.detail)
    return problem(exc.status_code, detail, dict(exc.headers or {}), instance=request.url.path)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """The outermost catch-all: log the failure with its traceback, answer a bland 500."""
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return problem(500, "punchclock failed to handle this request; it has been logged")


HANDLERS = {PunchclockError: punchclock_error, HTTPException: http_error, Exception: unexpected_error}
