"""Render every configuration file of the cluster from its template into the state directory."""

from __future__ import annotations

import json
import secrets
import shlex
import textwrap
from pathlib import Path
from string import Template
from typing import Any

import yaml

from pcbackup import config as pgbackrest_conf
from punchclock_tools import roles
from punchclock_tools.cluster import balancer, cgroup, etcd, patroni
from punchclock_tools.cluster.layout import App, Layout
from punchclock_tools.paths import REPO
from punchclock_tools.postgres import PG_BIN, chown_postgres

# The harness's own files: its supervisord programs and its loopback, TLS-less transport. It keeps that
# transport (it comes up in about 20 s, site.yml in about 280 s on six podman hosts, and the HA scenarios
# depend on that speed), but every HA decision in them (Patroni's dynamic configuration, etcd's timing,
# HAProxy's checks and timeouts) is read from the Ansible roles' defaults (punchclock_tools.roles).
TEMPLATES = REPO / "deploy" / "cluster" / "templates"

# Failover timing, read from roles/patroni's patroni_dynamic (its reasoning is written beside it there); other
# code and the scenarios compute their fault durations from these names.
_DYNAMIC = roles.decisions("patroni")["patroni_dynamic"]
TTL: int = _DYNAMIC["ttl"]
LOOP_WAIT: int = _DYNAMIC["loop_wait"]
RETRY_TIMEOUT: int = _DYNAMIC["retry_timeout"]
# The instances' drain and failover budget, as roles/punchclock runs them. The budget is above the slowest
# failover stall measured with ttl 20: 32.5 s (partition), + 25 % (docs/ha.md).
_APP = roles.decisions("punchclock")
DRAIN_DELAY_SECONDS: int = _APP["punchclock_drain_delay_seconds"]
DRAIN_SECONDS: int = _APP["punchclock_drain_seconds"]
FAILOVER_BUDGET_SECONDS: int = _APP["punchclock_failover_budget_seconds"]


def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


ARCHIVE_DIRS = ("spool", "lock")  # per node: each node's archive_command queues and locks on its own


def archive_dir(data_dir: str, kind: str) -> Path:
    """A node's own pgBackRest spool or lock directory, beside its data directory (``pgN/pgbackrest/KIND``)."""
    return Path(data_dir).parent / "pgbackrest" / kind


def pgbackrest_include(layout: Layout) -> Path:
    """``conf.d`` beside pgbackrest.conf: repo2's cipher pass, read by every pgbackrest command that names it."""
    return Path(layout.pgbackrest_config).parent / pgbackrest_conf.INCLUDE_DIR


# What the harness's bootstrap.dcs adds to patroni_dynamic: archiving, which every harness node always does
# through the one local pgBackRest repository (roles/patroni sets the same values per node, only where a
# repository host exists): each parameter and the roles/patroni default it takes.
HARNESS_DCS_PARAMETERS = {"archive_mode": "patroni_archive_mode", "archive_timeout": "patroni_archive_timeout"}


def bootstrap_dcs() -> dict[str, Any]:
    """The harness's ``bootstrap.dcs``: roles/patroni's patroni_dynamic plus its archiving parameters."""
    patroni_role = roles.decisions("patroni")
    dcs: dict[str, Any] = patroni_role["patroni_dynamic"]
    parameters = dcs["postgresql"]["parameters"]
    parameters.update({name: patroni_role[variable] for name, variable in HARNESS_DCS_PARAMETERS.items()})
    return dcs


def patroni_config(layout: Layout, name: str) -> str:
    node = layout.node(name)
    db = layout.database
    q = json.dumps  # a JSON string is a valid YAML scalar, whatever the path holds
    return _template("patroni.yml.tmpl").substitute(
        scope=layout.scope,
        name=node.name,
        rest_port=node.rest_port,
        pg_port=node.pg_port,
        etcd_hosts=q([f"127.0.0.1:{etcd.client_port}" for etcd in layout.etcd]),
        dcs=textwrap.indent(yaml.safe_dump(bootstrap_dcs(), sort_keys=False), "    ").rstrip("\n"),
        data_dir=q(node.data_dir),
        node_dir=str(Path(node.data_dir).parent),
        socket_dir=q(node.socket_dir),
        pg_bin=q(str(PG_BIN)),
        superuser=db["superuser"],
        superuser_password=db["superuser_password"],
        replication_user=db["replication_user"],
        replication_password=db["replication_password"],
        pgbackrest_config=shlex.quote(layout.pgbackrest_config),
        pgbackrest_include=shlex.quote(str(pgbackrest_include(layout))),
        archive_pg_path=shlex.quote(node.data_dir),
        archive_spool=shlex.quote(str(archive_dir(node.data_dir, "spool"))),
        archive_lock=shlex.quote(str(archive_dir(node.data_dir, "lock"))),
        stanza=layout.stanza,
    )


def dynamic_config(layout: Layout) -> dict[str, object]:
    """The cluster-wide settings of the rendered bootstrap section, as ``up`` applies them to a running cluster."""
    config = yaml.safe_load(patroni_config(layout, layout.nodes[0].name))
    return dict(config["bootstrap"]["dcs"])


def haproxy_config(layout: Layout) -> str:
    # Both listeners list every node; each picks its servers by the Patroni REST check in the template.
    db_servers = "\n".join(
        f"    server {node.name} 127.0.0.1:{node.pg_port} check port {node.rest_port}" for node in layout.nodes
    )
    decisions = roles.decisions("haproxy")
    return _template("haproxy.cfg.tmpl").substitute(
        decisions,
        app_backend_options="\n".join(f"    {option}" for option in decisions["haproxy_app_backend_options"]),
        admin_socket=str(balancer.socket_path(layout)),
        stats_port=layout.haproxy["stats_port"],
        write_port=layout.haproxy["write_port"],
        read_port=layout.haproxy["read_port"],
        http_port=layout.haproxy["http_port"],
        write_servers=db_servers,
        read_servers=db_servers,
        app_servers="\n".join(f"    {balancer.server_line(app)}" for app in layout.apps),
    )


def supervisord_config(layout: Layout) -> str:
    log_dir = str(layout.root / "log")
    initial_cluster = ",".join(f"{e.name}=http://127.0.0.1:{e.peer_port}" for e in layout.etcd)
    token = layout.extra.setdefault("etcd_token", f"punchclock-{secrets.token_hex(4)}")
    programs = [
        _template("etcd.program.tmpl").substitute(
            {**roles.decisions("etcd"), **vars(member)},
            initial_cluster=initial_cluster,
            token=token,
            cluster_state=etcd.cluster_state(layout),
            log_dir=log_dir,
        )
        for member in layout.etcd
    ]
    programs += [
        _template("patroni.program.tmpl").substitute(
            name=node.name,
            gid=node.gid,
            patroni=patroni.executable("patroni"),
            config=node.patroni_config,
            node_dir=str(Path(node.data_dir).parent),
            log=node.log,
        )
        for node in layout.nodes
    ]
    programs.append(_template("haproxy.program.tmpl").substitute(config=layout.haproxy["config"], log_dir=log_dir))
    programs += [app_program(layout, app) for app in layout.apps]
    return _template("supervisord.conf.tmpl").substitute(
        socket=layout.supervisor["socket"],
        log=layout.supervisor["log"],
        pidfile=layout.supervisor["pidfile"],
        log_dir=log_dir,
        programs="\n".join(programs),
    )


def app_program(layout: Layout, app: App) -> str:
    """One instance's ``[program:appN]``: a program of its own (no group), so ``scale`` adds or removes it
    with ``supervisorctl add``/``remove`` without touching the other instances."""
    serve = shlex.quote(str(REPO / ".venv" / "bin" / "punchclock")) + " serve"
    return _template("app.program.tmpl").substitute(
        name=app.name,
        command=cgroup.command(serve, Path(app.cgroup) if app.cgroup else None),
        repo=str(REPO),
        dsn=layout.database["dsn"],
        port=app.port,
        drain_delay=DRAIN_DELAY_SECONDS,
        drain_seconds=DRAIN_SECONDS,
        failover_budget=FAILOVER_BUDGET_SECONDS,
        log_dir=str(layout.root / "log"),
    )


def pgbackrest_config(layout: Layout) -> str:
    base = Path(layout.pgbackrest_config).parent
    nodes = [pgbackrest_conf.Node(Path(n.data_dir), n.pg_port, Path(n.socket_dir)) for n in layout.nodes]
    return pgbackrest_conf.render(
        Path(layout.pgbackrest_repo), base / "log", base / "lock", base / "spool", nodes, repo2_encrypted=True
    )


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def render_all(layout: Layout) -> None:
    """Write every file the processes read; directories PostgreSQL touches belong to postgres."""
    root = layout.root
    (root / "log").mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # postgres must reach its node directory inside
    for member in layout.etcd:
        Path(member.data_dir).parent.mkdir(parents=True, exist_ok=True)
    for node in layout.nodes:
        node_dir = Path(node.data_dir).parent
        Path(node.socket_dir).mkdir(parents=True, exist_ok=True)
        node_dir.chmod(0o700)
        _write(Path(node.patroni_config), patroni_config(layout, node.name))
        archive = [archive_dir(node.data_dir, kind) for kind in ARCHIVE_DIRS]
        for path in archive:
            path.mkdir(parents=True, exist_ok=True)
        for path in (node_dir, Path(node.socket_dir), Path(node.patroni_config), archive[0].parent, *archive):
            chown_postgres(path)
        Path(node.log).touch()
    backrest = Path(layout.pgbackrest_config).parent
    for sub in ("repo", "log", "lock", "spool"):
        (backrest / sub).mkdir(parents=True, exist_ok=True)
    for path in (backrest, *(backrest / sub for sub in ("repo", "log", "lock", "spool"))):
        chown_postgres(path)
    pgbackrest_conf.write_secrets(backrest)  # conf.d/secrets.conf (0600): repo2's cipher pass, kept once made
    _write(Path(layout.pgbackrest_config), pgbackrest_config(layout), mode=0o640)
    chown_postgres(Path(layout.pgbackrest_config))
    _write(Path(layout.haproxy["config"]), haproxy_config(layout))
    write_supervisord_config(layout)


def write_supervisord_config(layout: Layout) -> None:
    """supervisord.conf (and the layout, which it may add the etcd token to). A running supervisord keeps the
    programs it read at its start until ``supervisorctl update`` replaces them."""
    _write(Path(layout.supervisor["config"]), supervisord_config(layout))
    layout.save()
