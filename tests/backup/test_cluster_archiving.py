"""How the local cluster archives (no cluster started): every node pushes WAL with its own queue and lock,
every pgbackrest command of Patroni's reads the secrets, a node that is down does not stop the tooling, and the
Kubernetes ObjectStore encrypts both streams."""

from __future__ import annotations

import shlex
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from pcbackup.config import INCLUDE_DIR, SECRETS_FILE, Node
from pcbackup.sources import Source
from punchclock_tools.cluster.layout import Layout, new_layout
from punchclock_tools.cluster.render import render_all
from punchclock_tools.paths import REPO
from punchclock_tools.ports import free_port
from punchclock_tools.postgres import run_as_postgres

OBJECTSTORE = REPO / "deploy" / "kubernetes" / "overlays" / "prod" / "backup" / "objectstore.yaml"


@pytest.fixture
def layout(scratch: Path) -> Layout:
    rendered = new_layout(scratch / "state", apps=1)
    render_all(rendered)
    return rendered


def patroni_yaml(layout: Layout, index: int) -> dict[str, Any]:
    return dict(yaml.safe_load(Path(layout.nodes[index].patroni_config).read_text()))


def current(argv: list[str], command: str, option: str) -> str:
    """The value pgBackRest itself resolves for ``option`` of ``command`` from ``argv``'s options and files."""
    result = run_as_postgres([*argv, "help", command, option])
    (line,) = [line for line in result.stdout.splitlines() if line.strip().startswith("current:")]
    return line.split("current:", 1)[1].strip()


def test_standbys_archive_too(layout: Layout) -> None:
    """archive_mode is "always", so a segment the leader never pushed is archived by the standbys that got it."""
    dcs = patroni_yaml(layout, 0)["bootstrap"]["dcs"]
    assert dcs["postgresql"]["parameters"]["archive_mode"] == "always"


@pytest.mark.skipif(shutil.which("pgbackrest") is None, reason="pgbackrest is installed by make test")
def test_each_node_archives_with_its_own_spool_and_lock(layout: Layout) -> None:
    """pgBackRest reads a distinct spool and lock directory, owned by postgres, from each node's
    archive_command, and the shared repository, log and stanza from the one pgbackrest.conf."""
    seen = []
    for index, node in enumerate(layout.nodes):
        argv = shlex.split(patroni_yaml(layout, index)["postgresql"]["parameters"]["archive_command"])
        assert argv[-2:] == ["archive-push", "%p"]
        options = argv[:-2]
        spool, lock = current(options, "archive-push", "spool-path"), current(options, "archive-push", "lock-path")
        assert Path(spool).parent.parent == Path(lock).parent.parent == Path(node.data_dir).parent
        assert {Path(spool).owner(), Path(lock).owner()} == {"postgres"}
        seen.append((spool, lock, current(options, "archive-push", "repo-path")))
    assert len({spool for spool, _, _ in seen}) == len({lock for _, lock, _ in seen}) == len(layout.nodes)
    assert {repo for _, _, repo in seen} == {layout.pgbackrest_repo}


def test_archive_and_restore_commands_read_the_secrets(layout: Layout) -> None:
    """Both commands name conf.d, where repo2's cipher pass sits in a 0600 file of postgres's, never in the
    configuration they name beside it."""
    include = Path(layout.pgbackrest_config).parent / INCLUDE_DIR
    config = patroni_yaml(layout, 1)["postgresql"]
    commands = [config["parameters"]["archive_command"], config["recovery_conf"]["restore_command"]]
    assert [f"--config-include-path={include}" in shlex.split(command) for command in commands] == [True, True]
    secrets = include / SECRETS_FILE
    assert (secrets.stat().st_mode & 0o777, secrets.owner()) == (0o600, "postgres")
    assert secrets.read_text().startswith("[global]\nrepo2-cipher-pass=")
    conf = Path(layout.pgbackrest_config).read_text()
    assert ("repo2-cipher-type=aes-256-cbc" in conf.splitlines(), "cipher-pass=" in conf) == (True, False)


def test_objectstore_encrypts_wal_and_base_backups() -> None:
    """The Barman Cloud ObjectStore asks the bucket for server-side encryption of both WAL and base backups."""
    spec = yaml.safe_load(OBJECTSTORE.read_text())["spec"]["configuration"]
    assert (spec["wal"].get("encryption"), spec["data"].get("encryption")) == ("AES256", "AES256")


def test_a_stopped_node_is_skipped_when_finding_the_primary(backed_up: Source, scratch: Path) -> None:
    """Given a node that is down (a crashed old leader) listed first, then the primary is still found."""
    down = Node(scratch / "data", free_port(), scratch)
    source = replace(backed_up, nodes=(down, *backed_up.nodes))
    assert source.primary().port == backed_up.nodes[0].port
