"""Debian's Alertmanager as a process of its own (a loopback port, private storage, no cluster peering), and the
bits of its v2 API the tests and ``make monitoring-up`` use."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from punchclock_tools.monitoring import daemon
from punchclock_tools.ports import free_port

BINARY = "prometheus-alertmanager"  # Debian package prometheus-alertmanager
AMTOOL = "amtool"


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]

    def post(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus does (labels, annotations); they start now and stay active for a while."""
        httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert it holds, with ``status.state`` (active, suppressed) and ``status.inhibitedBy``."""
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=10)
        response.raise_for_status()
        return list(response.json())


def start(workdir: Path, config_file: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which(BINARY)
    if binary is None:
        raise FileNotFoundError("prometheus-alertmanager is not installed (Debian package prometheus-alertmanager)")
    address = f"127.0.0.1:{port or free_port()}"
    argv = [
        binary,
        f"--config.file={config_file}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",  # no gossip port: a single Alertmanager
        "--log.level=warn",
    ]
    return daemon.spawn(argv, workdir / "alertmanager.log"), f"http://{address}"


@contextlib.contextmanager
def running(workdir: Path, config_file: Path, timeout: float = 30) -> Iterator[Alertmanager]:
    """Alertmanager on a free loopback port for the block, stopped by process group afterwards."""
    process, url = start(workdir, config_file)
    try:
        daemon.wait_ready(url, process, workdir / "alertmanager.log", timeout)
        yield Alertmanager(url, process)
    finally:
        daemon.stop(process)


def route_receivers(config_file: Path, labels: dict[str, str]) -> list[str]:
    """The receivers ``amtool config routes test`` picks for an alert with ``labels``."""
    argv = [AMTOOL, "config", "routes", "test", f"--config.file={config_file}"]
    argv += [f"{name}={value}" for name, value in labels.items()]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip().split(",")
