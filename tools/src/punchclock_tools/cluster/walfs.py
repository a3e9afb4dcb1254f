"""A node's pg_wal on a small filesystem of its own, for the WAL-disk-full scenario; and back again.

The small filesystem is a tmpfs of a fixed size mounted at ``<node dir>/walfs`` (no loop device, no mkfs,
nothing left on the host's disk), with the node's pg_wal moved onto it and a symlink in its place, the layout
``initdb --waldir`` gives a real server. A node is moved only while its Patroni (and so its PostgreSQL) is
stopped. "Full" is a filler file taking all but a few kilobytes of it, as another writer filling a shared
WAL volume would leave it; ``free`` deletes the filler.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import threading
from pathlib import Path

import asyncpg

from punchclock_tools.cluster.layout import Layout

FILLER = "filler"


def mount_point(layout: Layout, name: str) -> Path:
    return Path(layout.node(name).data_dir).parent / "walfs"


def wal_dir(layout: Layout, name: str) -> Path:
    return Path(layout.node(name).data_dir) / "pg_wal"


def _du_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def is_mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def move_onto_small_fs(layout: Layout, name: str, spare_mb: int = 256) -> Path:
    """Mount a tmpfs of (pg_wal's size + ``spare_mb``) and move the stopped node's pg_wal onto it."""
    wal, point = wal_dir(layout, name), mount_point(layout, name)
    if wal.is_symlink():
        return point
    owner = pwd.getpwnam("postgres")
    size_mb = _du_bytes(wal) // 2**20 + spare_mb
    point.mkdir(exist_ok=True)
    options = f"size={size_mb}m,mode=0700,uid={owner.pw_uid},gid={owner.pw_gid}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "punchclock-walfs", str(point)], check=True, timeout=30)
    subprocess.run(["cp", "-a", str(wal), str(point / "pg_wal")], check=True, timeout=300)
    shutil.rmtree(wal)
    wal.symlink_to(point / "pg_wal")
    os.lchown(wal, owner.pw_uid, owner.pw_gid)
    return point


def move_back(layout: Layout, name: str) -> None:
    """The stopped node's pg_wal back into its data directory, and the tmpfs unmounted (whatever is left of
    either: a node re-cloned meanwhile has a plain pg_wal already)."""
    wal, point = wal_dir(layout, name), mount_point(layout, name)
    if wal.is_symlink():
        staged = wal.with_name("pg_wal.moving")
        shutil.rmtree(staged, ignore_errors=True)
        subprocess.run(["cp", "-a", str(point / "pg_wal"), str(staged)], check=True, timeout=300)
        wal.unlink()
        staged.rename(wal)
    unmount(point)


def unmount(point: Path) -> None:
    if is_mounted(point):
        subprocess.run(["umount", "--lazy", str(point)], check=False, timeout=30)
    with contextlib.suppress(OSError):
        point.rmdir()


def unmount_all(layout: Layout) -> None:
    """Every small WAL filesystem of the cluster unmounted: the last resort before its state is deleted."""
    for node in layout.nodes:
        unmount(mount_point(layout, node.name))


def fill(layout: Layout, name: str, leave: int = 64 * 1024) -> int:
    """Take all but ``leave`` bytes of the node's WAL filesystem with a filler file; return its size."""
    point = mount_point(layout, name)
    filler = point / FILLER
    with open(filler, "ab") as handle:
        for _ in range(20):  # PostgreSQL may take space between statvfs and the allocation: try smaller
            stat = os.statvfs(point)
            free = stat.f_bavail * stat.f_frsize - leave
            if free <= 0:
                break
            try:
                os.posix_fallocate(handle.fileno(), os.fstat(handle.fileno()).st_size, free)
            except OSError:
                leave *= 2
    return filler.stat().st_size


def free(layout: Layout, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (mount_point(layout, name) / FILLER).unlink()


def free_bytes(layout: Layout, name: str) -> int:
    stat = os.statvfs(mount_point(layout, name))
    return stat.f_bavail * stat.f_frsize


def switch_segments(dsn: str, stop: threading.Event, interval: float = 0.2) -> int:
    """``pg_switch_wal()`` on the node every ``interval`` until ``stop``: a busy leader's rate of new WAL segments,
    so a full WAL filesystem shows within seconds rather than after hours of stamps. Returns how many switched."""

    async def run() -> int:
        switched, conn = 0, None
        while not stop.is_set():
            try:
                conn = conn or await asyncpg.connect(dsn, timeout=2)
                await conn.fetchval("SELECT pg_switch_wal()", timeout=2)
                switched += 1
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if conn is not None:
                    conn.terminate()
                conn = None
            await asyncio.sleep(interval)
        if conn is not None:
            conn.terminate()
        return switched

    return asyncio.run(run())
