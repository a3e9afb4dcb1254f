"""The cluster's layout: names, free loopback ports and paths, kept in ``<state>/cluster.json``.

The layout is chosen once, on the first ``up``, and reused afterwards so data directories and ports stay
stable. Backup tooling reads the same file to find the nodes.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from punchclock_tools.cluster import cgroup
from punchclock_tools.paths import STATE
from punchclock_tools.ports import stable_ports

DEFAULT_STATE = STATE / "cluster"
SCOPE = "punchclock"
STANZA = "punchclock"
FIRST_NODE_GID = 61001  # one numeric group per node, so a partition can be drawn with nftables' skgid


@dataclass
class Etcd:
    name: str
    client_port: int
    peer_port: int
    data_dir: str


@dataclass
class Node:
    name: str
    pg_port: int
    rest_port: int
    gid: int
    data_dir: str
    socket_dir: str
    patroni_config: str
    log: str


@dataclass
class App:
    name: str
    port: int
    cgroup: str = ""  # its own cpu cgroup (cgroup.py) when the layout sets a CPU quota, else empty


@dataclass
class Layout:
    state_dir: str
    etcd: list[Etcd]
    nodes: list[Node]
    apps: list[App]
    haproxy: dict[str, Any]
    database: dict[str, str]
    supervisor: dict[str, str]
    pgbackrest_config: str
    pgbackrest_repo: str
    app_url: str
    scope: str = SCOPE
    stanza: str = STANZA
    extra: dict[str, Any] = field(default_factory=dict)
    app_cpu_quota: float | None = None  # cores each instance may use (cgroup.py); None: no quota

    def app(self, name: str) -> App:
        return next(app for app in self.apps if app.name == name)

    def new_app(self, name: str, port: int) -> App:
        """An instance of this cluster, with its own cgroup's path when the cluster sets a CPU quota."""
        return App(name, port, str(cgroup.path_for(self.state_dir, name)) if self.app_cpu_quota else "")

    @property
    def root(self) -> Path:
        return Path(self.state_dir)

    @property
    def file(self) -> Path:
        return self.root / "cluster.json"

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps(asdict(self), indent=2) + "\n")
        self.file.chmod(0o600)

    @classmethod
    def load(cls, state_dir: Path) -> Layout:
        raw = json.loads((state_dir / "cluster.json").read_text())
        raw.pop("version", None)  # written by earlier releases, never read
        return cls(
            **{
                **raw,
                "etcd": [Etcd(**item) for item in raw["etcd"]],
                "nodes": [Node(**item) for item in raw["nodes"]],
                "apps": [App(**item) for item in raw["apps"]],
            }
        )


def node_gids(count: int) -> list[int]:
    """Numeric group ids unused by the system, one per database node."""
    gids: list[int] = []
    gid = FIRST_NODE_GID
    while len(gids) < count:
        with contextlib.suppress(KeyError):
            grp.getgrgid(gid)
            gid += 1
            continue
        gids.append(gid)
        gid += 1
    return gids


def new_layout(state_dir: Path, apps: int = 2, http_port: int | None = None, cpu_quota: float | None = None) -> Layout:
    """Pick ports and paths for a fresh cluster of 3 etcd members, 3 PostgreSQL nodes and ``apps`` instances,
    each under ``cpu_quota`` cores (its own cgroup) when one is given."""
    root = state_dir.resolve()
    ports = iter(stable_ports(6 + 6 + 4 + apps))
    etcd = [Etcd(f"etcd{i}", next(ports), next(ports), str(root / "etcd" / f"etcd{i}")) for i in (1, 2, 3)]
    nodes = [
        Node(
            name=f"pg{i}",
            pg_port=next(ports),
            rest_port=next(ports),
            gid=gid,
            data_dir=str(root / f"pg{i}" / "data"),
            socket_dir=str(root / f"pg{i}" / "run"),
            patroni_config=str(root / f"pg{i}" / "patroni.yml"),
            log=str(root / "log" / f"pg{i}.log"),
        )
        for i, gid in zip((1, 2, 3), node_gids(3), strict=True)
    ]
    haproxy = {
        "write_port": next(ports),
        "read_port": next(ports),
        "stats_port": next(ports),
        "http_port": http_port or next(ports),
        "config": str(root / "haproxy.cfg"),
    }
    password = secrets.token_hex(12)
    database = {
        "name": "punchclock",
        "user": "punchclock",
        "password": password,
        "dsn": f"postgresql://punchclock:{password}@127.0.0.1:{haproxy['write_port']}/punchclock",
        "superuser": "postgres",
        "superuser_password": secrets.token_hex(12),
        "replication_user": "replicator",
        "replication_password": secrets.token_hex(12),
    }
    supervisor = {
        "config": str(root / "supervisord.conf"),
        "socket": str(root / "supervisor.sock"),
        "pidfile": str(root / "supervisord.pid"),
        "log": str(root / "log" / "supervisord.log"),
    }
    layout = Layout(
        state_dir=str(root),
        etcd=etcd,
        nodes=nodes,
        apps=[],
        haproxy=haproxy,
        database=database,
        supervisor=supervisor,
        pgbackrest_config=str(root / "pgbackrest" / "pgbackrest.conf"),
        pgbackrest_repo=str(root / "pgbackrest" / "repo"),
        app_url=f"http://127.0.0.1:{haproxy['http_port']}",
        app_cpu_quota=cpu_quota,
    )
    layout.apps = [layout.new_app(f"app{i + 1}", next(ports)) for i in range(apps)]
    return layout


def state_dir_from_env() -> Path:
    return Path(os.environ.get("PUNCHCLOCK_CLUSTER_STATE", str(DEFAULT_STATE)))
