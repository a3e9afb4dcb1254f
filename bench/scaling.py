"""``python -m bench.scaling`` (make bench-scaling): instances added while load rises and removed while it falls.

A cluster of its own (etcd x3, Patroni x3, HAProxy) starts with one instance, every instance under the same
CPU quota (its own cgroup), so on a small machine the instances, not the cores, are what a rate needs. The
load (``punchclock_tools.load.Load``) follows a fixed schedule of steps, each a rate and an instance count:
the schedule stands where the HPA or an autoscaling group would decide, and ``punchclock-cluster scale``'s
code does what they would ask for. Where a step offers more than its instances carry, the throughput of that
step is what that many instances carry. Afterwards every acknowledged receipt is checked on every node.

Writes ``scaling.json`` (steps, per-instance-count throughput, the timeline, the verdict) and ``scaling.png``
into ``SCALING_RESULTS_DIR``; exits 1 when any request failed, or a stamp was lost or doubled.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import machine, scaling_plot
from bench.cluster import running_cluster
from bench.measure import say
from bench.sampling import used_cpu_seconds
from bench.scaling_timeline import Change, as_json, buckets, window
from bench.settings import RESULTS_DIR
from punchclock_tools.cluster import balancer, cgroup, scale
from punchclock_tools.cluster.faults import Cluster
from punchclock_tools.cluster.layout import Layout
from punchclock_tools.load import lost_on, verify
from punchclock_tools.load_processes import ProcessLoad

# (offered load in instances' worth, instances): load rises past what the instances carry, an instance is
# added, and so on to three; then load falls and instances leave one step after it.
SCHEDULE: tuple[tuple[float, int], ...] = (
    (0.6, 1),
    (1.6, 1),
    (1.6, 2),
    (2.6, 2),
    (2.6, 3),
    (3.6, 3),
    (1.8, 3),
    (1.8, 2),
    (0.8, 2),
    (0.8, 1),
)
SETTLE_SECONDS = 3.0  # a step's first seconds (and a scale's) are left out of its plateau figures


@dataclass(frozen=True)
class ScalingSettings:
    # SCALING_CPU_QUOTA: cores each instance may use. Small: on two cores shared with three PostgreSQL nodes,
    # HAProxy, the load and other work, the cluster as a whole took well under a hundred POST/s, one instance at
    # 0.05 cores carried most of that, and three at 0.02 cores more than the cluster took.
    cpu_quota: float = 0.01
    per_instance: float = 15.0  # SCALING_PER_INSTANCE: POSTs/s the schedule counts as one instance's worth
    step_seconds: float = 20.0  # SCALING_STEP_SECONDS: length of each step (an instance starts in seconds)
    workers: int = 96  # SCALING_WORKERS: the load's concurrent clients
    processes: int = 4  # SCALING_PROCESSES: OS processes they are spread over (one Python process tops out)
    results_dir: Path = field(default=RESULTS_DIR)  # SCALING_RESULTS_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScalingSettings:
        base = cls()
        return cls(
            cpu_quota=float(env.get("SCALING_CPU_QUOTA", base.cpu_quota)),
            per_instance=float(env.get("SCALING_PER_INSTANCE", base.per_instance)),
            step_seconds=float(env.get("SCALING_STEP_SECONDS", base.step_seconds)),
            workers=int(env.get("SCALING_WORKERS", base.workers)),
            processes=int(env.get("SCALING_PROCESSES", base.processes)),
            results_dir=Path(env.get("SCALING_RESULTS_DIR", str(base.results_dir))),
        )


def instance_figures(layout: Layout, name: str) -> dict[str, Any]:
    """What HAProxy sent an instance and how often its quota held it back, read before it leaves."""
    app = layout.app(name)
    throttle = cgroup.stat(Path(app.cgroup)) if app.cgroup else {}
    periods = throttle.get("nr_periods", 0)
    return {
        "name": name,
        "sessions_served": balancer.served(layout, name),
        "throttled_periods_share": round(throttle.get("nr_throttled", 0) / periods, 3) if periods else None,
    }


def run_schedule(
    layout: Layout, settings: ScalingSettings, load: ProcessLoad
) -> tuple[list[Change], list[dict[str, Any]]]:
    """Apply each step at its time; returns the changes as they happened and the scale actions' timings."""
    changes: list[Change] = []
    actions: list[dict[str, Any]] = []
    instances: dict[str, dict[str, Any]] = {}
    origin = load.outcome.started
    for index, (worth, count) in enumerate(SCHEDULE):
        time.sleep(max(0.0, origin + index * settings.step_seconds - time.monotonic()))
        rate = worth * settings.per_instance
        load.set_rate(rate)
        changes.append(Change(round(time.monotonic() - origin, 2), rate, len(layout.apps), "rate"))
        if count != len(layout.apps):
            kind = "add" if count > len(layout.apps) else "remove"
            leaving = layout.apps[-1].name if kind == "remove" else None
            if leaving:
                instances[leaving] = instance_figures(layout, leaving)
            began = time.monotonic()
            names = scale.scale(layout, count)
            done = time.monotonic()
            changes.append(Change(round(done - origin, 2), rate, len(layout.apps), "scale"))
            actions.append(
                {
                    "at": round(began - origin, 2),
                    "kind": kind,
                    "to": count,
                    "names": names,
                    "seconds": round(done - began, 2),
                }
            )
        say(f"scaling: step {index + 1} of {len(SCHEDULE)}: {rate:.0f} POST/s offered, {count} instances")
    time.sleep(max(0.0, origin + len(SCHEDULE) * settings.step_seconds - time.monotonic()))
    for app in layout.apps:
        instances[app.name] = instance_figures(layout, app.name)
    return changes, [*actions, {"instances": sorted(instances.values(), key=lambda item: item["name"])}]


def plateaus(load: ProcessLoad, changes: list[Change], settings: ScalingSettings) -> list[dict[str, Any]]:
    """Each step's figures over its settled part: from SETTLE_SECONDS after its last change to its end."""
    found = []
    for index, (worth, count) in enumerate(SCHEDULE):
        start, end = index * settings.step_seconds, (index + 1) * settings.step_seconds
        last = max(c.at for c in changes if c.at < end)
        begin = max(start, last) + SETTLE_SECONDS
        figures = window(load.outcome, begin, end) if begin < end else {"start": begin, "end": end}
        found.append({"step": index + 1, "offered": worth * settings.per_instance, "instances": count, **figures})
    return found


def by_instances(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput of the saturated step of each instance count (offered more than that many carry), and its
    ratio to one instance's."""
    carried = {
        count: step
        for (worth, count), step in zip(SCHEDULE, steps, strict=True)
        if worth > count and "throughput" in step
    }
    one = carried[1]["throughput"] if 1 in carried else None
    return {
        str(count): {
            "throughput": step["throughput"],
            "p99_ms": step["p99_ms"],
            "ratio_to_one": round(step["throughput"] / one, 2) if one else None,
            "step": step["step"],
        }
        for count, step in sorted(carried.items())
    }


def measure(settings: ScalingSettings) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="punchclock-scaling-"))
    state.chmod(0o755)
    described = machine.describe()
    try:
        with running_cluster(state, apps=1, cpu_quota=settings.cpu_quota) as layout:
            cluster = Cluster(layout)
            total = len(SCHEDULE) * settings.step_seconds
            load = ProcessLoad(
                layout.app_url,
                processes=settings.processes,
                workers=settings.workers,
                rate=SCHEDULE[0][0] * settings.per_instance,
                max_seconds=total + 30,
                max_requests=10_000_000,
            )
            say(f"scaling: {len(SCHEDULE)} steps of {settings.step_seconds:g} s, quota {settings.cpu_quota:g} cores")
            # The load's CPU: its processes once joined, and this one, which paces them and merges their outcomes.
            before = used_cpu_seconds(include_self=True)
            with load.running():
                changes, actions = run_schedule(layout, settings, load)
            load_seconds = load.outcome.ended - load.outcome.started
            client_cores = (used_cpu_seconds(include_self=True) - before) / load_seconds
            verdict = verify(load.outcome, cluster.leader_dsn())
            lost = lost_on(load.outcome, {node.name: cluster.node_dsn(node.name) for node in layout.nodes})
            steps = plateaus(load, changes, settings)
            timeline = buckets(load.outcome, changes)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    instances = actions.pop()["instances"]
    return {
        "conditions": {
            "cpu_quota_cores": settings.cpu_quota,
            "per_instance_offered": settings.per_instance,
            "step_seconds": settings.step_seconds,
            "workers": settings.workers,
            "load_processes": settings.processes,
            "settle_seconds": SETTLE_SECONDS,
            "load_client_cores": round(client_cores, 2),  # the load's own CPU, all its processes
            "schedule": [{"offered": w * settings.per_instance, "instances": n} for w, n in SCHEDULE],
        },
        "machine": {**described, "loadavg_after": machine.loadavg()},
        "verdict": asdict(verdict),
        "lost_by_node": lost,
        "steps": steps,
        "by_instances": by_instances(steps),
        "scale_actions": actions,
        "instances": instances,
        "changes": as_json(changes),
        "timeline": as_json(timeline),
    }


def passed(report: dict[str, Any]) -> bool:
    verdict = report["verdict"]
    lost = [name for name, count in report["lost_by_node"].items() if count != 0]
    return (verdict["failed"], verdict["lost"], verdict["duplicates"], lost) == (0, 0, 0, [])


def main() -> int:
    settings = ScalingSettings.from_env(os.environ)
    report = measure(settings)
    settings.results_dir.mkdir(parents=True, exist_ok=True)
    target = settings.results_dir / "scaling.json"
    target.write_text(json.dumps(report, indent=2) + "\n")
    scaling_plot.plot(report, settings.results_dir / "scaling.png")
    carried = report["by_instances"].items()
    figures = ", ".join(f"{n}: {v['throughput']:.0f}/s ({v['ratio_to_one']}x)" for n, v in carried)
    say(f"scaling: {figures}; {report['verdict']}; lost by node {report['lost_by_node']}")
    say(f"wrote {target} and {settings.results_dir / 'scaling.png'}")
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
