"""The restore drill: prove that the scheduled backups restore, across the whole retention window, row-exact.

Given a stanza whose repositories hold the scheduled chain (full, differentials, incrementals), the drill

1. runs ``pgbackrest verify`` on each repository and reads its verdict (2.45 exits 0 on damage);
2. writes canary rows (batch A) into ``pcbackup_canary``, notes the primary's clock as the target, writes batch
   B, and archives the WAL past the target (never a production stamp: the canary is the drill's own table);
3. restores the **newest scheduled backup** of each repository (through its differential/incremental chain)
   to that target, and requires every canary row up to batch A, byte for byte, no row of batch B, and the
   production stamps identical to the primary's (count and checksum of every id up to the snapshot);
4. restores the **oldest full backup** to a **mid-window target**: between two canary rows (heartbeats or
   earlier drills) halfway between that full backup and the newest backup, replaying the WAL in between, and
   requires exactly the canary rows committed before it;
5. reports RTO per restore and the RPO as a bound: archive_timeout plus the age of the archive's backlog.

Each scratch copy has its own port, archive_mode=off, and is removed when it passed (kept when it failed).
Free space is checked before each restore.
"""

from __future__ import annotations

import itertools
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pcbackup import archive
from pcbackup.errors import BackupError
from pcbackup.pgbackrest import PgBackRest
from pcbackup.restore import restore
from pcbackup.sql import Row, canary, max_stamp_id, stamps_digest
from punchclock_tools.postgres import Database

FREE_SPACE_MARGIN = 1.2  # a restore needs the database's size, plus room for the WAL it replays
MIN_GAP_SECONDS = 0.2  # a mid-window target sits between two canary rows at least this far apart


class Writer(Protocol):
    def write(self, keys: list[str]) -> list[Row]: ...


@dataclass
class Verdict:
    missing: list[Row] = field(default_factory=list)  # committed before the target, absent or altered
    after_target: list[Row] = field(default_factory=list)  # written after the target, yet restored
    unknown: list[Row] = field(default_factory=list)  # restored rows the source does not have (or differ)
    foreign: int = 0  # rows other writers (heartbeats) committed between batch A and the target

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


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pg_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def mid_window_target(rows: dict[int, Row], start: float, end: float) -> tuple[str, float] | None:
    """A target halfway through [start, end] (epoch seconds) between two consecutive canary rows: the midpoint of
    the pair nearest the window's middle, so exactly the rows up to the earlier one are expected."""
    ordered = sorted(rows.values(), key=lambda row: row[2])
    middle = (start + end) / 2
    best: tuple[float, datetime] | None = None
    for earlier, later in itertools.pairwise(ordered):
        t0, t1 = parse_utc(earlier[2]), parse_utc(later[2])
        if (t1 - t0).total_seconds() < MIN_GAP_SECONDS or t0.timestamp() < start + 1 or t1.timestamp() > end:
            continue
        target = t0 + (t1 - t0) / 2
        distance = abs(target.timestamp() - middle)
        if best is None or distance < best[0]:
            best = (distance, target)
    if best is None:
        return None
    target = best[1] - timedelta(microseconds=best[1].microsecond % 1000)  # whole milliseconds
    return pg_time(target), target.timestamp()


@dataclass
class RestoreCheck:
    """One restore of the drill and what it proved."""

    name: str  # newest-repo1, newest-repo2, oldest-full
    repo: int
    backup: str  # label
    backup_type: str
    target: str
    ok: bool
    canary_rows: int
    missing: list[Row]
    after_target: list[Row]
    unknown: list[Row]
    stamps_match: bool | None
    restore_seconds: float
    recovery_seconds: float
    rto_seconds: float
    replayed_seconds: float  # from the backup's end to the target: WAL the restore had to replay
    kept: str | None = None  # the scratch directory, when the check failed


@dataclass
class DrillReport:
    ok: bool
    source: str
    verify: dict[str, bool]
    restores: list[dict[str, Any]]
    window_start: str  # the oldest full backup's end: the oldest restorable moment
    window_days: float
    target: str
    stamps_before_target: int
    stamps_after_target: int
    rows_restored: int
    missing: list[Row]
    restored_after_target: list[Row]
    unknown: list[Row]
    restore_seconds: float
    recovery_seconds: float
    rto_seconds: float  # the slowest restore's
    rpo_seconds: float  # sampled: writes not in the archive at the measurement instant
    rpo_unarchived_bytes: int
    rpo_backlog_seconds: float  # age of the archive's backlog (0 when nothing waits but the open segment)
    rpo_push_seconds: float  # how long the switched segment took to reach every repository
    rpo_bound_seconds: float  # archive_timeout + max(backlog, push): what losing everything now could lose
    archive_timeout_seconds: int
    database_bytes: int
    stamps: int  # production stamps the restores were checked against (count up to the snapshot)
    wal_bytes_per_stamp: float | None  # group commit, measured on a private server only
    finished_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wal_bytes_per_stamp(db: Database, transactions: int = 200, batch: int = 512) -> float:
    """WAL written per stamp under group commit (``batch`` stamps a transaction, the service's PUNCHCLOCK_BATCH_MAX),
    measured on a scratch copy of the stamps table right after a checkpoint (so full-page writes count): the
    rate that sizes archive-push-queue-max. Private servers only: it writes a table of its own and drops it."""
    db.query("DROP TABLE IF EXISTS pcbackup_wal_probe; CREATE TABLE pcbackup_wal_probe (LIKE stamps INCLUDING ALL)")
    db.query("CHECKPOINT")
    start = db.value("SELECT pg_current_wal_insert_lsn()")
    row = "md5(random()::text) || md5(random()::text), clock_timestamp()"
    one = f"INSERT INTO pcbackup_wal_probe (key, recorded_at) SELECT {row} FROM generate_series(1, {batch});\n"
    db.query(one * transactions, timeout=3600)
    written = float(db.value(f"SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '{start}')"))
    db.query("DROP TABLE pcbackup_wal_probe")
    return written / (transactions * batch)


def check_free_space(scratch: Path, database_bytes: int) -> None:
    free = shutil.disk_usage(scratch).free
    need = int(database_bytes * FREE_SPACE_MARGIN)
    if free < need:
        raise BackupError(
            f"not enough free space in {scratch} for a restore: {free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed"
        )


@dataclass
class Drill:
    br: PgBackRest
    primary: Callable[[], Database]  # the current primary (it may change during a failover)
    writer: Writer  # writes canary rows
    scratch: Path  # parent of the scratch instances' directories
    source: str = "cluster"
    strict: bool = False  # no other canary writer (a private server): any foreign row fails
    repos: tuple[int, ...] = (1,)
    count_before: int = 20
    count_after: int = 20
    probe_wal: bool = False  # measure WAL bytes per stamp (private servers only: it writes a scratch table)
    settle_seconds: float = 0.05
    say: Callable[[str], None] = field(default=lambda line: None)  # one line per step as it ends

    def restore_and_check(
        self,
        name: str,
        repo: int,
        backup: dict[str, Any],
        target: str,
        target_epoch: float,
        expected: Callable[[dict[int, Row]], Verdict],
        stamps_up_to: int | None,
        source_digest: tuple[int, str] | None,
    ) -> tuple[RestoreCheck, dict[int, Row]]:
        check_free_space(self.scratch, int(backup["info"]["size"]))
        where = self.scratch / f"rd-{name}-{uuid.uuid4().hex[:4]}"  # short: the socket path has a 107-byte limit
        done = restore(self.br, where, target=target, backup_set=backup["label"], repo=repo)
        try:
            db = done.instance.db()
            rows = canary(db)
            digest = stamps_digest(db, stamps_up_to) if stamps_up_to is not None else None
        except BaseException:
            done.instance.stop()
            raise
        verdict = expected(rows)
        stamps_match = None if source_digest is None else digest == source_digest
        ok = verdict.ok(self.strict) and stamps_match is not False
        if ok:
            done.instance.remove()
        else:
            done.instance.stop()
        check = RestoreCheck(
            name=name,
            repo=repo,
            backup=backup["label"],
            backup_type=backup["type"],
            target=target,
            ok=ok,
            canary_rows=len(rows),
            missing=verdict.missing,
            after_target=verdict.after_target,
            unknown=verdict.unknown,
            stamps_match=stamps_match,
            restore_seconds=round(done.restore_seconds, 2),
            recovery_seconds=round(done.recovery_seconds, 2),
            rto_seconds=round(done.rto_seconds, 2),
            replayed_seconds=round(max(0.0, target_epoch - backup["timestamp"]["stop"]), 1),
            kept=None if ok else str(where),
        )
        self.say(
            f"drill: restore: {name} from repo{repo} {backup['type']} {backup['label']} to {target}: "
            f"{'PASS' if ok else 'FAIL'}, {len(rows)} canary rows, {len(verdict.missing)} missing, "
            f"{len(verdict.after_target) + len(verdict.unknown)} extra, stamps "
            f"{'identical' if stamps_match else 'not checked' if stamps_match is None else 'DIFFERENT'}; "
            f"RTO {done.rto_seconds:.1f} s (files {done.restore_seconds:.1f} s + recovery "
            f"{done.recovery_seconds:.1f} s, {check.replayed_seconds:.0f} s of WAL)"
            + ("" if ok else f"; kept in {where}")
        )
        return check, rows

    def run(self) -> DrillReport:
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        step = time.monotonic()
        verify = {}
        for repo in self.repos:
            verdict = self.br.verify(repo)
            verify[f"repo{repo}"] = verdict.ok
            self.say(
                f"drill: verify: repo{repo} {'intact' if verdict.ok else 'DAMAGED: ' + '; '.join(verdict.findings[:4])}"
            )
        chains = {repo: self.br.backups(repo) for repo in self.repos}
        for repo, chain in chains.items():
            if not chain:
                raise BackupError(f"repo{repo} holds no backup: the scheduled backups have not run yet")
        fulls = [b for b in chains[self.repos[0]] if b["type"] == "full"]
        oldest_full, newest = fulls[0], chains[self.repos[0]][-1]

        snapshot_max_id = max_stamp_id(self.primary())
        before = canary(self.primary())
        batch_a = self.writer.write([f"restore-drill-{run_id}-a-{n:05d}" for n in range(self.count_before)])
        newest_stop = max(chain[-1]["timestamp"]["stop"] for chain in chains.values())
        # pgBackRest compares time targets with backup stop times in whole seconds.
        time.sleep(max(self.settle_seconds, newest_stop + 1.2 - time.time()))
        target = self.primary().value(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
        )
        target_epoch = time.time()
        time.sleep(self.settle_seconds)
        batch_b = self.writer.write([f"restore-drill-{run_id}-b-{n:05d}" for n in range(self.count_after)])
        self.say(f"drill: writes: {len(batch_a)} canary rows, target {target}, {len(batch_b)} more")
        lag = archive.measure(self.primary())
        pushed = time.monotonic()
        self.br.check()  # switch WAL and wait until every repository has it
        push_seconds = time.monotonic() - pushed
        backlog = lag.seconds_since_archived if lag.ready_segments else 0.0
        bound = lag.archive_timeout_seconds + max(backlog, push_seconds)
        self.say(
            f"drill: archive: RPO bound {bound:.1f} s (archive_timeout {lag.archive_timeout_seconds} s + "
            f"max(backlog {backlog:.1f} s, push {push_seconds:.1f} s)); sampled {lag.rpo_seconds:.1f} s, "
            f"{lag.unarchived_bytes:,} bytes not yet archived"
        )
        source_after = canary(self.primary())
        source_digest = stamps_digest(self.primary(), snapshot_max_id)
        checks: list[RestoreCheck] = []
        latest_rows: dict[int, Row] = {}
        for repo in self.repos:
            check, rows = self.restore_and_check(
                f"newest-repo{repo}", repo, chains[repo][-1], target, target_epoch,
                lambda restored: compare(before, batch_a, batch_b, source_after, restored),
                snapshot_max_id, source_digest,
            )  # fmt: skip
            checks.append(check)
            latest_rows = latest_rows or rows
        window_end = newest["timestamp"]["start"]
        if oldest_full["label"] == newest["label"]:
            window_end = target_epoch
        mid = mid_window_target(source_after, oldest_full["timestamp"]["stop"], window_end)
        if mid is None:
            raise BackupError(
                "no two canary rows lie between the oldest full backup and the newest backup: run "
                "`pcbackup metrics --canary` every minute (pcbackup-metrics.timer does) so the window has rows"
            )
        mid_target, mid_epoch = mid
        expected_mid = {id_: row for id_, row in source_after.items() if parse_utc(row[2]).timestamp() < mid_epoch}
        later = [row for row in source_after.values() if parse_utc(row[2]).timestamp() >= mid_epoch]
        check, _ = self.restore_and_check(
            "oldest-full", self.repos[0], oldest_full, mid_target, mid_epoch,
            lambda restored: compare(expected_mid, [], later, source_after, restored),
            None, None,
        )  # fmt: skip
        checks.append(check)
        slowest = max(checks, key=lambda c: c.rto_seconds)
        newest_check = checks[0]
        ok = all(verify.values()) and all(c.ok for c in checks)
        per_stamp = wal_bytes_per_stamp(self.primary()) if self.probe_wal else None
        if per_stamp is not None:
            self.say(f"drill: wal: {per_stamp:.0f} bytes of WAL per stamp under group commit")
        self.say(f"drill: done in {time.monotonic() - step:.1f} s")
        return DrillReport(
            ok=ok,
            source=self.source,
            verify=verify,
            restores=[asdict(c) for c in checks],
            window_start=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(oldest_full["timestamp"]["stop"])),
            window_days=round((time.time() - oldest_full["timestamp"]["stop"]) / 86400, 3),
            target=target,
            stamps_before_target=len(batch_a),
            stamps_after_target=len(batch_b),
            rows_restored=newest_check.canary_rows,
            missing=newest_check.missing,
            restored_after_target=newest_check.after_target,
            unknown=newest_check.unknown,
            restore_seconds=slowest.restore_seconds,
            recovery_seconds=slowest.recovery_seconds,
            rto_seconds=slowest.rto_seconds,
            rpo_seconds=round(lag.rpo_seconds, 2),
            rpo_unarchived_bytes=lag.unarchived_bytes,
            rpo_backlog_seconds=round(backlog, 2),
            rpo_push_seconds=round(push_seconds, 2),
            rpo_bound_seconds=round(bound, 2),
            archive_timeout_seconds=lag.archive_timeout_seconds,
            database_bytes=int(newest["info"]["size"]),
            stamps=source_digest[0],
            wal_bytes_per_stamp=None if per_stamp is None else round(per_stamp, 1),
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
