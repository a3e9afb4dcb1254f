"""The scaling run's PNG: offered load and throughput, instances, and p99 over time, one panel each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def plot(report: dict[str, Any], path: Path) -> None:
    """Three panels sharing the time axis; each scale action is a vertical line across all of them."""
    line = report["timeline"]
    if not line:
        return
    size = line[1]["start"] - line[0]["start"] if len(line) > 1 else 1.0
    at = [bucket["start"] + size / 2 for bucket in line]
    fig, (load, count, latency) = plt.subplots(
        3, 1, figsize=(10, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 2]}
    )
    load.step(at, [b["offered"] for b in line], where="mid", color="grey", linestyle="--", label="offered (schedule)")
    load.plot(at, [b["sent"] for b in line], color="tab:orange", alpha=0.7, label="sent (closed-loop clients)")
    load.plot(at, [b["throughput"] for b in line], color="tab:green", linewidth=2, label="throughput (201/s)")
    for step in (step for step in report["steps"] if "throughput" in step):  # a step too short has none
        load.hlines(step["throughput"], step["start"], step["end"], color="tab:green", linewidth=4, alpha=0.35)
    load.set_ylabel("POST /app per second")
    load.set_ylim(bottom=0)
    load.legend(fontsize="small", loc="upper left")
    count.step(at, [b["instances"] for b in line], where="mid", color="tab:blue", linewidth=2)
    count.set_ylabel("instances")
    count.set_ylim(0, max(b["instances"] for b in line) + 0.5)
    count.set_yticks(range(max(b["instances"] for b in line) + 1))
    latency.plot(at, [b["p99_ms"] for b in line], color="tab:red", label="p99")
    latency.set_yscale("log")
    latency.set_ylabel("p99, ms")
    latency.set_xlabel("seconds from the start of the load")
    for action in report["scale_actions"]:  # from the call to the instance serving (or gone)
        for axes in (load, count, latency):
            axes.axvspan(action["at"], action["at"] + action["seconds"], color="tab:blue", alpha=0.12, linewidth=0)
    for axes in (load, count, latency):
        axes.grid(alpha=0.3)
    verdict = report["verdict"]
    conditions = report["conditions"]
    fig.suptitle(
        f"punchclock scaling 1-2-3-2-1 instances under load, each instance at {conditions['cpu_quota_cores']:g} "
        f"cores ({report['machine']['git_commit']})\nacknowledged {verdict['acknowledged']:,}, failed "
        f"{verdict['failed']}, lost {verdict['lost']}, duplicates {verdict['duplicates']}; "
        "shaded: a scale action in progress",
        fontsize="medium",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
