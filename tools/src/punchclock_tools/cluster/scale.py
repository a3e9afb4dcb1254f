"""``punchclock-cluster scale N``: add or remove app instances of a running cluster without failing a request.

Adding: the instance is written into the layout and supervisord's configuration, added to supervisord as a
program of its own (``reread`` + ``add``, so no other instance restarts) and started (in its cgroup under the
cluster's CPU quota); once its own ``/readyz`` answers 200 it is added to both HAProxy backends at run time,
and the call returns when HAProxy has it UP.

Removing takes the newest instance first. HAProxy drains it (no new request goes there) and the call waits
until HAProxy holds no session on it; then it is put in maintenance and stopped with SIGTERM, on which
punchclock finishes what is in flight; then its servers are deleted, the program removed from supervisord,
its cgroup removed and the layout saved.

Each step logs one sentence. The layout (cluster.json), haproxy.cfg and supervisord.conf always list the
instances that run, so ``status``, ``down`` and monitoring see every one, and a restarted HAProxy or
supervisord comes back with the same pool.
"""

from __future__ import annotations

import time
from pathlib import Path

from punchclock_tools.cluster import balancer, cgroup, control, patroni, supervisor
from punchclock_tools.cluster.control import say
from punchclock_tools.cluster.layout import App, Layout
from punchclock_tools.cluster.render import haproxy_config, write_supervisord_config
from punchclock_tools.ports import stable_ports


def _write_configs(layout: Layout) -> None:
    """haproxy.cfg and supervisord.conf (and cluster.json) as the layout's instances now are."""
    Path(layout.haproxy["config"]).write_text(haproxy_config(layout))
    write_supervisord_config(layout)


def set_quota(layout: Layout, cores: float) -> None:
    """Every instance's quota to ``cores``, at once (the kernel applies it from the next period)."""
    unquota = [app.name for app in layout.apps if not app.cgroup]
    if unquota:
        raise RuntimeError(
            f"{', '.join(unquota)} run without a cgroup (the cluster was started without a CPU quota); "
            "a quota applies to a cluster brought up with `up --cpu-quota`"
        )
    for app in layout.apps:
        cgroup.create(Path(app.cgroup), cores)
    layout.app_cpu_quota = cores
    layout.save()
    say(f"every instance may use {cores:g} cores")


def add(layout: Layout, timeout: float = 60) -> App:
    """Start one more instance and put it behind HAProxy once it is ready."""
    taken = {app.port for app in layout.apps}
    port = next(port for port in stable_ports(len(taken) + 1) if port not in taken)
    number = max((int(app.name.removeprefix("app")) for app in layout.apps), default=0) + 1
    app = layout.new_app(f"app{number}", port)
    if app.cgroup:
        cgroup.create(Path(app.cgroup), cgroup.STARTUP_CORES)
    layout.apps.append(app)
    write_supervisord_config(layout)  # haproxy.cfg lists it once HAProxy does
    supervisor.ctl(layout, "reread")
    supervisor.ctl(layout, "add", app.name)
    supervisor.ctl(layout, "start", app.name)
    quota = f" (under a quota of {layout.app_cpu_quota:g} cores once ready)" if app.cgroup else ""
    say(f"started {app.name} on port {port}{quota}; waiting for its /readyz")
    own = f"http://127.0.0.1:{app.port}/readyz"
    patroni.wait(lambda: control.http_ready(own), timeout, f"{app.name} ready", interval=0.1)
    if app.cgroup:
        cgroup.set_quota(Path(app.cgroup), float(layout.app_cpu_quota or 0))
    balancer.add(layout, app)
    _write_configs(layout)
    patroni.wait(lambda: balancer.status(layout, app.name) == "UP", timeout, f"{app.name} UP in HAProxy", interval=0.1)
    say(f"{app.name} is ready and HAProxy sends it requests ({len(layout.apps)} running)")
    return app


def remove(layout: Layout, timeout: float = 60) -> App:
    """Drain the newest instance in HAProxy, stop it with SIGTERM once it holds no session, forget it."""
    if len(layout.apps) <= 1:
        raise RuntimeError("one instance is the fewest: removing it would leave nothing to serve")
    app = layout.apps[-1]
    balancer.drain(layout, app.name)
    say(f"draining {app.name} in HAProxy; waiting until it holds no session")
    patroni.wait(lambda: balancer.sessions(layout, app.name) == 0, timeout, f"{app.name} without sessions", 0.1)
    balancer.maintenance(layout, app.name)
    if app.cgroup:  # it serves nothing any more: let it finish and exit at the speed it started with
        cgroup.set_quota(Path(app.cgroup), cgroup.STARTUP_CORES)
    started = time.monotonic()
    supervisor.ctl(layout, "stop", supervisor.program(layout, app.name), timeout=timeout)
    say(f"{app.name} held no session; in maintenance, stopped with SIGTERM in {time.monotonic() - started:.1f}s")
    balancer.delete(layout, app.name, timeout)
    layout.apps.remove(app)
    _write_configs(layout)
    supervisor.ctl(layout, "reread")
    supervisor.ctl(layout, "remove", app.name)
    if app.cgroup:
        cgroup.remove(Path(app.cgroup))
    say(f"removed {app.name} ({len(layout.apps)} running)")
    return app


def scale(layout: Layout, count: int, cpu_quota: float | None = None) -> list[str]:
    """Add or remove instances, one at a time, until ``count`` run; with ``cpu_quota``, set every instance's
    first. Returns the names added or removed."""
    if count < 1:
        raise ValueError("a cluster serves with one instance at least")
    if cpu_quota is not None:
        set_quota(layout, cpu_quota)
    changed = []
    while len(layout.apps) < count:
        changed.append(add(layout).name)
    while len(layout.apps) > count:
        changed.append(remove(layout).name)
    return changed
