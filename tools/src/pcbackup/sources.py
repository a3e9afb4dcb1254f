"""Where the drill's database comes from: the local HA cluster (cluster.json) or a private throwaway server."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcbackup.config import INCLUDE_DIR, Node, write_config
from pcbackup.errors import BackupError
from pcbackup.pgbackrest import PgBackRest
from punchclock_tools import postgres
from punchclock_tools.postgres import CommandFailed, Database


@dataclass(frozen=True)
class Source:
    br: PgBackRest
    nodes: tuple[Node, ...]
    database_url: str
    app_url: str | None = None  # a punchclock service already fronting the database
    database: str = "punchclock"

    def primary(self) -> Database:
        """The node that is not in recovery right now; a node that is down is skipped."""
        for node in self.nodes:
            db = Database(node.socket_dir, node.port, self.database)
            with contextlib.suppress(CommandFailed):  # psql's failure to reach a stopped node included
                if not db.in_recovery():
                    return db
        raise BackupError("no PostgreSQL node answers as primary")

    def checkpoint(self) -> None:
        """CHECKPOINT on the primary. Right after a promotion pg_control still names the old timeline until
        the next checkpoint, and pgBackRest refuses to back up ("WAL timeline 2 does not match pg_control
        timeline 1"); one checkpoint first settles it."""
        self.primary().query("CHECKPOINT")

    def seal(self) -> None:
        """Commit a transaction and archive the WAL holding it, so every moment up to now is restorable.

        Recovery to a time stops at the first commit after it; without one in the archive, PostgreSQL ends
        recovery short of the target and refuses to start.
        """
        self.primary().query("SELECT txid_current()")
        self.br.check()


def load_cluster(state_dir: Path) -> Source:
    """The cluster described by ``<state_dir>/cluster.json`` (written by ``make cluster-up``)."""
    path = state_dir / "cluster.json"
    if not path.exists():
        raise BackupError(f"{path} does not exist: start the cluster first (make cluster-up)")
    spec: dict[str, Any] = json.loads(path.read_text())
    nodes = tuple(Node(Path(n["data_dir"]), int(n["pg_port"]), Path(n["socket_dir"])) for n in spec["nodes"])
    database = spec.get("database", {})
    return Source(
        br=PgBackRest(Path(spec["pgbackrest_config"]), spec.get("stanza", "punchclock")),
        nodes=nodes,
        database_url=database.get("dsn", ""),
        app_url=spec.get("app_url"),
        database=database.get("name", "punchclock"),
    )


def nodes_from_config(config: Path) -> tuple[Node, ...]:
    """The ``pgN-path/-port/-socket-path`` entries of a pgbackrest.conf, in N order."""
    values: dict[int, dict[str, str]] = {}
    for match in re.finditer(r"^\s*pg(\d+)-(path|port|socket-path)\s*=\s*(.+?)\s*$", config.read_text(), re.M):
        values.setdefault(int(match[1]), {})[match[2]] = match[3]
    return tuple(
        Node(Path(v["path"]), int(v.get("port", "5432")), Path(v.get("socket-path", "/var/run/postgresql")))
        for _, v in sorted(values.items())
    )


def load_config(config: Path, app_url: str | None = None, database: str = "punchclock") -> Source:
    """A host configured by pgbackrest.conf alone (a VM install): nodes from its pgN entries."""
    if not config.exists():
        raise BackupError(
            f"{config} does not exist: start the local cluster with `make cluster-up`, name a host's configuration "
            "with --config, or drill on a private server with `make restore-drill DRILL=standalone`"
        )
    return Source(
        br=PgBackRest(config), nodes=nodes_from_config(config), database_url="", app_url=app_url, database=database
    )


@contextlib.contextmanager
def standalone(work_dir: Path) -> Iterator[Source]:
    """A private PostgreSQL 15 server archiving into its own repository under ``work_dir``."""
    config = work_dir / "pgbackrest" / "pgbackrest.conf"
    # The include path carries repo2's cipher pass (conf.d/secrets.conf): archive_command must name it, since
    # pgBackRest reads an include path given beside --config only when it is named.
    archive_command = (
        f"'pgbackrest --config={config} --config-include-path={config.parent / INCLUDE_DIR} --stanza=punchclock "
        'archive-push "%p"\''
    )
    settings = {
        "archive_mode": "on",
        "archive_command": archive_command,
        "wal_level": "replica",
        "archive_timeout": "60",
    }
    with postgres.throwaway(settings=settings, parent=work_dir) as server:
        node = Node(server.data_dir, server.port, server.base_dir)
        write_config(config.parent, [node])
        yield Source(br=PgBackRest(config), nodes=(node,), database_url=server.dsn())
