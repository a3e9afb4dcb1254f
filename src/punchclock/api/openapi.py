"""The OpenAPI 3.1 description of every route, header and error, and a self-contained docs page."""

from __future__ import annotations

import html
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from punchclock import __version__
from punchclock.api.stamps import DEFAULT_LIMIT, KEY_HEADER, KEY_MAX_LENGTH, MAX_LIMIT

# Idempotency-Key: 1 to KEY_MAX_LENGTH visible ASCII characters (! to ~), bare or inside one pair of double
# quotes (a Structured Field string). The one bare value refused is '""', which quotes an empty key.
KEY_PATTERN = f'^(?:[!-~]|[!#-~][!-~]|"[!#-~]|[!-~]{{3,{KEY_MAX_LENGTH}}}|"[!-~]{{1,{KEY_MAX_LENGTH}}}")$'

# A cursor is ``v1:`` and a stamp id in decimal, base64url-encoded without padding ("v1:" is "djE6"). Three
# digits encode to four characters of which the first two follow from the first digit, the third from the
# second digit and the fourth from the third; one or two digits left over end the cursor in two or three.
_LEAD = "(?:[MN][DTjz]|O[DT])"  # the first two characters of three digits, by their first digit 0-9
_TRIPLE = f"{_LEAD}[AEIMQUYcgk][w-z0-5]"
_ONE = "(?:[MN][AQgw]|O[AQ])"
_TWO = f"{_LEAD}[AEIMQUYcgk]"
# Ids of up to 18 digits, and of 19 digits that start with 0 to 8 (every id below 9 * 10**18; the largest,
# 2**63 - 1, starts with 9, and a digit-wise bound on the rest would not be worth its pattern).
_NINETEEN = f"(?:[MN][DTjz]|OD)[AEIMQUYcgk][w-z0-5](?:{_TRIPLE}){{5}}{_ONE}"
CURSOR_PATTERN = f"^djE6(?:(?:{_TRIPLE}){{0,5}}(?:{_TRIPLE}|{_TWO}|{_ONE})|{_NINETEEN})$"


def _problem(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    return response


_UNAVAILABLE = _problem("The database cannot take the request now (failover, overload, draining)", True)
_REQUEST_ID = {"$ref": "#/components/parameters/RequestId"}
_PAGE = {
    "200": {
        "description": "Newest first",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}},
    },
    "503": _UNAVAILABLE,
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "punchclock",
        "version": __version__,
        "description": "Records a durable UTC timestamp for every POST /app.",
    },
    "paths": {
        "/app": {
            "post": {
                "summary": "Record a stamp of the moment the request was received",
                "description": "201 means the stamp is committed (on a synchronous standby in the HA setup). "
                "A retry with the same Idempotency-Key, at any time while its stamp is kept, records nothing "
                "and answers what the first request was answered: 201 with the same id, recorded_at and "
                "Location, plus `Idempotent-Replayed: true`. The key alone identifies the request (POST /app "
                "takes no body). Retries that arrive together are recorded once; each gets the receipt.",
                "parameters": [
                    {
                        "name": KEY_HEADER,
                        "in": "header",
                        "required": False,
                        "description": f"1 to {KEY_MAX_LENGTH} visible ASCII characters (`!` to `~`), bare "
                        '(`order-42`) or as a Structured Field string (`"order-42"`, the same key); kept as long '
                        "as the stamp. Empty, longer, other characters or more than one such header: 400 with "
                        f"`parameter: {KEY_HEADER}`. Without one, the server makes a key of its own.",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": KEY_MAX_LENGTH + 2,
                            "pattern": KEY_PATTERN,
                        },
                    },
                    _REQUEST_ID,
                ],
                "responses": {
                    "201": {
                        "description": "Recorded (or replayed for a known Idempotency-Key)",
                        "headers": {
                            "Location": {"schema": {"type": "string"}, "description": "/app/{id}"},
                            "Idempotent-Replayed": {
                                "schema": {"type": "string", "enum": ["true"]},
                                "description": "Present when the key was seen before",
                            },
                        },
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stamp"}}},
                    },
                    "400": _problem(f"A malformed {KEY_HEADER}; `parameter` names it"),
                    "413": _problem("A request body over the small limit (the endpoint takes none)"),
                    "503": {
                        **_UNAVAILABLE,
                        "headers": {
                            **_UNAVAILABLE["headers"],
                            KEY_HEADER: {
                                "schema": {"type": "string"},
                                "description": "On a request sent without a key: the key the server used. The "
                                "stamp may have been recorded all the same; a retry with this key records it "
                                "at most once.",
                            },
                        },
                    },
                },
            },
            "get": {
                "summary": "List stamps, newest first, with keyset pagination",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "description": "The `next` cursor of the previous page, as it came: base64url without "
                        "padding of `v1:` and the id of that page's last stamp (the pattern spells those of ids "
                        "below 9 * 10^18). The page holds the stamps with smaller ids. A value that does not read "
                        "as such a cursor: 400 with `parameter: before`.",
                        "schema": {"type": "string", "pattern": CURSOR_PATTERN},
                    },
                    _REQUEST_ID,
                ],
                "responses": {
                    **_PAGE,
                    "400": _problem(
                        "A bad limit, a cursor this service did not issue, or an unknown query "
                        "parameter; `parameter` names it"
                    ),
                },
            },
        },
        "/app/{id}": {
            "get": {
                "summary": "Read one stamp",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
                    _REQUEST_ID,
                ],
                "responses": {
                    "200": {
                        "description": "The stamp",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stamp"}}},
                    },
                    "404": _problem("No such stamp"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/display": {"get": {"summary": "The first page of stamps (kept from the original brief)", "responses": _PAGE}},
        "/healthz": {
            "get": {"summary": "Liveness; never touches the database", "responses": {"200": {"description": "Alive"}}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: not draining, and the database took a write within the failover budget",
                "responses": {"200": {"description": "Ready"}, "503": _problem("Not ready", True)},
            }
        },
        "/readyz/database": {
            "get": {
                "summary": "Whether the database takes a write right now",
                "responses": {"200": {"description": "Writable"}, "503": _problem("Not writable", True)},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {}}}},
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}},
        "/docs": {
            "get": {
                "summary": "Human-readable API reference",
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }
        },
    },
    "components": {
        "schemas": {
            "Stamp": {
                "type": "object",
                "required": ["id", "recorded_at"],
                "properties": {
                    "id": {"type": "integer"},
                    "recorded_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "UTC, microseconds, RFC 3339",
                    },
                },
            },
            "Page": {
                "type": "object",
                "required": ["items", "next"],
                "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Stamp"}},
                    "next": {
                        "type": ["string", "null"],
                        "pattern": CURSOR_PATTERN,
                        "description": "The cursor for the next page (pass it as `before`), or null on the last",
                    },
                },
            },
            "Problem": {
                "type": "object",
                "description": "RFC 9457 problem details",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "parameter": {"type": "string", "description": "The request parameter at fault"},
                },
            },
        },
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
        "parameters": {
            "RequestId": {
                "name": "X-Request-ID",
                "in": "header",
                "required": False,
                "description": "Echoed back; generated when absent",
                "schema": {"type": "string"},
            }
        },
    },
}

_SPEC_JSON = orjson.dumps(SPEC)


async def openapi(request: Request) -> Response:
    return Response(_SPEC_JSON, media_type="application/json")


async def docs(request: Request) -> Response:
    rows = []
    for path, methods in SPEC["paths"].items():
        for method, operation in methods.items():
            codes = ", ".join(operation["responses"])
            rows.append(
                f"<tr><td><code>{method.upper()} {html.escape(path)}</code></td>"
                f"<td>{html.escape(operation['summary'])}</td><td>{codes}</td></tr>"
            )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>punchclock API</title></head><body>"
        f"<h1>punchclock {__version__}</h1><p>{html.escape(SPEC['info']['description'])} "
        "Errors are <code>application/problem+json</code>. "
        "Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>"
        "<table border='1' cellpadding='4'><tr><th>Route</th><th>What</th><th>Statuses</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return HTMLResponse(page)


ROUTES = [Route("/openapi.json", openapi, methods=["GET"]), Route("/docs", docs, methods=["GET"])]
