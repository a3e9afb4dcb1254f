"""Talk to the cluster's supervisord: start it, ask for process states, stop everything it runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from punchclock_tools.cluster import patroni
from punchclock_tools.cluster.layout import Layout


@dataclass
class Process:
    name: str
    state: str
    pid: int | None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; it only waits to be reaped by its parent.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def supervisord_pid(layout: Layout) -> int | None:
    try:
        pid = int(Path(layout.supervisor["pidfile"]).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def ctl(layout: Layout, *args: str, check: bool = True, timeout: float = 120) -> str:
    """Run ``supervisorctl`` against this cluster's supervisord and return its output."""
    result = subprocess.run(
        ["supervisorctl", "-c", layout.supervisor["config"], *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    # supervisorctl exits non-zero when any listed process is not RUNNING; callers decide what matters.
    if check and result.returncode not in (0, 3):
        raise RuntimeError(f"supervisorctl {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout


@contextlib.contextmanager
def stopping(layout: Layout, program: str, timeout: float = 10) -> Iterator[None]:
    """Inside the block supervisord is stopping ``program`` (it has sent the stop signal and will not restart
    it); the block ends the processes itself, and the stop is waited for on leaving it."""
    command = ["supervisorctl", "-c", layout.supervisor["config"], "stop", program]
    stop = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while processes(layout).get(program.split(":")[-1], Process(program, "", None)).state != "STOPPING":
            if stop.poll() is not None or time.monotonic() > deadline:
                break  # already stopped, or supervisord never said STOPPING: the block runs either way
            time.sleep(0.05)
        yield
    finally:
        try:
            stop.wait(timeout=120)
        except subprocess.TimeoutExpired:
            stop.kill()
            stop.wait()


def start_daemon(layout: Layout, timeout: float = 20) -> int:
    """Start supervisord (it daemonizes) and wait until it answers on its socket."""
    if pid := supervisord_pid(layout):
        return pid
    subprocess.run(["supervisord", "-c", layout.supervisor["config"]], check=True, timeout=30)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = supervisord_pid(layout)
        if pid and "refused" not in ctl(layout, "pid", check=False) and Path(layout.supervisor["socket"]).exists():
            return pid
        time.sleep(0.2)
    raise RuntimeError("supervisord did not come up; see " + layout.supervisor["log"])


def processes(layout: Layout) -> dict[str, Process]:
    """Every program supervisord knows, by name (group prefixes such as ``apps:`` removed)."""
    result: dict[str, Process] = {}
    for line in ctl(layout, "status", check=False).splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        name = parts[0].split(":")[-1]
        description = parts[2] if len(parts) > 2 else ""
        pid = None
        if description.startswith("pid "):
            pid = int(description.split()[1].rstrip(","))
        result[name] = Process(name, parts[1], pid)
    return result


def program(layout: Layout, name: str) -> str:
    """The supervisor name of a program. Every program is a group of its own; a supervisord started by an
    earlier release still runs the instances in an ``apps`` group, and is asked for them by that name."""
    if any(app.name == name for app in layout.apps) and f"apps:{name}" in ctl(layout, "status", check=False):
        return f"apps:{name}"
    return name


def postmaster_pid(data_dir: str) -> int | None:
    try:
        pid = int(Path(data_dir, "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _pid_alive(pid) else None


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = [pid for pid in pids if _pid_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _pid_alive(pid)]
    return alive


def shutdown(layout: Layout, timeout: float = 90) -> list[str]:
    """Stop every program and supervisord, then make sure no process of the cluster is left.

    Returns one sentence per process that had to be killed. Patroni stops its PostgreSQL on SIGTERM, but a
    postmaster whose Patroni was killed outlives it, so postmasters are checked by their pid files.
    """
    notes: list[str] = []
    daemon = supervisord_pid(layout)
    children = [proc.pid for proc in processes(layout).values() if proc.pid] if daemon else []
    if daemon:
        # Apps first (they drain), then the balancer, PostgreSQL nodes, and etcd last.
        apps = [program(layout, app.name) for app in layout.apps]
        if apps:
            ctl(layout, "stop", *apps, check=False, timeout=timeout)
        ctl(layout, "stop", "haproxy", check=False, timeout=timeout)
        # Replicas before the leader, so stopping does not set off a failover (and a timeline fork).
        ctl(layout, "stop", *_leader_last(layout), check=False, timeout=timeout)
        ctl(layout, "shutdown", check=False, timeout=timeout)
        if wait_gone([daemon], timeout):
            notes.append(f"supervisord {daemon} did not exit; killed it")
            os.kill(daemon, signal.SIGKILL)
    postmasters = [pid for node in layout.nodes if (pid := postmaster_pid(node.data_dir))]
    for pid in postmasters:
        notes.append(f"postmaster {pid} outlived its Patroni; stopped it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
    for pid in wait_gone(children + postmasters, 15):
        notes.append(f"process {pid} did not exit; killed it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_gone(children + postmasters, 5)
    # Anything else started from the state directory, e.g. pgBackRest's asynchronous archive-push.
    stragglers = _started_from(layout.state_dir)
    for pid in wait_gone(stragglers, 30):
        notes.append(f"process {pid} ({_cmdline(pid)[:80]}) still ran after the cluster stopped; killed it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_gone(stragglers, 5)
    return notes


def _leader_last(layout: Layout) -> list[str]:
    leader = patroni.leader(layout)
    return sorted((node.name for node in layout.nodes), key=lambda name: name == leader)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _started_from(state_dir: str) -> list[int]:
    """Live processes whose command line names the state directory, other than this one and its parents."""
    mine = _ancestors()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in mine and state_dir in _cmdline(int(entry.name)):
            found.append(int(entry.name))
    return [pid for pid in found if _pid_alive(pid)]
