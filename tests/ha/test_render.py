"""The cluster's rendered configuration: valid for the real tools, carrying the HA settings it promises, and
taking every HA decision from the Ansible roles' defaults, as the provisioned deployment does."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from punchclock_tools import roles
from punchclock_tools.cluster import balancer, etcd, patroni
from punchclock_tools.cluster.layout import Layout, new_layout
from punchclock_tools.cluster.render import (
    DRAIN_DELAY_SECONDS,
    LOOP_WAIT,
    RETRY_TIMEOUT,
    TEMPLATES,
    TTL,
    app_program,
    dynamic_config,
    haproxy_config,
    render_all,
    write_supervisord_config,
)


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


# What the harness's bootstrap.dcs holds beyond roles/patroni's patroni_dynamic, and why.
HARNESS_ONLY_DCS = {
    ("postgresql", "parameters", "archive_mode"): "every harness node archives to the one local pgBackRest "
    "repository; roles/patroni sets it per node (patroni_archive_mode), only where a repository host exists",
    ("postgresql", "parameters", "archive_timeout"): "the same, patroni_archive_timeout",
}
ETCD_TUNING = (
    "heartbeat-interval",
    "election-timeout",
    "auto-compaction-mode",
    "auto-compaction-retention",
    "quota-backend-bytes",
)


def test_bootstrap_dcs_is_the_roles_patroni_dynamic(layout: Layout) -> None:
    """The harness bootstraps Patroni with roles/patroni's patroni_dynamic exactly, plus only the keys named
    in HARNESS_ONLY_DCS (each from a roles/patroni default too), and its timing constants are those values."""
    patroni_role = roles.decisions("patroni")
    dcs = yaml.safe_load(Path(layout.nodes[0].patroni_config).read_text())["bootstrap"]["dcs"]
    extra = {}
    for *sections, key in HARNESS_ONLY_DCS:
        extra[key] = _dig(dcs, sections).pop(key)
    assert dcs == patroni_role["patroni_dynamic"]
    assert extra == {"archive_mode": patroni_role["patroni_archive_mode"], "archive_timeout": "60s"}
    assert patroni_role["patroni_archive_timeout"] == extra["archive_timeout"]
    assert tuple(dcs[name] for name in ("ttl", "loop_wait", "retry_timeout")) == (TTL, LOOP_WAIT, RETRY_TIMEOUT)


def _dig(mapping: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    for key in keys:
        mapping = mapping[key]
    return mapping


def test_etcd_flags_are_the_roles_etcd_defaults(layout: Layout) -> None:
    """Every harness etcd member runs with roles/etcd's raft timing, compaction and space quota."""
    etcd_role = roles.decisions("etcd")
    wanted = {flag: str(etcd_role["etcd_" + flag.replace("-", "_")]) for flag in ETCD_TUNING}
    supervisord = Path(layout.supervisor["config"]).read_text()
    commands = re.findall(r"^command=/usr/bin/etcd (.*?)\npriority=", supervisord, re.MULTILINE | re.DOTALL)
    flags = [dict(re.findall(r"--([a-z-]+) (\S+)", command)) for command in commands]
    assert len(flags) == len(layout.etcd)
    assert [{flag: member[flag] for flag in ETCD_TUNING} for member in flags] == [wanted] * len(layout.etcd)


def _role_haproxy_cfg() -> str:
    """roles/haproxy's haproxy.cfg.j2 rendered as Ansible does (trim_blocks) for one host that is a web node,
    a balancer and a database node, with its defaults and made-up deployment settings."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, autoescape=False)  # noqa: S701
    template = environment.from_string((roles.ROLES / "haproxy" / "templates" / "haproxy.cfg.j2").read_text())
    host = {"private_address": "10.0.0.1"}
    return template.render(
        roles.decisions("haproxy"),
        inventory_hostname="node1",
        groups={"web": ["node1"], "balancers": ["node1"], "postgres_cluster": ["node1"]},
        hostvars={"node1": host},
        postgres_proxy_address="127.0.0.1",
        postgres_port=5432,
        public_port=443,
        tls_dir="/etc/punchclock-tls",
        haproxy_stats_password="stats",
        **host,
    )


def _sections(text: str) -> dict[str, list[str]]:
    """An HAProxy configuration's sections (``defaults``, ``listen db_write``...) and their lines, comments out."""
    sections: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            lines = sections.setdefault(" ".join(line.split()[:2]), [])
        elif line.strip() and not line.strip().startswith("#"):
            lines.append(" ".join(line.split()))
    return sections


DIRECTIVES = (
    "timeout ",
    "option httpchk",
    "http-check",
    "balance ",
    "retries ",
    "option redispatch",
    "retry-on",
    "http-reuse ",
    "http-error ",
)
CHECK_OPTION = re.compile(r"\b(inter|fastinter|downinter|fall|rise|on-marked-down) (\S+)")


def _checks(lines: list[str]) -> tuple[list[str], set[tuple[str, str]]]:
    """A section's timeout, check and retry directives, and the check options of its (default-)server lines."""
    directives = [line for line in lines if line.startswith(DIRECTIVES)]
    servers = [line for line in lines if line.startswith(("server ", "default-server "))]
    return directives, {option for line in servers for option in CHECK_OPTION.findall(line)}


def test_haproxy_checks_and_timeouts_equal_the_roles(layout: Layout) -> None:
    """The harness's HAProxy checks, times out and retries exactly as roles/haproxy's rendered haproxy.cfg: the
    same directives and server check options in the defaults, the write listener and both app backends."""
    harness, role = _sections(haproxy_config(layout)), _sections(_role_haproxy_cfg())
    pairs = {
        "defaults": "defaults",
        "listen db_write": "listen postgres_rw",
        "backend apps": "backend apps",
        "backend apps_live": "backend apps_live",
    }
    for ours, theirs in pairs.items():
        assert _checks(harness[ours]) == _checks(role[theirs]), ours
    assert "timeout check 3s" in harness["defaults"]
    assert ("on-marked-down", "shutdown-sessions") in _checks(harness["listen db_write"])[1]
    assert _checks(harness["listen db_read"])[1] == _checks(harness["listen db_write"])[1]


def test_runtime_app_servers_take_the_roles_check_timing() -> None:
    """An app server added at run time (punchclock-cluster scale) carries roles/haproxy's haproxy_app_check."""
    assert "check " + roles.decisions("haproxy")["haproxy_app_check"] == balancer.SERVER_OPTIONS


def test_a_draining_instance_leaves_the_pool_within_its_drain_delay() -> None:
    """A draining instance fails /readyz at once, so HAProxy takes it out after ``fall`` checks ``inter`` apart:
    well before the drain delay, during which it still serves, ends."""
    timing = dict(re.findall(r"\b(inter|fall) (\d+)", roles.decisions("haproxy")["haproxy_app_check"]))
    assert int(timing["inter"]) * int(timing["fall"]) / 1000 < DRAIN_DELAY_SECONDS
    assert roles.decisions("punchclock")["punchclock_drain_delay_seconds"] == DRAIN_DELAY_SECONDS


def _dynamic_keys(mapping: dict[str, Any]) -> set[str]:
    leaves = set()
    for key, value in mapping.items():
        leaves |= _dynamic_keys(value) if isinstance(value, dict) else {key}
    return leaves


# Literals a harness template must not hold: each is a decision with its home in a role's defaults.
SHARED_DECISIONS = {
    r"\b(?:inter|fastinter|downinter|fall|rise) \d": "HAProxy check timing (haproxy_db_check, haproxy_app_check)",
    r"on-marked-down": "HAProxy's reaction to a database server going down (haproxy_db_check)",
    r"\btimeout \w+ \d": "HAProxy timeouts (haproxy_*_timeout)",
    r"httpchk GET /(?:primary|readyz|healthz)": "HAProxy check paths (haproxy_*_path)",
    r"\b(?:balance leastconn|retries \d|option redispatch|retry-on|http-reuse)": "haproxy_app_backend_options",
    r"Retry-After \d": "haproxy_retry_after_seconds",
    r"--(?:" + "|".join(ETCD_TUNING) + r") [^$\s]": "etcd's tuning (roles/etcd defaults)",
    r"PUNCHCLOCK_\w*SECONDS=\"\d": "the instances' drain and failover timing (roles/punchclock defaults)",
}


def test_no_harness_template_holds_a_shared_decision() -> None:
    """deploy/cluster/templates name the roles' values instead of typing them, so no edit can bring back a
    second copy: no check timing, timeout, check path, etcd flag value or Patroni dynamic setting in them."""
    dynamic = _dynamic_keys(roles.decisions("patroni")["patroni_dynamic"]) | {"archive_mode", "archive_timeout"}
    patterns = {**SHARED_DECISIONS, r"^\s*(?:" + "|".join(sorted(dynamic)) + r")\s*:": "patroni_dynamic"}
    found = [
        (template.name, decision, line.strip())
        for template in sorted(TEMPLATES.glob("*.tmpl"))
        for line in template.read_text().splitlines()
        if not line.lstrip().startswith(("#", ";"))
        for pattern, decision in patterns.items()
        if re.search(pattern, line)
    ]
    assert found == []
