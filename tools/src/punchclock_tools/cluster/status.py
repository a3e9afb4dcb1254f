"""``cluster-status``: who leads, how replication stands, which instances serve, and the URLs."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from punchclock_tools.cluster import patroni, supervisor
from punchclock_tools.cluster.layout import Layout


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - http://127.0.0.1 URLs built here
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - http://127.0.0.1 URLs built here
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0


def collect(layout: Layout) -> dict[str, Any]:
    procs = supervisor.processes(layout) if supervisor.supervisord_pid(layout) else {}
    etcd = {
        e.name: (_get_json(f"http://127.0.0.1:{e.client_port}/health") or {}).get("health") == "true"
        for e in layout.etcd
    }
    return {
        "state_dir": layout.state_dir,
        "app_url": f"{layout.app_url}/app",
        "haproxy_stats": f"http://127.0.0.1:{layout.haproxy['stats_port']}/",
        "db_write": f"127.0.0.1:{layout.haproxy['write_port']}",
        "db_read": f"127.0.0.1:{layout.haproxy['read_port']}",
        "leader": patroni.leader(layout),
        "members": patroni.members(layout),
        "etcd_healthy": etcd,
        "processes": {name: {"state": p.state, "pid": p.pid} for name, p in procs.items()},
        "apps_ready": {app.name: _http_status(f"http://127.0.0.1:{app.port}/readyz") == 200 for app in layout.apps},
        "balancer_ready": _http_status(f"{layout.app_url}/readyz") == 200,
    }


def render(info: dict[str, Any]) -> str:
    lines = [
        f"punchclock cluster in {info['state_dir']}",
        f"  POST        {info['app_url']}   (ready through the balancer: {info['balancer_ready']})",
        f"  db writes   {info['db_write']}   db reads {info['db_read']}",
        f"  haproxy     {info['haproxy_stats']}",
        f"  leader      {info['leader'] or 'NONE'}",
        "",
        f"  {'member':8}{'role':14}{'state':12}{'timeline':>9}{'lag MB':>8}  host",
    ]
    for member in info["members"]:
        lag = member.get("lag", "")
        lag_mb = f"{lag / 1048576:.1f}" if isinstance(lag, int) else str(lag)
        lines.append(
            f"  {member['name']:8}{member.get('role', ''):14}{member.get('state', ''):12}"
            f"{member.get('timeline', ''):>9}{lag_mb:>8}  {member.get('host')}:{member.get('port')}"
        )
    lines.append("")
    lines.append(
        "  etcd        " + "  ".join(f"{n}={'ok' if ok else 'DOWN'}" for n, ok in info["etcd_healthy"].items())
    )
    lines.append(
        "  instances   " + "  ".join(f"{n}={'ready' if ok else 'not ready'}" for n, ok in info["apps_ready"].items())
    )
    lines.append(
        "  processes   " + "  ".join(f"{n}={p['state']}" for n, p in sorted(info["processes"].items()))
        if info["processes"]
        else "  processes   supervisord is not running"
    )
    return "\n".join(lines)
