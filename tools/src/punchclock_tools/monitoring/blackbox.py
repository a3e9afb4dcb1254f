"""Debian's blackbox exporter as a process of its own, and the Prometheus scrape job that probes through it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from punchclock_tools.monitoring import daemon
from punchclock_tools.ports import free_port

BINARY = "prometheus-blackbox-exporter"  # Debian package prometheus-blackbox-exporter


def check_config(config_file: Path) -> subprocess.CompletedProcess[str]:
    """``--config.check``: the modules parse (exit 0) or the output says why not."""
    argv = [BINARY, f"--config.file={config_file}", "--config.check"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def scrape_job(exporter: str, targets: list[str], module: str, job: str = "blackbox") -> dict[str, Any]:
    """The scrape job that asks the exporter at ``exporter`` (host:port) to probe each of ``targets`` with
    ``module``: the target becomes the ``instance`` label, the exporter the address scraped."""
    return {
        "job_name": job,
        "metrics_path": "/probe",
        "params": {"module": [module]},
        "static_configs": [{"targets": targets}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": exporter},
        ],
    }


@contextlib.contextmanager
def running(workdir: Path, config_file: Path, timeout: float = 30) -> Iterator[str]:
    """The exporter on a free loopback port for the block (yields its host:port), stopped by process group."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise FileNotFoundError("prometheus-blackbox-exporter is not installed (Debian package of that name)")
    address = f"127.0.0.1:{free_port()}"
    argv = [binary, f"--config.file={config_file}", f"--web.listen-address={address}", "--log.level=warn"]
    log = workdir / "blackbox.log"
    process = daemon.spawn(argv, log)
    try:
        daemon.wait_ready(f"http://{address}", process, log, timeout)
        yield address
    finally:
        daemon.stop(process)
