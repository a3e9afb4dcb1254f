"""Read alert states from Prometheus's ``/api/v1/alerts``, bounded in time."""

from __future__ import annotations

import time
from typing import Any, Protocol


class AlertSource(Protocol):
    def alerts(self) -> list[dict[str, Any]]: ...


def matching(source: AlertSource, name: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The active alerts named ``name`` whose labels include ``labels``."""
    wanted = {"alertname": name, **(labels or {})}
    return [alert for alert in source.alerts() if wanted.items() <= alert["labels"].items()]


def wait_firing(
    source: AlertSource, name: str, timeout: float, labels: dict[str, str] | None = None, interval: float = 0.5
) -> tuple[float, dict[str, Any]]:
    """Poll until ``name`` fires; return the seconds it took and the alert. TimeoutError names what was active."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        firing = [alert for alert in matching(source, name, labels) if alert["state"] == "firing"]
        if firing:
            return time.monotonic() - started, firing[0]
        time.sleep(interval)
    active = sorted(f"{a['labels']['alertname']}({a['state']})" for a in source.alerts())
    raise TimeoutError(f"{name} did not fire within {timeout}s; active: {active}")


def wait_resolved(
    source: AlertSource, name: str, timeout: float, labels: dict[str, str] | None = None, interval: float = 0.5
) -> float:
    """Poll until no alert named ``name`` is pending or firing; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not matching(source, name, labels):
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"{name} still active after {timeout}s: {matching(source, name, labels)}")
