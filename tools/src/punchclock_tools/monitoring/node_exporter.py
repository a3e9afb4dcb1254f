"""Debian's prometheus-node-exporter (1.5) for the host of the local cluster, with only the collector the rules and
the dashboard read: ``filesystem`` (free space under the data directories and pg_wal)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from punchclock_tools.monitoring import daemon
from punchclock_tools.ports import free_port

BINARY = "prometheus-node-exporter"  # Debian package prometheus-node-exporter
COLLECTORS = ("filesystem",)
# node_exporter's own default, plus the project's podman storage (tests/provision), whose bind mounts would
# report the root filesystem again under other names.
MOUNT_POINTS_EXCLUDE = (
    r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+|var/cache/punchclock/.+)($|/)"
)


def argv(binary: str, address: str) -> list[str]:
    return [
        binary,
        f"--web.listen-address={address}",
        "--collector.disable-defaults",
        *(f"--collector.{name}" for name in COLLECTORS),
        f"--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE}",
        "--log.level=warn",
    ]


def start(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The exporter on a free loopback port; returns the process and its ``host:port``."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise FileNotFoundError("prometheus-node-exporter is not installed (Debian package of that name)")
    address = f"127.0.0.1:{free_port()}"
    return daemon.spawn(argv(binary, address), log), address
