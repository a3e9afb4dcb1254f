"""The cluster's rendered configuration: valid for the real tools, and carrying the HA settings it promises."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from punchclock_tools.cluster.layout import Layout, new_layout
from punchclock_tools.cluster.render import render_all


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    rendered = new_layout(tmp_path / "state", apps=3)
    render_all(rendered)
    return rendered


def test_layout_round_trips_through_cluster_json(layout: Layout) -> None:
    """cluster.json holds the whole layout, so a later command (or the backup tooling) sees the same cluster."""
    assert Layout.load(layout.root) == layout


def test_every_port_is_distinct(layout: Layout) -> None:
    """No two listeners of the cluster share a port."""
    ports = [p for e in layout.etcd for p in (e.client_port, e.peer_port)]
    ports += [p for n in layout.nodes for p in (n.pg_port, n.rest_port)]
    ports += [a.port for a in layout.apps]
    ports += [layout.haproxy[k] for k in ("write_port", "read_port", "stats_port", "http_port")]
    assert len(ports) == len(set(ports))


def test_patroni_config_keeps_acknowledged_commits_safe(layout: Layout) -> None:
    """Patroni runs synchronous, failsafe, with pg_rewind and ttl 10, archiving through pgBackRest."""
    config = yaml.safe_load(Path(layout.nodes[1].patroni_config).read_text())
    dcs = config["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["synchronous_mode"], dcs["failsafe_mode"]) == (10, True, True)
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["archive_mode"] == "on"
    command = config["postgresql"]["parameters"]["archive_command"]
    assert f"--pg1-path={shlex.quote(layout.nodes[1].data_dir)}" in command
    assert command.endswith('archive-push "%p"')


def test_pgbackrest_config_lists_every_node(layout: Layout) -> None:
    """The rendered pgBackRest configuration names each node's data directory, port and socket."""
    text = Path(layout.pgbackrest_config).read_text()
    for i, node in enumerate(layout.nodes, start=1):
        assert f"pg{i}-path={node.data_dir}" in text
        assert f"pg{i}-port={node.pg_port}" in text
        assert f"pg{i}-socket-path={node.socket_dir}" in text
    assert f"repo1-path={layout.pgbackrest_repo}" in text


@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy is not installed")
def test_haproxy_accepts_its_config(layout: Layout) -> None:
    """HAProxy itself validates the rendered configuration, shutdown-sessions and all."""
    result = subprocess.run(
        ["haproxy", "-c", "-f", layout.haproxy["config"]], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert Path(layout.haproxy["config"]).read_text().count("on-marked-down shutdown-sessions") == 2
