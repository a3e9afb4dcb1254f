"""Debian's Prometheus as a process of its own: a loopback port, a private data directory, killed by process group."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from punchclock_tools.monitoring import daemon
from punchclock_tools.ports import free_port

BINARY = "prometheus"  # Debian package prometheus


@dataclass(frozen=True)
class ScrapeSettings:
    """How often Prometheus scrapes and evaluates; ``alertmanagers`` are ``host:port`` of Alertmanagers to notify."""

    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    scrape_timeout: str | None = None
    alertmanagers: tuple[str, ...] = ()
    external_labels: dict[str, str] = field(default_factory=dict)


def config(
    jobs: dict[str, list[str]],
    rule_files: list[Path],
    settings: ScrapeSettings,
    extra_scrape_configs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A prometheus.yml scraping each job's ``host:port`` targets on ``/metrics`` (and ``extra_scrape_configs`` as
    they are, a blackbox probe say) and loading ``rule_files``."""
    global_: dict[str, Any] = {
        "scrape_interval": settings.scrape_interval,
        "evaluation_interval": settings.evaluation_interval,
    }
    if settings.scrape_timeout:
        global_["scrape_timeout"] = settings.scrape_timeout
    if settings.external_labels:
        global_["external_labels"] = dict(settings.external_labels)
    document: dict[str, Any] = {
        "global": global_,
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items() if targets
        ]
        + list(extra_scrape_configs or []),
    }
    if settings.alertmanagers:
        document["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(settings.alertmanagers)}]}]}
    return document


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes] | None  # None for one another command started (make monitoring-up)
    log: Path

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=10)
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def alerts(self) -> list[dict[str, Any]]:
        """The active alerts (pending or firing), as ``/api/v1/alerts`` lists them."""
        return list(self.get("/api/v1/alerts")["alerts"])

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/targets")["activeTargets"])

    def wait_all_up(self, timeout: float = 60) -> None:
        """Until every target has been scraped successfully once."""
        deadline = time.monotonic() + timeout
        down: list[str] = ["(none listed yet)"]
        while time.monotonic() < deadline:
            targets = self.targets()
            down = [f"{t['scrapeUrl']}: {t['lastError']}" for t in targets if t["health"] != "up"]
            if targets and not down:
                return
            time.sleep(0.5)
        raise TimeoutError(f"targets not up after {timeout}s: {down}")


def start(workdir: Path, document: dict[str, Any], port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Write ``document`` as ``workdir``/prometheus.yml and start Prometheus on it in its own session."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise FileNotFoundError("prometheus is not installed (Debian package prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(document, sort_keys=False))
    address = f"127.0.0.1:{port or free_port()}"
    argv = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={address}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    return daemon.spawn(argv, workdir / "prometheus.log"), f"http://{address}"


@contextlib.contextmanager
def running(workdir: Path, document: dict[str, Any], timeout: float = 60) -> Iterator[Prometheus]:
    """Prometheus on a free loopback port for the block, stopped by process group afterwards."""
    process, url = start(workdir, document)
    try:
        daemon.wait_ready(url, process, workdir / "prometheus.log", timeout)
        yield Prometheus(url, process, workdir / "prometheus.log")
    finally:
        daemon.stop(process)
