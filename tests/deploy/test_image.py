"""The container image, built with podman and run for real: it serves stamps as a non-root user on a
read-only root filesystem, keeps them on its /data volume, and exits cleanly on SIGTERM."""

from __future__ import annotations

import json
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from punchclock_tools.http import stamp_round_trip, wait_until_ready
from punchclock_tools.paths import REPO
from punchclock_tools.podman import Podman
from punchclock_tools.ports import free_port

pytestmark = pytest.mark.slow

PYPROJECT = REPO / "pyproject.toml"
HARDENED = ["--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"]


@contextmanager
def container(podman: Podman, image: str, *args: str) -> Iterator[tuple[str, str]]:
    """Run ``image`` detached with its port 8000 published on a free loopback port: (name, base URL)."""
    name = f"punchclock-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    podman.run("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8000", *args, image)
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        podman.run("rm", "--force", "--time", "0", name, check=False)


def stop_with_sigterm(podman: Podman, name: str) -> int:
    """Send SIGTERM to the container's main process and return its exit code."""
    podman.run("kill", "--signal", "TERM", name)
    return int(podman.run("wait", name, timeout=60).stdout.strip())


def test_image_metadata_declares_a_non_root_server(podman: Podman, app_image: str) -> None:
    """The image runs `punchclock serve` in exec form as user 10001, exposes 8000, has OCI labels, no HEALTHCHECK."""
    (info,) = json.loads(podman.run("image", "inspect", app_image).stdout)
    config = info["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["punchclock"]
    assert config["Cmd"] == ["serve"]
    assert "8000/tcp" in config["ExposedPorts"]
    assert "/data" in config["Volumes"]
    assert "Healthcheck" not in config
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "punchclock"
    assert labels["org.opencontainers.image.version"] == tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert labels["org.opencontainers.image.revision"] != "unknown"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PUNCHCLOCK_HOST"] == "0.0.0.0"  # noqa: S104 - all interfaces of the container's own netns
    assert "DATABASE_URL" not in env


def test_container_records_a_stamp_and_exits_cleanly_on_sigterm(podman: Podman, app_image: str) -> None:
    """Given a hardened container, when a stamp is POSTed and read back and SIGTERM is sent, it exits 0."""
    with container(podman, app_image, *HARDENED) as (name, url):
        wait_until_ready(url)
        receipt, stamp = stamp_round_trip(url)
        assert stamp == receipt
        assert stop_with_sigterm(podman, name) == 0
        logs = podman.run("logs", name).stdout + podman.run("logs", name).stderr
    assert "Finished server process" in logs


def test_stamps_survive_replacing_the_container(podman: Podman, app_image: str) -> None:
    """Given a stamp written to a named /data volume, a new container on that volume reads it back."""
    volume = f"punchclock-test-{uuid.uuid4().hex[:8]}"
    podman.run("volume", "create", volume)
    try:
        with container(podman, app_image, *HARDENED, "--volume", f"{volume}:/data") as (name, url):
            wait_until_ready(url)
            receipt, _ = stamp_round_trip(url)
            assert stop_with_sigterm(podman, name) == 0
        with container(podman, app_image, *HARDENED, "--volume", f"{volume}:/data") as (_, url):
            wait_until_ready(url)
            assert httpx.get(f"{url}/app/{receipt['id']}", timeout=10).json() == receipt
    finally:
        podman.run("volume", "rm", "--force", volume, check=False)


def test_sigterm_reaches_the_server_which_drains_before_exiting(podman: Podman, app_image: str) -> None:
    """SIGTERM reaches the server itself: /readyz turns 503, stamps still record, then it exits 0."""
    drain = ["--env", "PUNCHCLOCK_DRAIN_DELAY_SECONDS=3"]
    with container(podman, app_image, *HARDENED, *drain) as (name, url):
        wait_until_ready(url)
        podman.run("kill", "--signal", "TERM", name)
        assert _eventually_status(f"{url}/readyz", 503)
        assert httpx.post(f"{url}/app", timeout=10).status_code == 201
        assert int(podman.run("wait", name, timeout=60).stdout.strip()) == 0


def _eventually_status(url: str, status: int, attempts: int = 20) -> bool:
    for _ in range(attempts):
        if httpx.get(url, timeout=2).status_code == status:
            return True
        time.sleep(0.05)
    return False
