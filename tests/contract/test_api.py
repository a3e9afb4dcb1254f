"""The HTTP contract, run against both backends through a real server socket."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from punchclock.app import create_app
from punchclock.middleware import RequestContext
from punchclock_tools.service import serving, settings_for

PROBLEM = "application/problem+json"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings_for(database_url, migrate_on_start=True)) as client:
        yield client


async def all_stamps(client: httpx.AsyncClient) -> list[dict[str, object]]:
    """Every stamp, by walking the pages."""
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        response = await client.get("/app", params={"limit": 1000, **({"before": cursor} if cursor else {})})
        assert response.status_code == 200
        page = response.json()
        items.extend(page["items"])
        cursor = page["next"]
        if cursor is None:
            return items


async def test_post_records_a_stamp_of_the_moment_received(client: httpx.AsyncClient) -> None:
    """POST /app answers 201 with the receipt, a Location, and a UTC microsecond stamp of now."""
    before = datetime.now(UTC)
    response = await client.post("/app")
    after = datetime.now(UTC)

    assert response.status_code == 201
    receipt = response.json()
    assert set(receipt) == {"id", "recorded_at"}
    assert response.headers["location"] == f"/app/{receipt['id']}"
    assert receipt["recorded_at"].endswith("Z")
    assert len(receipt["recorded_at"]) == len("2026-01-01T00:00:00.000000Z")
    assert before <= datetime.fromisoformat(receipt["recorded_at"]) <= after
    assert (await client.get(response.headers["location"])).json() == receipt


async def test_unknown_stamp_is_404_problem(client: httpx.AsyncClient) -> None:
    """GET /app/{id} of a stamp that does not exist is a 404 problem."""
    response = await client.get("/app/999999")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 404


async def test_sequential_retries_with_one_key_record_one_stamp(client: httpx.AsyncClient) -> None:
    """A POST retried with the same Idempotency-Key returns the original receipt and records once."""
    first = await client.post("/app", headers={"Idempotency-Key": "order-42"})
    again = await client.post("/app", headers={"Idempotency-Key": '"order-42"'})

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(await all_stamps(client)) == 1


async def test_concurrent_retries_with_one_key_record_one_stamp(client: httpx.AsyncClient) -> None:
    """Fifty simultaneous POSTs with one key all get the same receipt; one row exists."""
    responses = await asyncio.gather(*(client.post("/app", headers={"Idempotency-Key": "same"}) for _ in range(50)))

    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert len(await all_stamps(client)) == 1


async def test_a_thousand_concurrent_posts_make_a_thousand_rows(client: httpx.AsyncClient) -> None:
    """1,000 concurrent POSTs give 1,000 distinct ids, each readable, none returned twice."""
    responses = await asyncio.gather(*(client.post("/app") for _ in range(1000)))

    assert [r.status_code for r in responses].count(201) == 1000
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 1000
    stored = {item["id"] for item in await all_stamps(client)}
    assert stored == set(ids)
    sample = await asyncio.gather(*(client.get(f"/app/{stamp_id}") for stamp_id in ids[::50]))
    assert {r.status_code for r in sample} == {200}


async def test_pages_return_every_stamp_once_newest_first(client: httpx.AsyncClient) -> None:
    """Walking pages of 7 over 30 stamps yields all 30, each once, in descending id order."""
    for _ in range(30):
        assert (await client.post("/app")).status_code == 201
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "7", **({"before": cursor} if cursor else {})}
        page = (await client.get("/app", params=params)).json()
        assert len(page["items"]) <= 7
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == 30
    assert seen == sorted(set(seen), reverse=True)


async def test_display_is_the_first_page(client: httpx.AsyncClient) -> None:
    """GET /display returns the newest stamps, bounded like the first page of /app."""
    for _ in range(3):
        await client.post("/app")
    display = (await client.get("/display")).json()
    assert display == (await client.get("/app")).json()
    assert len(display["items"]) == 3


@pytest.mark.parametrize(
    ("request_args", "status", "parameter"),
    [
        ({"method": "GET", "url": "/app?limit=0"}, 400, "limit"),
        ({"method": "GET", "url": "/app?limit=1001"}, 400, "limit"),
        ({"method": "GET", "url": "/app?limit=ten"}, 400, "limit"),
        ({"method": "GET", "url": "/app?limit=\u00b2"}, 400, "limit"),
        ({"method": "GET", "url": "/app?before=djE6OTk5OTk5OTk5OTk5OTk5OTk5OTk"}, 400, "before"),
        ({"method": "GET", "url": "/app?before=not-a-cursor"}, 400, "before"),
        ({"method": "GET", "url": "/app?colour=red"}, 400, "colour"),
        ({"method": "POST", "url": "/app", "headers": {"Idempotency-Key": ""}}, 400, "Idempotency-Key"),
        ({"method": "POST", "url": "/app", "headers": {"Idempotency-Key": "x" * 256}}, 400, "Idempotency-Key"),
        ({"method": "POST", "url": "/app", "headers": {"Idempotency-Key": "tab\there"}}, 400, "Idempotency-Key"),
        ({"method": "POST", "url": "/app", "content": b"x" * 5000}, 413, None),
        ({"method": "DELETE", "url": "/app"}, 405, None),
        ({"method": "PUT", "url": "/app/1"}, 405, None),
        ({"method": "GET", "url": "/nowhere"}, 404, None),
        # Digit strings past what any id or limit can be, long enough that int() itself would refuse them.
        ({"method": "GET", "url": "/app/" + "9" * 5000}, 404, None),
        ({"method": "GET", "url": "/app/99999999999999999999"}, 404, None),
        ({"method": "GET", "url": "/app/-1"}, 404, None),
        ({"method": "GET", "url": "/app?limit=" + "9" * 5000}, 400, "limit"),
        ({"method": "GET", "url": "/app?limit=" + "0" * 5000 + "5"}, 400, "limit"),
    ],
)
async def test_bad_requests_get_a_problem_and_record_nothing(
    client: httpx.AsyncClient, request_args: dict[str, object], status: int, parameter: str | None
) -> None:
    """Each error path answers its status with a problem+json reason, records nothing, and the service serves on."""
    response = await client.request(**request_args)  # type: ignore[arg-type]

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    assert body.get("parameter") == parameter
    if status == 405:
        allowed = set(response.headers["allow"].split(", "))
        assert allowed == ({"GET", "HEAD", "POST"} if request_args["url"] == "/app" else {"GET", "HEAD"})
    assert await all_stamps(client) == []
    assert (await client.post("/app")).status_code == 201


async def test_oversized_chunked_body_is_refused_without_reading_it_all(client: httpx.AsyncClient) -> None:
    """A streamed body over the limit, with no Content-Length, is refused with 413."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"y" * 1000

    response = await client.post("/app", content=chunks())
    assert response.status_code == 413
    assert await all_stamps(client) == []


async def test_small_body_is_ignored(client: httpx.AsyncClient) -> None:
    """A body within the limit is not part of the contract and does not stop the stamp."""
    assert (await client.post("/app", content=b"{}")).status_code == 201


async def test_health_readiness_and_request_id(client: httpx.AsyncClient) -> None:
    """/healthz and /readyz answer 200; a caller's X-Request-ID is echoed, otherwise one is made."""
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz", headers={"X-Request-ID": "abc-123"})
    assert ready.status_code == 200
    assert ready.headers["x-request-id"] == "abc-123"
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32


async def test_metrics_expose_the_write_path(client: httpx.AsyncClient) -> None:
    """/metrics has request, latency (by route and method), commit, batch, pool, queue, readiness and build series."""
    await client.post("/app")
    await client.get("/readyz")
    text = (await client.get("/metrics")).text
    for series in (
        'punchclock_http_requests_total{method="POST",route="/app",status="201"} 1.0',
        'punchclock_http_request_duration_seconds_count{method="POST",route="/app"} 1.0',
        "punchclock_stamps_committed_total 1.0",
        "punchclock_commit_batch_size_count 1.0",
        "punchclock_commit_duration_seconds_count 1.0",
        "punchclock_pool_size",
        "punchclock_pool_in_use",
        "punchclock_pool_max",
        "punchclock_queue_depth 0.0",
        "punchclock_queue_max 10000.0",
        "punchclock_ready 1.0",
        'punchclock_build_info{version="',
    ):
        assert series in text


def operations(app: RequestContext) -> set[tuple[str, str]]:
    """Every (METHOD, path) the application answers: Starlette's route table, plus ``POST /app``, which
    ``RequestContext`` dispatches to ``post_app`` ahead of Starlette. Path parameters read as ``{}``."""
    assert isinstance(app.app, Starlette)
    served = {("POST", "/app")} if app.post_app is not None else set()
    for route in app.app.routes:
        assert isinstance(route, Route), f"{route!r} is not a plain Route: teach this test what it serves"
        served |= {(method, _template(route.path)) for method in route.methods or () if method != "HEAD"}
    return served  # HEAD is left out: Starlette answers it for every GET, and the spec does not list it


async def test_openapi_bounds_are_what_the_service_accepts(client: httpx.AsyncClient) -> None:
    """/openapi.json's Idempotency-Key pattern takes a key at each documented limit and refuses one past it, as
    the service does; its cursor pattern matches the ``next`` a page hands out, which answers the next page."""
    spec = (await client.get("/openapi.json")).json()
    post, get = spec["paths"]["/app"]["post"], spec["paths"]["/app"]["get"]
    key = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")["schema"]
    before = next(p for p in get["parameters"] if p["name"] == "before")["schema"]
    keys = ["k" * 255, '"' + "q" * 255 + '"', "!~", "k" * 256, '""', "tab\there"]

    described = [re.fullmatch(key["pattern"], value) is not None for value in keys]
    answered = [(await client.post("/app", headers={"Idempotency-Key": value})).status_code for value in keys]
    page = (await client.get("/app", params={"limit": 1})).json()
    following = await client.get("/app", params={"limit": 1, "before": page["next"]})

    assert (key["minLength"], key["maxLength"]) == (1, 257)
    assert described == [True, True, True, False, False, False]
    assert answered == [201, 201, 201, 400, 400, 400]
    assert re.fullmatch(before["pattern"], page["next"]) is not None
    assert following.status_code == 200
    assert following.json()["items"][0]["id"] < page["items"][0]["id"]
    assert post["responses"]["201"]["headers"]["Idempotent-Replayed"]["schema"] == {"type": "string", "enum": ["true"]}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


async def test_openapi_describes_every_route(client: httpx.AsyncClient, database_url: str) -> None:
    """/openapi.json is OpenAPI 3.1 and describes exactly the routes the app serves (no more, none missing);
    /docs renders."""
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    described = {(method.upper(), _template(path)) for path, methods in spec["paths"].items() for method in methods}
    assert described == operations(create_app(settings_for(database_url)))
    assert "Idempotency-Key" in str(spec["paths"]["/app"]["post"]["parameters"])
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "POST /app" in docs.text
