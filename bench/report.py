"""The results: headline keys and targets for ``bench.json``, and the table printed at the end of a run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.model import Measurement

# The keys every bench.json carries (docs/performance.md and the issue tracker quote them).
HEADLINE_KEYS = (
    "post_app_rps",
    "post_app_p99_ms",
    "per_request_commit_rps",
    "pgbench_commit_tps",
    "healthz_rps",
    "sqlite_post_app_rps",
    "ratio_vs_pgbench",
    "ratio_vs_healthz",
    "rows_match",
    "machine",
)

# (key in bench.json, comparison, bound, what it means)
TARGETS: list[tuple[str, str, float, str]] = [
    ("ratio_vs_pgbench", ">=", 1.0, "more durable stamps/s than PostgreSQL commits one-row transactions"),
    ("ratio_vs_healthz", ">=", 0.5, "a durable stamp costs less than the HTTP handling itself"),
    ("post_app_p99_ms", "<=", 10.0, "p99 of POST /app at the headline concurrency"),
    ("p99_vs_pgbench", "<=", 1.0, "POST /app's p99 no worse than pgbench's own one-row commits"),
    (
        "cluster_ratio_vs_pgbench",
        ">=",
        1.0,
        "through the balancer, with the synchronous standby, more stamps/s "
        "than pgbench commits through HAProxy's write port",
    ),
    ("server_rss_mb", "<=", 100.0, "peak RSS of any server process under load"),
]


def _find(runs: list[Measurement], name: str) -> Measurement | None:
    return next((m for m in runs if m.name == name), None)


def _rps(m: Measurement | None) -> float | None:
    return round(m.load.rps, 1) if m else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def build(
    runs: list[Measurement],
    connections: int,
    scan: list[dict[str, Any]],
    machine: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The JSON document written to ``bench.json``."""
    post = _find(runs, f"post_app_group_c{connections}")
    pgbench = _find(runs, "pgbench_commit")
    healthz = _find(runs, "healthz")
    cluster_pg = _find(runs, "cluster_pgbench_commit")
    balanced = _find(runs, "cluster_post_app_balancer")
    direct = _find(runs, "cluster_post_app_direct")
    checked = [m.rows_match for m in runs if m.rows_match is not None]
    rss = [m.rss_mb for m in runs if m.rss_mb is not None]
    results: dict[str, Any] = {
        "post_app_rps": _rps(post),
        "post_app_p99_ms": round(post.load.p99_ms, 3) if post else None,
        "per_request_commit_rps": _rps(_find(runs, "post_app_per_request")),
        "pgbench_commit_tps": _rps(pgbench),
        "healthz_rps": _rps(healthz),
        "sqlite_post_app_rps": _rps(_find(runs, "post_app_sqlite")),
        "post_app_no_access_log_rps": _rps(_find(runs, "post_app_group_no_access_log")),
        "post_app_2_workers_rps": _rps(_find(runs, "post_app_group_2_workers")),
        "pgbench_one_client_tps": _rps(_find(runs, "pgbench_commit_c1")),
        "ratio_vs_pgbench": _ratio(_rps(post), _rps(pgbench)),
        "ratio_vs_healthz": _ratio(_rps(post), _rps(healthz)),
        "p99_vs_pgbench": _ratio(post.load.p99_ms, pgbench.load.p99_ms) if post and pgbench else None,
        "cluster_pgbench_commit_tps": _rps(cluster_pg),
        "cluster_post_app_rps": _rps(balanced),
        "cluster_post_app_direct_rps": _rps(direct),
        "cluster_ratio_vs_pgbench": _ratio(_rps(balanced), _rps(cluster_pg)),
        "cluster_direct_ratio_vs_pgbench": _ratio(_rps(direct), _rps(cluster_pg)),
        "server_rss_mb": max(rss) if rss else None,
        "rows_match": bool(checked) and all(checked),
        "connections": connections,
        "machine": machine,
        "settings": settings,
        "runs": [m.as_dict() for m in runs],
        "sweep": [m.as_dict() for m in runs if m.name.startswith("post_app_group_c")],
        "scan": scan,
    }
    results["targets"] = {
        key: {
            "bound": f"{op} {bound}",
            "value": results[key],
            "met": _met(results[key], op, bound),
            "why": why,
        }
        for key, op, bound, why in TARGETS
    }
    return results


def _met(value: float | None, op: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value >= bound if op == ">=" else value <= bound


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)


def _cell(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for run in results["runs"]:
        check = "-" if run["rows_match"] is None else ("ok" if run["rows_match"] else "MISMATCH")
        batch = "-" if run.get("mean_batch") is None else f"{run['mean_batch']:.1f}/{run['slow_commits']}"
        if run["rows_new"] is not None and run["rows_new"] != run["ok"]:
            check += f" ({run['rows_new']} rows, {run['ok']} 2xx, {run.get('unfinished', 0)} unanswered)"
        rows.append(
            [
                run["label"],
                str(run["connections"]),
                _cell(run["rps"]),
                _cell(run["p50_ms"], "{:.2f}"),
                _cell(run["p99_ms"], "{:.2f}"),
                _cell(run["p999_ms"], "{:.2f}"),
                str(run["non_2xx"]),
                str(run["socket_errors"]),
                _cell(run["rss_mb"], "{:.0f}"),
                "/".join(
                    _cell(run.get(key), "{:.0f}")
                    for key in ("server_cpu_us_per_stamp", "db_cpu_us_per_stamp", "balancer_cpu_us_per_stamp")
                ),
                "/".join(
                    _cell(run.get(key), "{:.1f}")
                    for key in ("server_cores", "db_cores", "client_cores", "machine_cores")
                ),
                batch,
                check,
            ]
        )
    return rows


HEADER = [
    "run",
    "conns",
    "req/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "non-2xx",
    "sock err",
    "RSS MB",
    "CPU µs/stamp srv/db/lb",
    "cores srv/db/load/all",
    "batch/slow",
    "rows",
]


SCAN_HEADER = ["GET /app", "rows in table", "page starts after", "req/s", "p50 ms", "p99 ms", "non-2xx"]


def scan_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"{point['page']} page of {point['limit']}",
            f"{point['rows']:,}",
            f"{point['depth']:,} rows",
            _cell(point["rps"]),
            _cell(point["p50_ms"], "{:.2f}"),
            _cell(point["p99_ms"], "{:.2f}"),
            str(point["non_2xx"]),
        ]
        for point in results.get("scan", [])
    ]


def _aligned(header: list[str], body: list[list[str]]) -> list[str]:
    rows = [header, *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def text_table(results: dict[str, Any]) -> str:
    """The results as aligned plain-text tables, then ratios and targets."""
    lines = _aligned(HEADER, table_rows(results))
    if results.get("scan"):
        lines += ["", *_aligned(SCAN_HEADER, scan_rows(results))]
    lines.append("")
    lines.extend(_verdicts(results))
    return "\n".join(lines)


def markdown_table(results: dict[str, Any]) -> str:
    """The same table in Markdown, for docs/performance.md."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] + ["---:"] * (len(HEADER) - 1)) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in table_rows(results))
    if results.get("scan"):
        lines += ["", "| " + " | ".join(SCAN_HEADER) + " |", "|" + "|".join(["---"] + ["---:"] * 6) + "|"]
        lines.extend("| " + " | ".join(row) + " |" for row in scan_rows(results))
    lines.append("")
    lines.extend(f"- {line}" for line in _verdicts(results))
    return "\n".join(lines)


def _verdicts(results: dict[str, Any]) -> list[str]:
    lines = [f"rows_match: {results['rows_match']} (every 2xx left exactly one row, no row without a 2xx)"]
    for key, target in results["targets"].items():
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        lines.append(f"{key} = {target['value']} (target {target['bound']}): {verdict}")
    return lines


def main() -> int:
    """``python -m bench.report [--markdown] [bench.json]``: print a saved result again."""
    import sys

    args = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    path = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "results" / "bench.json"
    results = json.loads(path.read_text())
    print(markdown_table(results) if "--markdown" in sys.argv else text_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
