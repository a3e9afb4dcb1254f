"""The cluster's rendered configuration: valid for the real tools, and carrying the HA settings it promises."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from punchclock_tools.cluster import balancer, etcd, patroni
from punchclock_tools.cluster.layout import Layout, new_layout
from punchclock_tools.cluster.render import app_program, dynamic_config, render_all, write_supervisord_config


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
    """Patroni runs strictly synchronous, failsafe, pg_rewind, ttl 20 with slack, archiving through pgBackRest."""
    config = yaml.safe_load(Path(layout.nodes[1].patroni_config).read_text())
    dcs = config["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["synchronous_mode"], dcs["synchronous_mode_strict"], dcs["failsafe_mode"]) == (
        20,
        True,
        True,
        True,
    )
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"] - 2 * dcs["loop_wait"]
    assert (dcs["primary_start_timeout"], dcs["check_timeline"]) == (0, True)
    assert dcs["maximum_lag_on_failover"] > 1048576
    parameters = dcs["postgresql"]["parameters"]
    assert (parameters["wal_sender_timeout"], parameters["wal_receiver_status_interval"]) == ("5s", "1s")
    assert "trust" not in " ".join(config["postgresql"]["pg_hba"])
    assert "archive-get %f" in config["postgresql"]["recovery_conf"]["restore_command"]
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["archive_mode"] == "always"
    command = config["postgresql"]["parameters"]["archive_command"]
    assert f"--pg1-path={shlex.quote(layout.nodes[1].data_dir)}" in command
    assert command.endswith('archive-push "%p"')


def test_every_up_applies_the_dcs_settings(layout: Layout) -> None:
    """What `up` PATCHes into a running cluster's DCS is the rendered bootstrap section, strict mode included."""
    assert dynamic_config(layout)["synchronous_mode_strict"] is True
    rendered = yaml.safe_load(Path(layout.nodes[0].patroni_config).read_text())
    assert dynamic_config(layout) == rendered["bootstrap"]["dcs"]


def test_patroni_runs_from_the_pinned_virtualenv(layout: Layout) -> None:
    """supervisord starts the pinned PyPI Patroni, restarts it when it dies, and every pin carries a hash."""
    config = Path(layout.supervisor["config"]).read_text()
    assert f"{patroni.venv_dir()}/bin/patroni " in config or patroni.BIN_OVERRIDE in os.environ
    assert f"patroni-{patroni.VERSION}" in str(patroni.venv_dir())
    assert "/usr/bin/patroni " not in config
    section = config.split("[program:pg1]")[1].split("[program:")[0]
    assert "autorestart=true" in section
    pins = [line for line in patroni.REQUIREMENTS.read_text().splitlines() if "==" in line]
    assert f"patroni=={patroni.VERSION} \\" in pins
    assert all(line.endswith(" \\") for line in pins)
    assert patroni.REQUIREMENTS.read_text().count("--hash=sha256:") == len(pins)


def test_etcd_compacts_its_history(layout: Layout) -> None:
    """Every etcd member compacts old revisions, so its backend never reaches the space quota."""
    config = Path(layout.supervisor["config"]).read_text()
    assert config.count("--auto-compaction-mode periodic --auto-compaction-retention 1h") == 3


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


def test_etcd_joins_as_new_only_before_the_cluster_formed(layout: Layout) -> None:
    """Every member starts with --initial-cluster-state new until etcd first formed its cluster, and with
    existing after, so a member that lost its data joins that cluster instead of bootstrapping another; new
    again once every member lost its data, as there is no cluster left to join."""
    first = Path(layout.supervisor["config"]).read_text()
    assert first.count("--initial-cluster-state new") == len(layout.etcd)
    assert etcd.mark_bootstrapped(layout) is True
    assert etcd.mark_bootstrapped(layout) is False
    for member in layout.etcd:  # a formed cluster: its members hold their data
        (Path(member.data_dir) / "member").mkdir(parents=True)
    write_supervisord_config(layout)
    later = Path(layout.supervisor["config"]).read_text()
    assert later.count("--initial-cluster-state existing") == len(layout.etcd)
    assert Layout.load(layout.root).extra[etcd.BOOTSTRAPPED] is True
    for member in layout.etcd:  # every member lost its data (the whole cluster lost): nothing to join
        shutil.rmtree(member.data_dir)
    assert etcd.cluster_state(layout) == "new"


def test_instances_are_programs_of_their_own_behind_the_runtime_socket(layout: Layout) -> None:
    """Each instance is a supervisord program outside any group (scale adds and removes one alone), HAProxy
    lists it in both app backends with its check timing, and opens the admin socket scale talks to."""
    supervisord = Path(layout.supervisor["config"]).read_text()
    haproxy = Path(layout.haproxy["config"]).read_text()
    assert "[group:" not in supervisord
    assert [f"[program:{app.name}]" in supervisord for app in layout.apps] == [True] * len(layout.apps)
    assert [haproxy.count(balancer.server_line(app)) for app in layout.apps] == [2] * len(layout.apps)
    assert f"stats socket {balancer.socket_path(layout)} mode 600 level admin" in haproxy


def test_a_quota_puts_each_instance_in_a_cgroup_of_its_own(tmp_path: Path) -> None:
    """With a CPU quota each instance's command enters its own cgroup, named from the state directory, before
    it execs the server; without one the command is the server alone."""
    quota = new_layout(tmp_path / "quota", apps=2, cpu_quota=0.25)
    plain = new_layout(tmp_path / "plain", apps=1)
    cgroups = [app.cgroup for app in quota.apps]
    assert len(set(cgroups)) == 2
    assert all(Path(path).name.endswith(app.name) for path, app in zip(cgroups, quota.apps, strict=True))
    assert [
        f"echo $$ > {path}/cgroup.procs && exec" in app_program(quota, app)
        for path, app in zip(cgroups, quota.apps, strict=True)
    ] == [True, True]
    assert "/bin/sh" not in app_program(plain, plain.apps[0])
