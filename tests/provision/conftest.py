"""Fixtures for the provisioning tests: podman hosts booting systemd, and ansible-playbook run against them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from punchclock_tools.paths import REPO
from tests.ha.conftest import report  # noqa: F401 - the scenarios' report fixture, as tests/ha records it

CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Note on the test item whether its body failed, for fixtures that keep evidence from failed tests."""
    made = yield
    if call.when == "call":
        item.stash[CALL_FAILED] = call.excinfo is not None
    return made


ANSIBLE_DIR = REPO / "deploy" / "ansible"
PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    seconds: float
    changed: dict[str, int]
    output: str


def require_podman_hosts() -> None:
    """Skip, saying why, where rootful podman, ssh or Ansible are missing (make test installs them)."""
    if os.geteuid() != 0:
        pytest.skip("the provisioning tests run rootful podman: run them as root")
    for program in ("podman", "runc", "debootstrap", "ssh", "ssh-keygen", "openssl"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (make test installs it)")
    if not PLAYBOOK.exists():
        pytest.skip(f"{PLAYBOOK} is missing: run `make dev`")


def head_commit() -> str:
    """The commit to deploy, fixed for the whole test: other commits landing meanwhile must not make a release."""
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def playbook(inventory: Path, deploy_dir: Path, *args: str, name: str = "site.yml", timeout: float = 900) -> Run:
    """Run a playbook of deploy/ansible against the inventory; fail with its output's tail if it fails."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "PUNCHCLOCK_DEPLOY_DIR": str(deploy_dir),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{PLAYBOOK.parent}:{os.environ['PATH']}",
    }
    start = time.monotonic()
    proc = subprocess.run(
        [str(PLAYBOOK), "-i", str(inventory), name, *args],
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - start
    (deploy_dir / f"{name}-{int(start)}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        pytest.fail(f"ansible-playbook {name} exited {proc.returncode}:\n{proc.stdout[-6000:]}{proc.stderr[-2000:]}")
    changed = {host: int(changes) for host, _ok, changes, _unreachable, _failed in RECAP.findall(proc.stdout)}
    return Run(seconds, changed, proc.stdout)
