"""HAProxy's runtime API over its admin socket: add, drain and delete an app instance's servers while it runs.

An instance is a server in two backends, ``apps`` (those ready) and ``apps_live`` (those alive, used only
while no instance is ready). HAProxy 2.6 adds and deletes servers at run time (``add server``/``del
server``), so growing or shrinking the pool touches neither the connections of the other instances nor the
clients' keep-alive connections, which a reload would close (a new worker does not inherit them). The
rendered ``haproxy.cfg`` lists the same servers, so a restarted HAProxy comes back with the pool as it is.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from pathlib import Path

from punchclock_tools import roles
from punchclock_tools.cluster.layout import App, Layout

BACKENDS = ("apps", "apps_live")
# Every app server's options, in the rendered file and at run time alike (a dynamic server takes nothing
# from default-server): roles/haproxy's haproxy_app_check, the timing the Ansible balancers use too.
SERVER_OPTIONS = f"check {roles.decisions('haproxy')['haproxy_app_check']}"


def socket_path(layout: Layout) -> Path:
    return layout.root / "haproxy.sock"


def server_line(app: App) -> str:
    """The ``server`` line of one instance in haproxy.cfg."""
    return f"server {app.name} 127.0.0.1:{app.port} {SERVER_OPTIONS}"


def command(layout: Layout, line: str, timeout: float = 5) -> str:
    """Send one runtime API command and return HAProxy's answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path(layout)))
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def stats(layout: Layout) -> list[dict[str, str]]:
    """``show stat``: one row per server of every proxy (frontends and backend totals left out)."""
    text = command(layout, "show stat").lstrip("# ")
    return [row for row in csv.DictReader(io.StringIO(text)) if row["svname"] not in ("FRONTEND", "BACKEND")]


def sessions(layout: Layout, name: str) -> int:
    """Sessions HAProxy holds open on instance ``name`` now, in both backends."""
    return sum(int(row["scur"] or 0) for row in stats(layout) if row["svname"] == name and row["pxname"] in BACKENDS)


def status(layout: Layout, name: str) -> str | None:
    """The instance's status in the ``apps`` backend (``UP``, ``DOWN``, ``DRAIN``, ``MAINT``), None if absent."""
    return next((row["status"] for row in stats(layout) if (row["pxname"], row["svname"]) == ("apps", name)), None)


def served(layout: Layout, name: str) -> int:
    """Sessions the instance has taken since it was added (``stot``, both backends)."""
    return sum(int(row["stot"] or 0) for row in stats(layout) if row["svname"] == name and row["pxname"] in BACKENDS)


def _checked(layout: Layout, line: str, expect: str) -> None:
    answer = command(layout, line)
    # A command that succeeds answers nothing, or (``add server``) a line containing ``expect``.
    if answer.strip() and (not expect or expect not in answer):
        raise RuntimeError(f"HAProxy refused `{line}`: {answer.strip()}")


def add(layout: Layout, app: App) -> None:
    """Declare the instance in both backends and let traffic in once its checks pass (it is ready already)."""
    present = {(row["pxname"], row["svname"]) for row in stats(layout)}
    for backend in BACKENDS:
        if (backend, app.name) not in present:
            _checked(layout, f"add server {backend}/{server_line(app).removeprefix('server ')}", "New server")
        _checked(layout, f"enable health {backend}/{app.name}", "")
        _checked(layout, f"set server {backend}/{app.name} state ready", "")


def drain(layout: Layout, name: str) -> None:
    """No new requests to the instance; those it holds finish."""
    for backend in BACKENDS:
        _checked(layout, f"set server {backend}/{name} state drain", "")


def maintenance(layout: Layout, name: str) -> None:
    """No request at all to the instance any more (it holds none: it was drained first)."""
    for backend in BACKENDS:
        _checked(layout, f"set server {backend}/{name} state maint", "")


def delete(layout: Layout, name: str, timeout: float = 30) -> None:
    """Delete the instance's servers, in maintenance already. HAProxy refuses while an idle keep-alive
    connection to the server remains; the stopped instance has closed them, and HAProxy is asked again."""
    deadline = time.monotonic() + timeout
    for backend in BACKENDS:
        while True:
            answer = command(layout, f"del server {backend}/{name}").strip()
            if "deleted" in answer or "No such server" in answer:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy kept {backend}/{name}: {answer}")
            time.sleep(0.2)
