"""Each instance's cgroup: its name, its quota in the kernel's units, and the command that enters it."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from punchclock_tools.cluster import cgroup


def test_names_are_unique_to_the_cluster_and_the_instance() -> None:
    """Given two state directories, then the same instance name gets a different cgroup in each, and each
    instance of one cluster a cgroup of its own under the cpu controller."""
    a1, a2 = cgroup.path_for("/srv/a", "app1"), cgroup.path_for("/srv/a", "app2")
    b1 = cgroup.path_for("/srv/b", "app1")
    assert len({a1, a2, b1}) == 3
    assert {a1.parent, b1.parent} == {cgroup.ROOT}
    assert (a1.name.startswith("punchclock-"), a1.name.endswith("-app1")) == (True, True)


def test_quota_is_written_as_microseconds_per_period(tmp_path: Path) -> None:
    """Given a quarter of a core, then the cgroup's period is the kernel's 100 ms and its quota 25 ms of it,
    and reading it back gives the cores."""
    group = tmp_path / "g"
    group.mkdir()
    cgroup.set_quota(group, 0.25)
    assert ((group / "cpu.cfs_period_us").read_text(), (group / "cpu.cfs_quota_us").read_text()) == ("100000", "25000")
    assert cgroup.quota(group) == 0.25


def test_the_command_writes_its_own_pid_then_execs_the_program(tmp_path: Path) -> None:
    """Given the command for a cgroup, when a shell runs it, then the pid written to cgroup.procs is the
    program's own (exec replaced the shell), so supervisord signals the server itself."""
    line = cgroup.command("sh -c 'echo $$'", tmp_path)
    out = subprocess.run(shlex.split(line), capture_output=True, text=True, check=True, timeout=10)
    assert (tmp_path / "cgroup.procs").read_text().strip() == out.stdout.strip()
    assert cgroup.command("punchclock serve", None) == "punchclock serve"
