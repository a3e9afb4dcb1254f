"""Bring the cluster up in order, and take it down leaving nothing running."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from deploy.cluster import patroni, supervisor
from deploy.cluster.layout import REPO, Layout, new_layout
from deploy.cluster.render import dynamic_config, render_all

PUNCHCLOCK = REPO / ".venv" / "bin" / "punchclock"


def say(message: str) -> None:
    print(f"cluster: {message}", flush=True)


def as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


def leader_psql(layout: Layout, sql: str, database: str = "postgres") -> str:
    """Run SQL as the superuser on the current leader, over its Unix socket."""
    name = patroni.wait(lambda: patroni.leader(layout), 60, "a leader")
    node = layout.node(name)
    argv = [
        "psql",
        "-h",
        node.socket_dir,
        "-p",
        str(node.pg_port),
        "-U",
        "postgres",
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
        "-XAtq",
        "-c",
        sql,
    ]
    result = subprocess.run(as_postgres(argv), capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def create_database(layout: Layout) -> None:
    db = layout.database
    leader_psql(
        layout,
        f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{db["user"]}') THEN
            CREATE ROLE {db["user"]} LOGIN PASSWORD '{db["password"]}';
        END IF; END $$""",
    )
    if not leader_psql(layout, f"SELECT 1 FROM pg_database WHERE datname = '{db['name']}'"):
        leader_psql(layout, f"CREATE DATABASE {db['name']} OWNER {db['user']}")


def stanza_create(layout: Layout) -> None:
    argv = ["pgbackrest", f"--config={layout.pgbackrest_config}", f"--stanza={layout.stanza}", "stanza-create"]
    result = subprocess.run(as_postgres(argv), capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pgbackrest stanza-create failed: {result.stdout}{result.stderr}")


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
    state_dir: Path, apps: int = 2, http_port: int | None = None, with_apps: bool = True, timeout: float = 120
) -> Layout:
    """Start etcd, Patroni, HAProxy, then (schema migrated) the app instances; return the layout."""
    started = time.monotonic()
    if (state_dir / "cluster.json").exists():
        layout = Layout.load(state_dir)
        say(f"reusing the layout in {layout.file}")
    else:
        layout = new_layout(state_dir, apps=apps, http_port=http_port)
        say(f"new cluster in {layout.state_dir}")
    say(f"Patroni {patroni.VERSION} in {patroni.ensure_installed()}")
    render_all(layout)
    supervisor.start_daemon(layout)
    say("supervisord started etcd x3, Patroni x3 and HAProxy; waiting for a leader and a synchronous standby")
    patroni.wait(lambda: patroni.healthy(layout), timeout, "a leader, a synchronous standby and a replica")
    say(f"leader is {patroni.leader(layout)}")
    # A reused cluster was bootstrapped with older settings: bring its DCS configuration up to the rendered one.
    patroni.patch_config(layout, dynamic_config(layout))
    create_database(layout)
    stanza_create(layout)
    say(f"pgBackRest stanza {layout.stanza} ready")
    if with_apps and app_available():
        migrate(layout)
        supervisor.ctl(layout, "start", "apps:*")
        patroni.wait(lambda: http_ready(f"{layout.app_url}/readyz"), timeout, "an app instance behind HAProxy")
        say(f"punchclock serves {layout.app_url}/app")
    elif with_apps:
        say("no runnable .venv/bin/punchclock yet: the database side is up, the app instances are not")
    say(f"ready in {time.monotonic() - started:.1f}s")
    return layout


def down(state_dir: Path, purge: bool = False) -> None:
    """Stop every process of the cluster (verified by pid); with ``purge`` delete the state directory."""
    if not (state_dir / "cluster.json").exists():
        say(f"no cluster in {state_dir}")
        return
    layout = Layout.load(state_dir)
    for note in supervisor.shutdown(layout):
        say(note)
    say("stopped")
    if purge:
        shutil.rmtree(state_dir, ignore_errors=True)
        say(f"removed {state_dir}")
