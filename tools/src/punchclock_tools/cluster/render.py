"""Render every configuration file of the cluster from its template into the state directory."""

from __future__ import annotations

import json
import secrets
import shlex
from pathlib import Path
from string import Template

import yaml

from pcbackup import config as pgbackrest_conf
from punchclock_tools.cluster import balancer, cgroup, etcd, patroni
from punchclock_tools.cluster.layout import App, Layout
from punchclock_tools.paths import REPO
from punchclock_tools.postgres import PG_BIN, chown_postgres

TEMPLATES = REPO / "deploy" / "cluster" / "templates"  # the one home of each component's configuration

# Failover timing. Patroni 4.x raises any ttl below 20 to 20 (Config._validate_and_adjust_timeouts). Slack:
# loop_wait + 2 * retry_timeout = 14 <= ttl - 6, so a leader whose etcd or PostgreSQL answers slowly for one
# retry_timeout still refreshes its key well before it expires (3.0.2 ran 2 + 2 * 4 = 10 = ttl exactly).
TTL, LOOP_WAIT, RETRY_TIMEOUT = 20, 2, 6
DRAIN_DELAY_SECONDS = 2
FAILOVER_BUDGET_SECONDS = 40  # slowest failover stall measured with ttl 20: 32.5 s (partition), + 25 % (docs/ha.md)


def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


ARCHIVE_DIRS = ("spool", "lock")  # per node: each node's archive_command queues and locks on its own


def archive_dir(data_dir: str, kind: str) -> Path:
    """A node's own pgBackRest spool or lock directory, beside its data directory (``pgN/pgbackrest/KIND``)."""
    return Path(data_dir).parent / "pgbackrest" / kind


def pgbackrest_include(layout: Layout) -> Path:
    """``conf.d`` beside pgbackrest.conf: repo2's cipher pass, read by every pgbackrest command that names it."""
    return Path(layout.pgbackrest_config).parent / pgbackrest_conf.INCLUDE_DIR


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
        ttl=TTL,
        loop_wait=LOOP_WAIT,
        retry_timeout=RETRY_TIMEOUT,
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
    return _template("haproxy.cfg.tmpl").substitute(
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
            vars(member),
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
