"""Where a results file came from: when, on which commit, with a dirty tree or not.

The heavy targets call this once their run has passed::

    python -m punchclock_tools.docs.provenance bench results/bench.json --command "make bench"
    python -m punchclock_tools.docs.provenance ha .state/ha-report.jsonl --command "make test-ha"
    python -m punchclock_tools.docs.provenance restore-drill .state/restore-drill.json --command "make restore-drill"

It writes ``results/<name>.json``: the run's own JSON object (or, for JSON lines, ``{"records": [...]}``)
plus ``provenance``, and keeps the previous runs under ``earlier_runs`` (newest first, at most
``--keep``), so a page can quote a range over recorded runs rather than one run. ``make test`` never
calls it: its runs write to temporary directories.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from punchclock_tools.paths import REPO

RESULTS = REPO / "results"
KEEP_EARLIER = 9  # earlier runs kept beside the latest: enough for a range, small enough to read


def _git(*args: str, repo: Path) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def provenance(command: str, repo: Path = REPO, now: datetime | None = None) -> dict[str, Any]:
    """HEAD and the tree's state now; ``results/`` itself does not count as dirty (the run just wrote it)."""
    status = _git("status", "--porcelain", "--", ".", ":(exclude)results", repo=repo)
    changed = sorted(line[3:] for line in status.splitlines())
    return {
        "produced_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD", repo=repo).strip(),
        "dirty": bool(changed),
        "dirty_files": changed[:50],
        "command": command,
        "transcribed": False,
    }


def read_run(source: Path) -> dict[str, Any]:
    """A run's JSON object, or ``{"records": [...]}`` for a JSON-lines file; any old provenance is dropped."""
    text = source.read_text()
    if source.suffix == ".jsonl":
        return {"records": [json.loads(line) for line in text.splitlines() if line.strip()]}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a results file holds one JSON object")
    return {k: v for k, v in data.items() if k not in ("provenance", "earlier_runs")}


def record(
    name: str,
    source: Path,
    command: str,
    results: Path = RESULTS,
    keep: int = KEEP_EARLIER,
    repo: Path = REPO,
) -> Path:
    """Write ``results/<name>.json`` from ``source`` with provenance; the file it replaces becomes an earlier run."""
    target = results / f"{name}.json"
    run = read_run(source)
    earlier: list[dict[str, Any]] = []
    if target.exists():
        old = json.loads(target.read_text())
        if source.resolve() == target.resolve():
            old = {"earlier_runs": old.get("earlier_runs", [])}  # stamped in place: the file is this run
        else:
            earlier = [{k: v for k, v in old.items() if k != "earlier_runs"}]
        earlier += old.get("earlier_runs", [])
    document = {"provenance": provenance(command, repo), **run, "earlier_runs": earlier[:keep]}
    results.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=results, suffix=".tmp", delete=False) as handle:
        json.dump(document, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    os.replace(handle.name, target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m punchclock_tools.docs.provenance", description=__doc__.split("\n")[0]
    )
    parser.add_argument("name", help="the results file to write: results/<name>.json")
    parser.add_argument("source", type=Path, help="the run's report (.json, or .jsonl for JSON lines)")
    parser.add_argument("--command", required=True, help="the make target that produced it")
    parser.add_argument("--keep", type=int, default=KEEP_EARLIER, help="earlier runs to keep")
    args = parser.parse_args(argv)
    target = record(args.name, args.source, args.command, keep=args.keep)
    print(f"wrote {target.relative_to(REPO) if target.is_relative_to(REPO) else target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
