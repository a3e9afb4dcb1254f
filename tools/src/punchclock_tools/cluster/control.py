"""Bring the cluster up in order, and take it down leaving nothing running."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from pcbackup.pgbackrest import PgBackRest
from punchclock_tools.cluster import cgroup, etcd, patroni, supervisor
from punchclock_tools.cluster.layout import Layout, new_layout
from punchclock_tools.cluster.render import dynamic_config, render_all, write_supervisord_config
from punchclock_tools.paths import REPO
from punchclock_tools.postgres import Database

PUNCHCLOCK = REPO / ".venv" / "bin" / "punchclock"


def say(message: str) -> None:
    print(f"cluster: {message}", flush=True)


def leader_db(layout: Layout, database: str = "postgres") -> Database:
    """The current leader's database, reached as the superuser over its Unix socket."""
    node = layout.node(patroni.wait(lambda: patroni.leader(layout), 60, "a leader"))
    return Database(Path(node.socket_dir), node.pg_port, database)


def leader_psql(layout: Layout, sql: str, database: str = "postgres") -> str:
    return leader_db(layout, database).query(sql, timeout=60)


def create_database(layout: Layout) -> None:
    """Create the application role and its database on the leader unless they exist. Names and password come
    from the layout (fixed names, a generated hex password), and psql takes no bound parameters, so they are
    interpolated, quoted as SQL requires: identifiers in double quotes, strings in single quotes, any quote
    inside doubled (standard_conforming_strings is on, so backslashes are plain characters)."""

    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def identifier(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    db = layout.database
    user, name = identifier(db["user"]), identifier(db["name"])
    if not leader_psql(layout, f"SELECT 1 FROM pg_roles WHERE rolname = {literal(db['user'])}"):
        leader_psql(layout, f"CREATE ROLE {user} LOGIN PASSWORD {literal(db['password'])}")
    if not leader_psql(layout, f"SELECT 1 FROM pg_database WHERE datname = {literal(db['name'])}"):
        leader_psql(layout, f"CREATE DATABASE {name} OWNER {user}")


def stanza_create(layout: Layout) -> None:
    PgBackRest(Path(layout.pgbackrest_config), layout.stanza).stanza_create()


def app_available() -> bool:
    if not PUNCHCLOCK.exists():
        return False
    probe = subprocess.run([str(PUNCHCLOCK), "serve", "--help"], capture_output=True, timeout=60, check=False)
    return probe.returncode == 0


def migrate(layout: Layout) -> None:
    env = {**os.environ, "DATABASE_URL": layout.database["dsn"]}
    subprocess.run([str(PUNCHCLOCK), "migrate"], env=env, cwd=REPO, check=True, timeout=120)


def http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http://127.0.0.1 URLs built here
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def up(
    state_dir: Path,
    apps: int = 2,
    http_port: int | None = None,
    with_apps: bool = True,
    timeout: float = 120,
    cpu_quota: float | None = None,
) -> Layout:
    """Start etcd, Patroni, HAProxy, then (schema migrated) the app instances; return the layout.

    ``apps``, ``http_port`` and ``cpu_quota`` (cores per instance, none by default) apply to a new cluster;
    a reused one keeps its own (``scale`` changes the instances and their quota)."""
    started = time.monotonic()
    if (state_dir / "cluster.json").exists():
        layout = Layout.load(state_dir)
        say(f"reusing the layout in {layout.file}")
    else:
        layout = new_layout(state_dir, apps=apps, http_port=http_port, cpu_quota=cpu_quota)
        say(f"new cluster in {layout.state_dir}")
    for app in layout.apps:
        if app.cgroup:
            cgroup.create(Path(app.cgroup), cgroup.STARTUP_CORES)
    say(f"Patroni {patroni.VERSION} in {patroni.ensure_installed()}")
    render_all(layout)
    supervisor.start_daemon(layout)
    say("supervisord started etcd x3, Patroni x3 and HAProxy; waiting for a leader and a synchronous standby")
    patroni.wait(lambda: patroni.healthy(layout), timeout, "a leader, a synchronous standby and a replica")
    say(f"leader is {patroni.leader(layout)}")
    if etcd.mark_bootstrapped(layout):
        # From now on a member that starts without data joins this cluster (etcd-rejoin); the running
        # supervisord keeps `new`, which the members ignore since their data directories are initialized.
        write_supervisord_config(layout)
        say("etcd formed its cluster: members that lose their data rejoin it with --initial-cluster-state existing")
    # A reused cluster was bootstrapped with older settings: bring its DCS configuration up to the rendered one.
    patroni.patch_config(layout, dynamic_config(layout))
    create_database(layout)
    stanza_create(layout)
    say(f"pgBackRest stanza {layout.stanza} ready")
    if with_apps and app_available():
        migrate(layout)
        supervisor.ctl(layout, "start", *(supervisor.program(layout, app.name) for app in layout.apps))
        patroni.wait(lambda: http_ready(f"{layout.app_url}/readyz"), timeout, "an app instance behind HAProxy")
        quota_when_ready(layout, timeout)
        say(f"punchclock serves {layout.app_url}/app")
    elif with_apps:
        say("no runnable .venv/bin/punchclock yet: the database side is up, the app instances are not")
    say(f"ready in {time.monotonic() - started:.1f}s")
    return layout


def quota_when_ready(layout: Layout, timeout: float) -> None:
    """Each instance under the cluster's CPU quota once its own /readyz passes (it started with more)."""
    for app in layout.apps:
        if app.cgroup and layout.app_cpu_quota:
            own = f"http://127.0.0.1:{app.port}/readyz"
            patroni.wait(lambda own=own: http_ready(own), timeout, f"{app.name} ready")
            cgroup.set_quota(Path(app.cgroup), layout.app_cpu_quota)
            say(f"{app.name} runs under a quota of {layout.app_cpu_quota:g} cores")


def down(state_dir: Path, purge: bool = False) -> None:
    """Stop every process of the cluster (verified by pid); with ``purge`` delete the state directory."""
    if not (state_dir / "cluster.json").exists():
        say(f"no cluster in {state_dir}")
        return
    layout = Layout.load(state_dir)
    for note in supervisor.shutdown(layout):
        say(note)
    for app in layout.apps:
        if app.cgroup:
            cgroup.remove(Path(app.cgroup))
            say(f"removed cgroup {app.cgroup}")
    say("stopped")
    if purge:
        shutil.rmtree(state_dir, ignore_errors=True)
        say(f"removed {state_dir}")
