"""Hostile clients on raw sockets against a real ``punchclock serve`` process with production settings.

The instance runs with ``PUNCHCLOCK_ENV=production`` on SQLite: none of these limits involves the database
(production only adds checks on a PostgreSQL URL), so no PostgreSQL is needed. The timeouts are shortened
to 2 s so the file stays well under a minute; their defaults are in the README. Each test asserts the answer
or the close, that no stamp was recorded, and that the instance still records a POST afterwards.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from punchclock_tools.http import wait_until_ready
from punchclock_tools.process import serving_on

TIMEOUT_S = 2  # header, body and keep-alive timeouts of the instance under test
MAX_CONNECTIONS = 20


class Instance:
    def __init__(self, url: str) -> None:
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT_S * 4)
        return sock

    def stamps(self) -> int:
        response = httpx.get(self.url + "/app", params={"limit": 1000}, timeout=10)
        assert response.status_code == 200
        return len(response.json()["items"])

    def assert_still_serves(self) -> None:
        assert httpx.post(self.url + "/app", timeout=10).status_code == 201


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    tmp = tmp_path_factory.mktemp("hostile")
    with serving_on(
        f"sqlite:///{tmp / 'hostile.db'}",
        tmp / "serve.log",
        PUNCHCLOCK_ENV="production",
        PUNCHCLOCK_ACCESS_LOG="false",
        PUNCHCLOCK_HEADER_TIMEOUT_SECONDS=str(TIMEOUT_S),
        PUNCHCLOCK_BODY_TIMEOUT_SECONDS=str(TIMEOUT_S),
        PUNCHCLOCK_KEEPALIVE_SECONDS=str(TIMEOUT_S),
        PUNCHCLOCK_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    ) as (url, process):
        wait_until_ready(url, process)
        yield Instance(url)
        assert process.poll() is None, (tmp / "serve.log").read_text()


@pytest.fixture
def unrecorded(instance: Instance) -> Iterator[Instance]:
    """The test's hostile requests record nothing, and the instance records a POST after them."""
    before = instance.stamps()
    yield instance
    assert instance.stamps() == before
    instance.assert_still_serves()


def read_all(sock: socket.socket, limit_s: float = TIMEOUT_S * 4) -> bytes:
    """Everything the server sends until it closes the connection (fails if it has not within ``limit_s``)."""
    sock.settimeout(limit_s)
    chunks = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    else:
        pytest.fail("the server did not close the connection")
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def exchange(instance: Instance, request: bytes) -> bytes:
    with instance.connect() as sock:
        # Refused before the whole request was sent: the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return read_all(sock)


def post(headers: bytes = b"", body: bytes = b"") -> bytes:
    return b"POST /app HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n" + body


def test_headers_past_16_kib_are_431(unrecorded: Instance) -> None:
    """A POST whose headers total more than 16 KiB is answered 431 and closed, unrecorded."""
    answer = exchange(unrecorded, post(b"X-Big: " + b"a" * 17_000 + b"\r\n"))
    assert status_of(answer) == 431


def test_headers_just_under_the_limit_are_served(instance: Instance) -> None:
    """15 KiB of headers are still a normal request: the limit is past 16 KiB, not below."""
    answer = exchange(instance, post(b"X-Big: " + b"a" * 15_000 + b"\r\nContent-Length: 0\r\n"))
    assert status_of(answer) == 201


def test_an_unfinished_huge_header_is_431_without_buffering_it(unrecorded: Instance) -> None:
    """4 MiB of one header line that never ends: 431 once 16 KiB are in, not a buffer that grows."""
    with unrecorded.connect() as sock:
        sock.sendall(b"POST /app HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 4 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 4 * 1024 * 1024  # closed long before all of it went in
        answer = read_all(sock)
    assert answer == b"" or status_of(answer) == 431


def test_more_than_100_headers_are_431(unrecorded: Instance) -> None:
    """2,000 small headers are answered 431."""
    many = b"".join(b"X-H%d: 1\r\n" % n for n in range(2000))
    assert status_of(exchange(unrecorded, post(many))) == 431


def test_headers_not_finished_in_time_are_408(unrecorded: Instance) -> None:
    """Slowloris: a header line a second; the instance answers 408 and closes within the header timeout."""
    with unrecorded.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"POST /app HTTP/1.1\r\nHost: x\r\n")
        try:
            for n in range(TIMEOUT_S * 3):
                time.sleep(0.5)
                sock.sendall(b"X-Slow-%d: 1\r\n" % n)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(sock)
        elapsed = time.monotonic() - started
    assert status_of(answer) == 408
    assert TIMEOUT_S - 0.5 < elapsed < TIMEOUT_S + 2


def test_a_silent_connection_is_closed_after_the_header_timeout(unrecorded: Instance) -> None:
    """A connection that sends nothing is closed once the header timeout has passed."""
    with unrecorded.connect() as sock:
        started = time.monotonic()
        assert read_all(sock) == b""
        assert time.monotonic() - started < TIMEOUT_S + 2


def test_a_body_not_finished_in_time_is_408(instance: Instance) -> None:
    """Headers announce 100 bytes, 10 come: 408 and the connection closed within the body timeout."""
    with instance.connect() as sock:
        started = time.monotonic()
        sock.sendall(post(b"Content-Length: 100\r\n", b"x" * 10))
        answer = read_all(sock)
        elapsed = time.monotonic() - started
    assert status_of(answer) == 408
    assert TIMEOUT_S - 0.5 < elapsed < TIMEOUT_S + 2
    instance.assert_still_serves()


def test_a_body_not_finished_in_time_records_nothing(instance: Instance) -> None:
    """The body timeout's request leaves no stamp."""
    before = instance.stamps()
    with instance.connect() as sock:
        sock.sendall(post(b"Content-Length: 100\r\n", b"x" * 10))
        read_all(sock)
    time.sleep(0.5)  # the app has seen the disconnect and finished
    assert instance.stamps() == before


def test_an_idle_keep_alive_connection_is_closed(instance: Instance) -> None:
    """After a response, a connection with no next request is closed after the keep-alive timeout."""
    with instance.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = read_all(sock)
        elapsed = time.monotonic() - started
    assert status_of(answer) == 200
    assert TIMEOUT_S - 0.5 < elapsed < TIMEOUT_S + 2


def test_too_many_connections_get_503_with_retry_after(unrecorded: Instance) -> None:
    """Past max_connections, a POST is answered 503 with Retry-After (never a 500) and its connection closed."""
    held = [unrecorded.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # every connection accepted by the server
        answer = exchange(unrecorded, post(b"Content-Length: 0\r\n"))
    finally:
        for sock in held:
            sock.close()
    head = answer.partition(b"\r\n\r\n")[0].lower()
    assert status_of(answer) == 503
    assert b"\r\nretry-after: 1" in head
    assert b"\r\nconnection: close" in head
    time.sleep(0.2)  # the held connections are gone from the server's count


def test_websocket_upgrade_is_not_accepted(instance: Instance) -> None:
    """An Upgrade: websocket request gets a plain HTTP answer, never 101."""
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with instance.connect() as sock:
        sock.sendall(request)
        sock.settimeout(5)
        answer = sock.recv(65536)
    assert status_of(answer) == 200


def test_content_length_with_transfer_encoding_is_400(unrecorded: Instance) -> None:
    """CL+TE request smuggling: a POST with both is refused 400, and the smuggled request never runs."""
    smuggled = b"POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    request = post(b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(body), body)
    assert status_of(exchange(unrecorded, request)) == 400


def test_duplicate_content_length_is_400(unrecorded: Instance) -> None:
    """Two Content-Length headers that disagree are refused 400."""
    assert status_of(exchange(unrecorded, post(b"Content-Length: 0\r\nContent-Length: 5\r\n", b"hello"))) == 400


def test_pipelined_requests_are_answered_in_order(instance: Instance) -> None:
    """Three requests in one write get three answers, in order."""
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /app/999999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with instance.connect() as sock:
        sock.sendall(one + one + last)
        answer = read_all(sock)
    statuses = [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]
    assert statuses == [200, 200, 404]


def test_a_huge_body_is_413_without_reading_it(unrecorded: Instance) -> None:
    """A POST announcing 100 MB is answered 413 at once; the instance does not wait for the body."""
    with unrecorded.connect() as sock:
        started = time.monotonic()
        sock.sendall(post(b"Content-Length: 100000000\r\n", b"x" * 65536))
        answer = read_all(sock)
    assert status_of(answer) == 413
    assert time.monotonic() - started < TIMEOUT_S


def test_a_huge_chunked_body_is_413(unrecorded: Instance) -> None:
    """A chunked POST that keeps sending is answered 413 past the body limit, not read to its end."""
    with unrecorded.connect() as sock:
        sock.sendall(post(b"Transfer-Encoding: chunked\r\n"))
        try:
            for _ in range(64):
                sock.sendall(b"10000\r\n" + b"x" * 65536 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(sock)
    assert status_of(answer) == 413


def test_garbage_bytes_are_400(unrecorded: Instance) -> None:
    """Bytes that are not HTTP get 400 and a close."""
    assert status_of(exchange(unrecorded, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)))) == 400
