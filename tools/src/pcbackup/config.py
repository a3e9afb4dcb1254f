"""Render pgbackrest.conf from deploy/backup/pgbackrest.conf.tmpl for a set of PostgreSQL nodes."""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from punchclock_tools.paths import REPO
from punchclock_tools.postgres import chown_postgres, make_postgres_dir

TEMPLATE = REPO / "deploy" / "backup" / "pgbackrest.conf.tmpl"
STANZA = "punchclock"


@dataclass(frozen=True)
class Node:
    """One PostgreSQL server pgBackRest may back up: its data directory, port and Unix socket directory."""

    data_dir: Path
    port: int
    socket_dir: Path


def node_lines(nodes: Sequence[Node]) -> str:
    """The ``pgN-*`` block of the stanza: every node, so pgBackRest finds the current primary itself."""
    lines = []
    for index, node in enumerate(nodes, start=1):
        lines += [
            f"pg{index}-path={node.data_dir}",
            f"pg{index}-port={node.port}",
            f"pg{index}-socket-path={node.socket_dir}",
        ]
    return "\n".join(lines)


def render(
    repo_path: Path, log_path: Path, lock_path: Path, spool_path: Path, nodes: Sequence[Node], template: Path = TEMPLATE
) -> str:
    return string.Template(template.read_text()).substitute(
        repo_path=repo_path, log_path=log_path, lock_path=lock_path, spool_path=spool_path, pg_nodes=node_lines(nodes)
    )


def write_config(state_dir: Path, nodes: Sequence[Node]) -> Path:
    """Lay out ``state_dir`` (repo/, log/, lock/, spool/ owned by postgres) and write its pgbackrest.conf."""
    make_postgres_dir(state_dir, 0o750)
    dirs = {name: make_postgres_dir(state_dir / name, 0o750) for name in ("repo", "log", "lock", "spool")}
    conf = state_dir / "pgbackrest.conf"
    conf.write_text(render(dirs["repo"], dirs["log"], dirs["lock"], dirs["spool"], nodes))
    conf.chmod(0o640)
    chown_postgres(conf)
    return conf
