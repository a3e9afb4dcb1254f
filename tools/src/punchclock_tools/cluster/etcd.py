"""etcd membership: whether the cluster has bootstrapped, and a member rejoining after losing its data.

``--initial-cluster-state`` matters only to a member with an empty data directory. ``new`` is right for the
first start of all three together; once they have formed a cluster, a member that comes back without its data
must join the cluster that exists (``existing``), after its old identity was removed and a new one added, or
it would try to bootstrap a second cluster of its own and be refused by its peers (``cluster ID mismatch``).
A member that kept its data ignores the flag (etcd reads its membership from its write-ahead log).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from punchclock_tools.cluster import patroni, supervisor
from punchclock_tools.cluster.layout import Layout

BOOTSTRAPPED = "etcd_bootstrapped"  # key in layout.extra, set once the members first formed a cluster


def cluster_state(layout: Layout) -> str:
    """The ``--initial-cluster-state`` every member is rendered with: ``existing`` once they formed a cluster,
    unless every member lost its data (the whole cluster lost, docs/backup.md): then there is none to join, and
    the members form a new one."""
    survivors = [m for m in layout.etcd if (Path(m.data_dir) / "member").is_dir()]
    return "existing" if layout.extra.get(BOOTSTRAPPED) and survivors else "new"


def etcdctl(layout: Layout, *args: str, exclude: str | None = None, timeout: float = 20) -> str:
    endpoints = ",".join(f"http://127.0.0.1:{e.client_port}" for e in layout.etcd if e.name != exclude)
    result = subprocess.run(
        ["etcdctl", f"--endpoints={endpoints}", "--dial-timeout=2s", "--command-timeout=5s", *args],
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return result.stdout


def members(layout: Layout, exclude: str | None = None) -> dict[str, tuple[str, str]]:
    """``{name: (member id in hex, status)}`` as the cluster lists them; a member added but not started yet has
    no name, and is listed under its peer URL."""
    found = {}
    for line in etcdctl(layout, "member", "list", exclude=exclude).splitlines():
        fields = [part.strip() for part in line.split(",")]
        if len(fields) >= 4:
            found[fields[2] or fields[3]] = (fields[0], fields[1])
    return found


def healthy(layout: Layout) -> dict[str, bool]:
    health = {}
    for member in layout.etcd:
        try:
            subprocess.run(
                ["etcdctl", f"--endpoints=http://127.0.0.1:{member.client_port}", "endpoint", "health"],
                env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
                capture_output=True,
                timeout=10,
                check=True,
            )
            health[member.name] = True
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            health[member.name] = False
    return health


def mark_bootstrapped(layout: Layout) -> bool:
    """Remember that the members formed a cluster (once); True when this call recorded it."""
    if layout.extra.get(BOOTSTRAPPED):
        return False
    layout.extra[BOOTSTRAPPED] = True
    layout.save()
    return True


def rejoin(layout: Layout, name: str, timeout: float = 60) -> None:
    """Bring back member ``name`` whose data directory was lost: remove its old identity, add it anew, and start
    it with ``--initial-cluster-state existing`` (supervisord re-reads that one program's command first)."""
    from punchclock_tools.cluster.render import write_supervisord_config  # render imports this module

    member = next(e for e in layout.etcd if e.name == name)
    supervisor.ctl(layout, "stop", name, check=False)
    shutil.rmtree(member.data_dir, ignore_errors=True)
    Path(member.data_dir).parent.mkdir(parents=True, exist_ok=True)
    listed = members(layout, exclude=name)
    if name in listed:
        etcdctl(layout, "member", "remove", listed[name][0], exclude=name)
    etcdctl(layout, "member", "add", name, f"--peer-urls=http://127.0.0.1:{member.peer_port}", exclude=name)
    mark_bootstrapped(layout)
    write_supervisord_config(layout)
    supervisor.ctl(layout, "reread")
    supervisor.ctl(layout, "update", name)  # the changed program is replaced, and started (autostart)
    supervisor.ctl(layout, "start", name, check=False)
    patroni.wait(lambda: healthy(layout).get(name), timeout, f"{name} to rejoin etcd")
