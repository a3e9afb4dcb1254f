"""Small HTTP helpers for talking to a containerised punchclock on a loopback port."""

from __future__ import annotations

import time

import httpx


def wait_until_ready(base_url: str, path: str = "/readyz", timeout: float = 60) -> None:
    """Poll ``path`` until it answers 200, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(base_url + path, timeout=2)
            if response.status_code == 200:
                return
            last = response.status_code
        except httpx.TransportError as error:
            last = error
        time.sleep(0.25)
    raise TimeoutError(f"{base_url}{path} not ready after {timeout}s (last: {last!r})")


def stamp_round_trip(base_url: str) -> tuple[dict[str, object], dict[str, object]]:
    """POST /app, then GET the Location it returns: (receipt, stamp read back)."""
    created = httpx.post(base_url + "/app", timeout=10)
    assert created.status_code == 201, created.text
    read = httpx.get(base_url + created.headers["location"], timeout=10)
    assert read.status_code == 200, read.text
    return created.json(), read.json()
