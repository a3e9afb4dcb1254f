"""HTTP helpers for a punchclock served on a loopback port: wait until it is ready, record and read back a stamp."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_ready(
    base_url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60, path: str = "/readyz"
) -> None:
    """Poll ``path`` until it answers 200; fail after ``timeout`` seconds, or as soon as ``process`` exits."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"punchclock exited with {process.returncode} before it was ready")
        try:
            response = httpx.get(base_url + path, timeout=2)
            if response.status_code == 200:
                return
            last = response.status_code
        except httpx.TransportError as error:
            last = error
        time.sleep(0.1)
    raise TimeoutError(f"{base_url}{path} not ready after {timeout}s (last: {last!r})")


def stamp_round_trip(base_url: str) -> tuple[dict[str, object], dict[str, object]]:
    """POST /app, then GET the Location it returns: (receipt, stamp read back)."""
    created = httpx.post(base_url + "/app", timeout=10)
    assert created.status_code == 201, created.text
    read = httpx.get(base_url + created.headers["location"], timeout=10)
    assert read.status_code == 200, read.text
    return created.json(), read.json()
