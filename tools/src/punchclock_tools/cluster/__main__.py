"""Command line: ``punchclock-cluster up|status|down|scale|start|stop|etcd-rejoin`` (see ``--help``); make
cluster-up runs it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from punchclock_tools.cluster import control, etcd, scale, status, supervisor
from punchclock_tools.cluster.layout import Layout, state_dir_from_env
from punchclock_tools.ports import port_is_free


def default_http_port() -> int | None:
    return 8080 if port_is_free(8080) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="punchclock-cluster", description=__doc__)
    parser.add_argument(
        "--state",
        type=Path,
        default=state_dir_from_env(),
        help="state directory (default $PUNCHCLOCK_CLUSTER_STATE or .state/cluster)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start everything and wait until POST /app works")
    up.add_argument("--apps", type=int, default=2, help="number of punchclock instances (first up only)")
    up.add_argument(
        "--http-port",
        type=int,
        default=default_http_port(),
        help="public HTTP port, first up only (default 8080 when free, else any free port)",
    )
    up.add_argument("--no-apps", action="store_true", help="database side only")
    up.add_argument(
        "--cpu-quota", type=float, metavar="CORES", help="each instance in a cgroup of CORES (first up only)"
    )
    grow = commands.add_parser("scale", help="add or remove punchclock instances while the cluster serves")
    grow.add_argument("count", type=int, help="instances to run (the newest are removed first, drained)")
    grow.add_argument(
        "--cpu-quota", type=float, metavar="CORES", help="set every instance's quota (a cluster up with --cpu-quota)"
    )
    show = commands.add_parser("status", help="leader, replication, instances and URLs")
    show.add_argument("--json", action="store_true")
    down = commands.add_parser("down", help="stop every process of the cluster")
    down.add_argument("--purge", action="store_true", help="also delete the state directory")
    for verb in ("start", "stop"):
        one = commands.add_parser(verb, help=f"{verb} one program (pg1, etcd2, app1, haproxy...)")
        one.add_argument("name")
    rejoin = commands.add_parser("etcd-rejoin", help="re-add an etcd member that lost its data, and start it")
    rejoin.add_argument("name")
    args = parser.parse_args(argv)
    state: Path = args.state.resolve()

    if args.command == "up":
        control.up(
            state, apps=args.apps, http_port=args.http_port, with_apps=not args.no_apps, cpu_quota=args.cpu_quota
        )
        print(status.render(status.collect(Layout.load(state))))
    elif args.command == "down":
        control.down(state, purge=args.purge)
    elif not (state / "cluster.json").exists():
        print(f"no cluster in {state}; run `make cluster-up`", file=sys.stderr)
        return 1
    elif args.command == "status":
        info = status.collect(Layout.load(state))
        print(json.dumps(info, indent=2) if args.json else status.render(info))
    elif args.command == "scale":
        layout = Layout.load(state)
        scale.scale(layout, args.count, args.cpu_quota)
        print(" ".join(f"{app.name}=127.0.0.1:{app.port}" for app in layout.apps))
    elif args.command == "etcd-rejoin":
        etcd.rejoin(Layout.load(state), args.name)
        print(f"{args.name} rejoined etcd")
    else:
        layout = Layout.load(state)
        print(supervisor.ctl(layout, args.command, supervisor.program(layout, args.name)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
