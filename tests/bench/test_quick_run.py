"""``python -m bench`` for real, in its quick form: it runs, every 2xx left one row, nothing is left behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.report import HEADLINE_KEYS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make test installs it)"),
]

# A few seconds of load per run, the smallest sweep and scan: proves the harness works, measures nothing.
QUICK = {
    "BENCH_SECONDS": "1",
    "BENCH_WARMUP_SECONDS": "0",
    "BENCH_CONNECTIONS": "8",
    "BENCH_SWEEP": "1",
    "BENCH_SCAN_ROWS": "2000",
    "BENCH_SCAN_SECONDS": "1",
    "BENCH_TAIL_SECONDS": "1",
    "BENCH_EXTRA_RUNS": "0",
    # The three-node cluster runs PostgreSQL as the postgres user, which needs root (make test runs as root).
    "BENCH_CLUSTER": "1" if os.geteuid() == 0 else "0",
}


@pytest.fixture
def bench_tmp() -> Iterator[Path]:
    """The benchmark's TMPDIR: outside pytest's private (0700) tree, so the postgres user can reach it."""
    path = Path(tempfile.mkdtemp(prefix="punchclock-bench-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bench_env(tmp_path: Path, bench_tmp: Path, marker: str) -> dict[str, str]:
    """The quick knobs, results under ``tmp_path``, temporary files in ``bench_tmp``, and a marker every
    child process inherits."""
    return {
        **os.environ,
        **QUICK,
        "BENCH_RESULTS_DIR": str(tmp_path / "results"),
        "TMPDIR": str(bench_tmp),
        "BENCH_TEST_MARKER": marker,
    }


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries ``marker``: every process the benchmark started, and their children."""
    found = []
    needle = f"BENCH_TEST_MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_quick_run_records_every_stamp_and_writes_results(tmp_path: Path, bench_tmp: Path) -> None:
    """Given the quick knobs, when the benchmark runs (the standalone server, then the three-node cluster),
    then it exits 0 with rows_match true in every run, writes the headline keys and the plot, said "run k of
    N" as each run started (with the time left) and ended (with its figures), k counting to N, every run in
    bench.json plus one per scan size, and leaves nothing behind."""
    marker = uuid.uuid4().hex
    run = subprocess.run(
        [sys.executable, "-m", "bench"],
        cwd=ROOT,
        env=bench_env(tmp_path, bench_tmp, marker),
        capture_output=True,
        text=True,
        timeout=480,  # the cluster's bring-up and tear-down take most of it
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((tmp_path / "results" / "bench.json").read_text())
    assert (set(HEADLINE_KEYS) - results.keys(), results["rows_match"]) == (set(), True)
    assert (tmp_path / "results" / "bench-concurrency.png").stat().st_size > 0
    total = len(results["runs"]) + len({point["rows"] for point in results["scan"]})
    expected = [(str(k), str(total)) for k in range(1, total + 1)]
    starts = re.findall(r"^bench: run (\d+) of (\d+): .* left\)$", run.stderr, re.MULTILINE)
    ends = re.findall(r"^bench: run (\d+) of (\d+) took \d+ s: .+/s", run.stderr, re.MULTILINE)
    assert (starts, ends) == (expected, expected), run.stderr
    assert (processes_with(marker), list(bench_tmp.iterdir())) == ([], [])


def test_interrupted_run_stops_everything_and_cleans_up(tmp_path: Path, bench_tmp: Path) -> None:
    """Given a running benchmark, when it gets SIGINT mid-run, then it exits 130 with every process it
    started stopped and its temporary directory removed."""
    marker = uuid.uuid4().hex
    env = {**bench_env(tmp_path, bench_tmp, marker), "BENCH_SECONDS": "3"}
    with subprocess.Popen(
        [sys.executable, "-m", "bench"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stderr is not None
            for line in proc.stderr:  # wait until the service is under load
                if line.startswith("bench: run ") and "GET /healthz" in line:
                    break
            time.sleep(1)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
    assert (processes_with(marker), list(bench_tmp.iterdir())) == ([], [])
