"""The quick form of the provisioning test (make test): two bare Debian 12 hosts taken to a serving cluster by
site.yml, a second run that changes nothing, and a stamp over HTTPS verified against the deployment's CA.

node1: etcd, Patroni/PostgreSQL. node2: Patroni/PostgreSQL (the synchronous standby strict mode needs),
HAProxy (database routing and the public endpoint) and punchclock.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from punchclock_tools import hosts
from tests.provision.conftest import head_commit, playbook, require_podman_hosts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

GROUPS = {
    "etcd_cluster": ["node1"],
    "postgres_cluster": ["node1", "node2"],
    "web": ["node2"],
    "balancers": ["node2"],
}


def test_site_provisions_two_hosts_idempotently_and_serves_https(tmp_path: Path) -> None:
    """Given two bare hosts, site.yml serves POST /app over verified TLS, and a second run changes nothing."""
    require_podman_hosts()
    deploy_dir = tmp_path / "deploy"
    deploy_dir.mkdir()
    source = f"punchclock_source={head_commit()}"
    with hosts.running(["node1", "node2"], workdir=tmp_path / "hosts") as bed:
        inventory = bed.write_inventory(GROUPS)

        first = playbook(inventory, deploy_dir, "-e", source)
        second = playbook(inventory, deploy_dir, "-e", source)
        print(f"\nprovision: first run {first.seconds:.0f} s, second run {second.seconds:.0f} s")

        assert second.changed == {"node1": 0, "node2": 0}, second.output[-4000:]
        public = bed.hosts["node2"].address
        curl = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "--max-time", "30", "--cacert", str(deploy_dir / "pki" / "ca.crt"),
             "--resolve", f"punchclock.example.internal:443:{public}",
             "-X", "POST", "https://punchclock.example.internal/app",
             "-o", "-", "-w", "\n%{http_code}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        body, _, status = curl.stdout.rpartition("\n")
        assert (status, curl.returncode) == ("201", 0), curl.stderr
        assert set(json.loads(body)) == {"id", "recorded_at"}
