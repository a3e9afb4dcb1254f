"""The PNG plot: group-commit throughput and p99 against concurrency, beside the ceilings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def plot(results: dict[str, Any], path: Path) -> None:
    """Two panels sharing the x axis (connections, log scale): req/s and p99 latency."""
    sweep = sorted(results["sweep"], key=lambda run: run["connections"])
    if not sweep:
        return
    conns = [run["connections"] for run in sweep]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    top.plot(conns, [run["rps"] for run in sweep], "o-", label="POST /app, group commit")
    for key, label, style in (
        ("pgbench_commit_tps", "pgbench one-row commits", "--"),
        ("healthz_rps", "GET /healthz (HTTP ceiling)", ":"),
    ):
        if results.get(key):
            top.axhline(results[key], linestyle=style, color="grey", label=f"{label}: {results[key]:,.0f}/s")
    for key, label, marker in (
        ("per_request_commit_rps", "POST /app, per-request commit", "s"),
        ("sqlite_post_app_rps", "POST /app, SQLite", "^"),
        ("post_app_2_workers_rps", "POST /app, group commit, 2 workers", "D"),
    ):
        if results.get(key):
            top.plot([results["connections"]], [results[key]], marker, label=label)
    top.set_ylabel("requests per second")
    top.set_ylim(bottom=0)
    top.legend(fontsize="small", loc="best")
    top.grid(alpha=0.3)
    bottom.plot(conns, [run["p99_ms"] for run in sweep], "o-", label="POST /app p99, group commit")
    bottom.plot(conns, [run["p50_ms"] for run in sweep], ".--", label="p50")
    bottom.axhline(10, color="red", linestyle=":", label="p99 target at 64 connections: 10 ms")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency, ms")
    bottom.set_xlabel("concurrent connections")
    bottom.set_xscale("log", base=2)
    bottom.set_xticks(conns, [str(c) for c in conns])
    bottom.legend(fontsize="small", loc="best")
    bottom.grid(alpha=0.3, which="both")
    machine = results["machine"]
    fig.suptitle(
        f"punchclock POST /app on {machine['cores']} cores ({machine['git_commit']}); "
        f"load avg before {machine['loadavg_before'][0]}",
        fontsize="medium",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
