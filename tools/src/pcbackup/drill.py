"""The restore drill: prove that a point-in-time restore gives back exactly the acknowledged stamps.

Given a stanza with a backup, when the drill writes stamps (batch A), notes the primary's clock as the target,
writes more (batch B) and restores to the target in a scratch instance, then the restored table holds every
row that existed before the drill and every stamp of A, byte for byte, and not one stamp of B. Rows other
clients wrote meanwhile are allowed (a live cluster keeps working) but must match the source exactly; a
``strict`` drill on a private server allows none. The scratch instance never touches the cluster or the
repository (own port, archive_mode=off) and is removed afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pcbackup import archive
from pcbackup.pgbackrest import PgBackRest
from pcbackup.restore import restore
from pcbackup.sql import Row, stamps
from punchclock_tools.postgres import Database


class Writer(Protocol):
    def write(self, keys: list[str]) -> list[Row]: ...


@dataclass
class Verdict:
    missing: list[Row] = field(default_factory=list)  # acknowledged before the target, absent or altered
    after_target: list[Row] = field(default_factory=list)  # written after the target, yet restored
    unknown: list[Row] = field(default_factory=list)  # restored rows the source does not have (or differ)
    foreign: int = 0  # rows other clients committed between the snapshot and the target

    def ok(self, strict: bool) -> bool:
        return not (self.missing or self.after_target or self.unknown or (strict and self.foreign))


def compare(
    before: dict[int, Row],
    batch_a: list[Row],
    batch_b: list[Row],
    source_after: dict[int, Row],
    restored: dict[int, Row],
) -> Verdict:
    """Row-exact comparison of the restored table with what was acknowledged before and after the target."""
    verdict = Verdict()
    expected = {**before, **{row[0]: row for row in batch_a}}
    verdict.missing = sorted(row for id_, row in expected.items() if restored.get(id_) != row)
    b_keys = {row[1] for row in batch_b}
    verdict.after_target = sorted(row for row in restored.values() if row[1] in b_keys)
    extra = [row for id_, row in restored.items() if id_ not in expected and row[1] not in b_keys]
    verdict.unknown = sorted(row for row in extra if source_after.get(row[0]) != row)
    verdict.foreign = len(extra) - len(verdict.unknown)
    return verdict


@dataclass
class DrillReport:
    ok: bool
    source: str
    writer: str
    backup: dict[str, Any]
    target: str
    stamps_before_target: int
    stamps_after_target: int
    rows_restored: int
    rows_other_clients: int
    missing: list[Row]
    restored_after_target: list[Row]
    unknown: list[Row]
    backup_seconds: float
    restore_seconds: float
    recovery_seconds: float
    rto_seconds: float
    rpo_seconds: float
    rpo_unarchived_bytes: int
    archive_timeout_seconds: int
    finished_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Stopwatch:
    """Seconds between laps: each step of the drill reports its own duration."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def lap(self) -> float:
        now = time.monotonic()
        seconds, self.last = now - self.last, now
        return seconds


@dataclass
class Drill:
    br: PgBackRest
    primary: Callable[[], Database]  # the current primary (it may change during a failover)
    writer: Writer
    scratch: Path  # parent of the scratch instance's directory
    source: str = "cluster"
    writer_name: str = "api"
    strict: bool = False
    backup_type: str = "incr"
    count_before: int = 20
    count_after: int = 20
    settle_seconds: float = 0.05
    say: Callable[[str], None] = field(default=lambda line: None)  # one line per step as it ends

    def run(self) -> DrillReport:
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.br.ensure_stanza()
        step = Stopwatch()
        self.primary().query("CHECKPOINT")  # see sources.Source.checkpoint
        backup = self.br.backup(self.backup_type)
        backup_seconds = step.lap()
        self.say(
            f"drill: backup: {backup['type']} {backup['label']} ({backup['info']['size'] / 1e6:.1f} MB) "
            f"in {backup_seconds:.1f} s"
        )
        before = stamps(self.primary())
        batch_a = self.writer.write([f"restore-drill-{run_id}-a-{n:05d}" for n in range(self.count_before)])
        self.say(
            f"drill: writes: {len(batch_a)} stamps before the target through {self.writer_name} "
            f"({len(before):,} rows already there) in {step.lap():.1f} s"
        )
        # pgBackRest compares a time target with backup stop times in whole seconds: keep the target at least
        # one full second after the backup, or it finds no backup that ended before it.
        time.sleep(max(self.settle_seconds, backup["timestamp"]["stop"] + 1.2 - time.time()))
        target = self.primary().value(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
        )
        self.say(f"drill: target: {target} (the primary's clock, {step.lap():.1f} s after the writes)")
        time.sleep(self.settle_seconds)
        batch_b = self.writer.write([f"restore-drill-{run_id}-b-{n:05d}" for n in range(self.count_after)])
        self.say(f"drill: writes: {len(batch_b)} stamps after the target in {step.lap():.1f} s")
        lag = archive.measure(self.primary())
        self.br.check()  # switch WAL and wait until it is archived, so the archive reaches past the target
        self.say(
            f"drill: archive: RPO {lag.rpo_seconds:.1f} s ({lag.unarchived_bytes:,} bytes of WAL not yet "
            f"archived, archive_timeout {lag.archive_timeout_seconds} s); WAL switched and archived "
            f"in {step.lap():.1f} s"
        )
        source_after = stamps(self.primary())
        restored = restore(self.br, self.scratch / f"restore-drill-{run_id}", target=target)
        step.lap()  # the restore reports its own two figures
        self.say(
            f"drill: restore: {restored.restore_seconds:.1f} s, recovery {restored.recovery_seconds:.1f} s "
            f"(RTO {restored.rto_seconds:.1f} s), port {restored.instance.port}"
        )
        try:
            rows = stamps(restored.instance.db())
        finally:
            restored.instance.remove()
        verdict = compare(before, batch_a, batch_b, source_after, rows)
        self.say(
            f"drill: compare: {len(rows):,} rows, {len(verdict.missing)} missing, "
            f"{len(verdict.after_target) + len(verdict.unknown)} extra "
            f"({len(verdict.after_target)} from after the target, {len(verdict.unknown)} unknown), "
            f"{verdict.foreign} from other clients in {step.lap():.1f} s"
        )
        return DrillReport(
            ok=verdict.ok(self.strict),
            source=self.source,
            writer=self.writer_name,
            backup={key: backup.get(key) for key in ("label", "type")} | {"size": backup["info"]["size"]},
            target=target,
            stamps_before_target=len(batch_a),
            stamps_after_target=len(batch_b),
            rows_restored=len(rows),
            rows_other_clients=verdict.foreign,
            missing=verdict.missing,
            restored_after_target=verdict.after_target,
            unknown=verdict.unknown,
            backup_seconds=round(backup_seconds, 2),
            restore_seconds=round(restored.restore_seconds, 2),
            recovery_seconds=round(restored.recovery_seconds, 2),
            rto_seconds=round(restored.rto_seconds, 2),
            rpo_seconds=round(lag.rpo_seconds, 2),
            rpo_unarchived_bytes=lag.unarchived_bytes,
            archive_timeout_seconds=lag.archive_timeout_seconds,
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
