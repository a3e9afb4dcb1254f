"""Render pgbackrest.conf from deploy/backup/pgbackrest.conf.tmpl for a set of PostgreSQL nodes.

Secrets never go into pgbackrest.conf: they are written to ``conf.d/secrets.conf`` beside it (mode 0600, owner
postgres), which every pgbackrest command reads through ``--config-include-path`` (``PgBackRest`` adds it).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from punchclock_tools.paths import REPO
from punchclock_tools.postgres import chown_postgres, make_postgres_dir

TEMPLATE = REPO / "deploy" / "backup" / "pgbackrest.conf.tmpl"
STANZA = "punchclock"
INCLUDE_DIR = "conf.d"
SECRETS_FILE = "secrets.conf"
CIPHER = "aes-256-cbc"


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


def cipher_lines(encrypted: bool) -> str:
    if encrypted:
        return (
            f"# Encrypted client-side; repo2-cipher-pass is in {INCLUDE_DIR}/{SECRETS_FILE} (0600), never here.\n"
            f"repo2-cipher-type={CIPHER}"
        )
    return "# Not encrypted: this rendering has no conf.d with a cipher pass.\nrepo2-cipher-type=none"


def render(
    repo_path: Path,
    log_path: Path,
    lock_path: Path,
    spool_path: Path,
    nodes: Sequence[Node],
    template: Path = TEMPLATE,
    *,
    repo2_path: Path | None = None,
    repo2_encrypted: bool = False,
) -> str:
    """The configuration text; repo2 defaults to ``repo2`` beside repo1 (the directory pgBackRest creates)."""
    return string.Template(template.read_text()).substitute(
        repo_path=repo_path,
        repo2_path=repo2_path or repo_path.parent / "repo2",
        repo2_cipher=cipher_lines(repo2_encrypted),
        log_path=log_path,
        lock_path=lock_path,
        spool_path=spool_path,
        pg_nodes=node_lines(nodes),
    )


def write_secrets(config_dir: Path, cipher_pass: str | None = None) -> Path:
    """``conf.d/secrets.conf`` with repo2's cipher pass, readable by postgres alone; kept if it exists."""
    include = make_postgres_dir(config_dir / INCLUDE_DIR, 0o700)
    path = include / SECRETS_FILE
    if not path.exists():
        path.touch(0o600)
        path.chmod(0o600)
        path.write_text(f"[global]\nrepo2-cipher-pass={cipher_pass or secrets.token_urlsafe(32)}\n")
        chown_postgres(path)
    return path


def write_config(state_dir: Path, nodes: Sequence[Node], *, repo2_encrypted: bool = True) -> Path:
    """Lay out ``state_dir`` (repo/, repo2/, log/, lock/, spool/ owned by postgres, conf.d/ with the secrets)
    and write its pgbackrest.conf."""
    make_postgres_dir(state_dir, 0o750)
    dirs = {name: make_postgres_dir(state_dir / name, 0o750) for name in ("repo", "repo2", "log", "lock", "spool")}
    if repo2_encrypted:
        write_secrets(state_dir)
    conf = state_dir / "pgbackrest.conf"
    conf.write_text(
        render(
            dirs["repo"],
            dirs["log"],
            dirs["lock"],
            dirs["spool"],
            nodes,
            repo2_path=dirs["repo2"],
            repo2_encrypted=repo2_encrypted,
        )
    )
    conf.chmod(0o640)
    chown_postgres(conf)
    return conf
