"""Install the pinned Patroni, and ask its REST API who leads, who replicates, and whether a node is healthy."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from punchclock_tools.cluster.layout import Layout
from punchclock_tools.paths import REPO

# Patroni from PyPI, not Debian's 3.0.2: 3.0.2's etcd3 `_update_leader` puts the leader key unconditionally, so
# a leader frozen past the ttl takes the key back from the node promoted meanwhile (acknowledged stamps lost,
# issue 10). 4.x updates it in a transaction that succeeds only while the key holds its own name or is absent.
VERSION = "4.1.5"
REQUIREMENTS = REPO / "deploy" / "cluster" / "requirements-patroni.txt"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, readable by postgres; not whichever python3 is first on PATH
# Another Patroni's bin directory, e.g. /usr/bin for Debian's 3.0.2 when showing the frozen-leader loss.
BIN_OVERRIDE = "PUNCHCLOCK_PATRONI_BIN_DIR"


def venv_dir() -> Path:
    """Where the pinned Patroni lives: shared by every clone as root, inside the repository otherwise."""
    base = Path("/var/cache/punchclock") if os.geteuid() == 0 else REPO / ".tools"
    return base / f"patroni-{VERSION}"


def bin_dir() -> Path:
    return Path(os.environ.get(BIN_OVERRIDE) or venv_dir() / "bin")


def executable(name: str = "patroni") -> str:
    """``patroni`` or ``patronictl`` of the Patroni the cluster runs."""
    return str(bin_dir() / name)


def ensure_installed() -> Path:
    """Build the pinned Patroni's virtualenv unless it is there already (its stamp names the requirements' hash)."""
    target = venv_dir()
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = target / ".requirements.sha256"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two clusters starting at once build it once
        if stamp.exists() and stamp.read_text().strip() == digest:
            return target
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(target)], check=True, timeout=300)
        pip = [str(target / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-deps", "--require-hashes", "-r", str(REQUIREMENTS)], check=True, timeout=900)
        stamp.write_text(digest + "\n")
    with contextlib.suppress(OSError):
        target.chmod(0o755)
    return target


def get(port: int, path: str, timeout: float = 1.0) -> tuple[int, Any]:
    """GET a Patroni endpoint of the local cluster; (status, parsed body), or (0, None) when the node does not
    answer."""
    return get_url(f"http://127.0.0.1:{port}{path}", timeout)


def get_url(url: str, timeout: float = 1.0, context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    """``get`` on any Patroni REST URL (``context``: how an https:// one is verified)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310 - Patroni's REST URL
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body or b"null")
        except ValueError:
            return error.code, None
    except (OSError, ValueError):
        return 0, None


def members(layout: Layout) -> list[dict[str, Any]]:
    """The member list as the first answering node sees it (``GET /cluster``), or [] when none answers."""
    for node in layout.nodes:
        status, body = get(node.rest_port, "/cluster")
        if status == 200 and isinstance(body, dict):
            return list(body.get("members", []))
    return []


def leader(layout: Layout) -> str | None:
    """The node whose REST API answers 200 on /primary: the one HAProxy sends writes to."""
    for node in layout.nodes:
        if get(node.rest_port, "/primary")[0] == 200:
            return node.name
    return None


def healthy(layout: Layout) -> bool:
    """A running leader and every other node a streaming replica, one of them synchronous."""
    return members_healthy(members(layout), len(layout.nodes))


def members_healthy(found: list[dict[str, Any]], count: int) -> bool:
    """``healthy`` on a member list (``GET /cluster``) of a cluster of ``count`` nodes, wherever it runs."""
    if len(found) != count:
        return False
    roles = sorted(member.get("role", "") for member in found)
    running = all(member.get("state") in ("running", "streaming") for member in found)
    return running and roles.count("leader") == 1 and "sync_standby" in roles


def wait(condition: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``condition()`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def patch_config(layout: Layout, changes: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """PATCH the cluster-wide configuration in the DCS through the leader's REST API; return what is in force.

    Bootstrap settings reach the DCS only when a cluster is created; a cluster that already exists gets
    them here (as ``patronictl edit-config`` would), so every ``up`` leaves the same settings in force.
    """
    name = leader(layout)
    if name is None:
        raise RuntimeError("no leader to apply the configuration through")
    request = urllib.request.Request(
        f"http://127.0.0.1:{layout.node(name).rest_port}/config",
        data=json.dumps(changes).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http://127.0.0.1 built here
        return dict(json.loads(response.read()))
