"""Command line: ``python -m punchclock_tools.monitoring up|down|refresh|status``; the make monitoring-* targets and
make cluster-scale (``refresh --if-running``) run it."""

from __future__ import annotations

import argparse
from pathlib import Path

from punchclock_tools.cluster.layout import Layout, state_dir_from_env
from punchclock_tools.monitoring import rules, stack, targets
from punchclock_tools.paths import STATE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m punchclock_tools.monitoring", description=__doc__)
    parser.add_argument("--state", type=Path, default=state_dir_from_env(), help="the cluster's state directory")
    parser.add_argument("--dir", type=Path, default=STATE / "monitoring", help="Prometheus's and Alertmanager's")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser(
        "up", help="start the exporters, Prometheus and Alertmanager against the running cluster (running: refresh)"
    )
    up.add_argument(
        "--shorten", type=float, default=0, help="divide every rule duration by this (30: a 1m `for:` is 2 s)"
    )
    commands.add_parser("down", help="stop them")
    refresh = commands.add_parser(
        "refresh", help="scrape the instances the cluster runs now (after make cluster-scale)"
    )
    refresh.add_argument("--if-running", action="store_true", help="with no stack running, say so and succeed")
    commands.add_parser("status", help="print their URLs")
    args = parser.parse_args(argv)
    if args.command == "up":
        shortening = rules.Shortening(factor=args.shorten) if args.shorten else None
        for line in stack.up(args.state, args.dir, shortening).lines():
            print(line)
    elif args.command == "refresh":
        if stack.running(args.dir) is None:
            print(
                "monitoring: not running, no targets to refresh"
                if args.if_running
                else "monitoring: not started (make monitoring-up)"
            )
            return 0 if args.if_running else 1
        found = targets.refresh(Layout.load(args.state), stack.targets_dir(args.dir))
        print(f"monitoring: scraping {len(found['punchclock'])} punchclock instances")
    elif args.command == "down":
        for line in stack.down(args.dir):
            print(f"monitoring: {line}")
    else:
        running = stack.load(args.dir)
        print("\n".join(running.lines()) if running else "monitoring: not started (make monitoring-up)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
