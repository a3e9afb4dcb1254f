"""What the benchmark reads of CPU time used: reaped children's, and this process's own on request."""

from __future__ import annotations

import subprocess
import sys

from bench.sampling import used_cpu_seconds


def test_a_reaped_child_adds_its_cpu_time() -> None:
    """Given a child that computes and is waited for, then the children's CPU time has grown."""
    before = used_cpu_seconds()
    subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
    assert used_cpu_seconds() > before


def test_including_this_process_adds_its_own_cpu_time() -> None:
    """Given this process's CPU time (an interpreter that imported pytest has used some), then including it
    gives more than the children's alone."""
    children = used_cpu_seconds()
    assert used_cpu_seconds(include_self=True) > children
