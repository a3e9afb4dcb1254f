"""pcbackup's command line: backup, restore, discard, release, drill, metrics, info, verify."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pcbackup import metrics
from pcbackup.drill import Drill, DrillReport
from pcbackup.errors import BackupError
from pcbackup.instance import MARKER, Instance, RecoveryWatch
from pcbackup.pgbackrest import BACKUP_TYPES, LISTING_SECONDS, PgBackRest
from pcbackup.restore import restore
from pcbackup.sources import Source, load_cluster, load_config, standalone
from pcbackup.writers import CANARY_DDL, STAMPS_DDL, CanaryWriter
from punchclock_tools.postgres import CommandFailed

HEARTBEATS = 4  # canary rows between two backups of the standalone drill's chain


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pcbackup", description=__doc__)
    top.add_argument(
        "--state",
        type=Path,
        default=Path(".state/cluster"),
        help="the HA cluster's state directory (holds cluster.json)",
    )
    top.add_argument("--config", type=Path, help="pgbackrest.conf to use instead of the cluster's")
    commands = top.add_subparsers(dest="command", required=True)
    backup = commands.add_parser("backup", help="take a backup")
    backup.add_argument("--type", choices=BACKUP_TYPES, default="incr")
    backup.add_argument("--repo", type=int, default=1, help="repository to back up into (default 1)")
    backup.add_argument(
        "--if-wal-dropped",
        action="store_true",
        help="only when archive-push dropped WAL after the newest backup (the archive has a hole to close)",
    )
    rest = commands.add_parser("restore", help="restore into a new data directory and start it on its own port")
    rest.add_argument("--target", help='point in time, e.g. "2026-11-27 10:00:00+00" (default: latest)')
    rest.add_argument("--set", dest="backup_set", help="backup label to restore from (default: chosen by pgBackRest)")
    rest.add_argument("--repo", type=int, help="repository to restore from (default: the first that has one)")
    rest.add_argument("--dest", type=Path, help="new directory for the copy (default .state/restore/<time>)")
    rest.add_argument("--port", type=int, help="port for the copy (default: a free one)")
    rest.add_argument(
        "--stall-timeout",
        type=float,
        default=3600,
        help="give up when recovery shows no progress for this many seconds (0: never; default 3600)",
    )
    drill = commands.add_parser("drill", help="verify, restore the newest and the oldest backups, row-exact")
    drill.add_argument("--standalone", action="store_true", help="drill on a private throwaway server")
    drill.add_argument("--count", type=int, default=20, help="canary rows written before and after the target")
    drill.add_argument("--repo", type=int, action="append", help="repositories to restore from (default: all)")
    drill.add_argument("--report", type=Path, help="also write the JSON report here")
    drill.add_argument("--scratch", type=Path, help="parent directory of the scratch instances")
    drill.add_argument("--textfile-dir", type=Path, help="record the result for node_exporter here")
    drill.add_argument("--stamps", type=int, default=0, help="standalone: seed this many stamps first (RTO at size)")
    exporter = commands.add_parser("metrics", help="write backup/WAL/archiver health for node_exporter")
    exporter.add_argument("--textfile-dir", type=Path, help="directory node_exporter reads (default: stdout)")
    exporter.add_argument("--cache", type=Path, help="last known repository values (default: in textfile-dir)")
    exporter.add_argument("--canary", action="store_true", help="also write one canary row on the primary")
    commands.add_parser("info", help="pgbackrest info")
    verify = commands.add_parser("verify", help="check every file in the repositories against its checksum")
    verify.add_argument("--repo", type=int, action="append", help="repository to verify (default: all)")
    verify.add_argument("--textfile-dir", type=Path, help="record the verdict for node_exporter here")
    discard = commands.add_parser("discard", help="stop a restored copy and delete its directory")
    discard.add_argument("dest", type=Path)
    release = commands.add_parser(
        "release", help="strip a restored copy's isolation settings and stop it, for adoption"
    )
    release.add_argument("dest", type=Path)
    return top


def repository(args: argparse.Namespace) -> PgBackRest:
    if args.config:
        return PgBackRest(args.config)
    if (args.state / "cluster.json").exists():
        return load_cluster(args.state).br
    return load_config(args.state / "pgbackrest" / "pgbackrest.conf").br


def cmd_backup(args: argparse.Namespace) -> int:
    br = repository(args)
    br.ensure_stanza()
    if args.if_wal_dropped:
        dropped = [moment for moment, _ in metrics.dropped_wal(br)]
        stops = [b["timestamp"]["stop"] for b in br.backups(args.repo)]
        newest = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(max(stops))) if stops else ""
        if not dropped or max(dropped) < newest:
            print(f"no WAL dropped since the newest backup of repo{args.repo}: nothing to do")
            return 0
        print(f"archive-push dropped WAL at {max(dropped)}, after the newest backup: backing up to close the hole")
    try:
        live_source(args).checkpoint()
    except CommandFailed as error:
        print(f"pcbackup backup: no checkpoint before the backup ({error})", file=sys.stderr)
    started = time.monotonic()
    done = br.backup(args.type, repo=args.repo)
    print(
        f"backup {done['label']} ({done['type']}, repo{args.repo}, {done['info']['size'] / 1e6:.1f} MB, "
        f"{done['info']['repository']['delta'] / 1e6:.1f} MB stored) in {time.monotonic() - started:.1f} s"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    dest = args.dest or Path(".state/restore") / time.strftime("%Y%m%dT%H%M%S")
    if not dest.parent.exists():
        dest.parent.mkdir(parents=True)
        dest.parent.chmod(0o755)  # postgres must reach the copy's directory below it
    br = repository(args)
    if args.target:
        try:
            live_source(args).seal()
        except CommandFailed as error:
            print(
                f"pcbackup restore: the cluster could not archive its newest WAL ({error}); restoring from "
                "what the repository holds",
                file=sys.stderr,
            )
    done = restore(
        br,
        dest.resolve(),
        target=args.target,
        backup_set=args.backup_set,
        port=args.port,
        repo=args.repo,
        stall_seconds=args.stall_timeout or None,
    )
    inst = done.instance
    print(
        f"restored {'to ' + args.target if args.target else 'to the end of the archive'} in "
        f"{done.rto_seconds:.1f} s (files {done.restore_seconds:.1f} s, recovery {done.recovery_seconds:.1f} s)"
    )
    print(f"running on 127.0.0.1:{inst.port}, data {inst.data_dir}, socket {inst.base_dir}, log {inst.log_file}")
    print(
        f"  psql:    setpriv --reuid=postgres --regid=postgres --init-groups "
        f"psql -h {inst.base_dir} -p {inst.port} -U postgres punchclock"
    )
    print(f"  discard: make restore-discard DEST={inst.base_dir}")
    print("  promote to be the new cluster: docs/backup.md, 'We lost the whole cluster'")
    return 0


def seed_chain(source: Source, repos: list[int], stamps: int) -> None:
    """A private server's scheduled chain, as the timers would build it: full backups into every repository,
    canary heartbeats between backups, then a differential and an incremental on repo1 and a differential on the
    others, so the drill restores through a chain and replays WAL across the window."""
    primary = source.primary()
    primary.query(STAMPS_DDL + ";\n" + CANARY_DDL)
    source.br.stanza_create()  # first: archive_command fails until the stanza exists
    if stamps:
        progress(f"drill: seed: {stamps:,} stamps")
        primary.query(
            "INSERT INTO stamps (key, recorded_at) SELECT 'seed-' || n, now() - make_interval(secs => n)"
            f" FROM generate_series(1, {int(stamps)}) AS n",
            timeout=24 * 3600,
        )
        primary.query("CHECKPOINT")
        wait_archived(source)
    writer = CanaryWriter(source.primary)

    def heartbeats(tag: str) -> None:
        for n in range(HEARTBEATS):
            writer.write([f"heartbeat-{tag}-{n}"])
            time.sleep(0.3)

    for repo in repos:
        source.br.backup("full", repo=repo)
    heartbeats("after-full")
    source.br.backup("diff", repo=1)
    heartbeats("after-diff")
    source.br.backup("incr", repo=1)
    for repo in repos[1:]:
        source.br.backup("diff", repo=repo)
    progress("drill: chain: full backups in " + ", ".join(f"repo{r}" for r in repos) + ", then diff and incr")


def wait_archived(source: Source, stall_seconds: float = 600) -> None:
    """Wait until no WAL segment waits for archive_command (after a bulk load), as long as the backlog shrinks."""
    watch = RecoveryWatch(stall_seconds, what="archiving the bulk load")
    while True:
        ready = int(source.primary().value("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"))
        if ready == 0:
            return
        watch.observe(ready)
        time.sleep(1)


def run_drill(args: argparse.Namespace, source: Source, private: bool, scratch: Path) -> DrillReport:
    repos = args.repo or source.br.repos()
    writer = CanaryWriter(source.primary)
    if private:
        seed_chain(source, repos, args.stamps)
    else:
        writer.ensure()
    drill = Drill(
        br=source.br,
        primary=source.primary,
        writer=writer,
        scratch=scratch,
        source="standalone" if private else "cluster",
        strict=private,
        probe_wal=private,
        repos=tuple(repos),
        count_before=args.count,
        count_after=args.count,
        say=progress,
    )
    return drill.run()


def progress(line: str) -> None:
    """The drill's step lines go to stderr as they happen, so stdout carries only the JSON report."""
    print(line, file=sys.stderr, flush=True)


def live_source(args: argparse.Namespace) -> Source:
    """The cluster from cluster.json, or the hosts listed in pgbackrest.conf (--config, or the state's)."""
    if args.config:
        return load_config(args.config)
    if not (args.state / "cluster.json").exists():
        return load_config(args.state / "pgbackrest" / "pgbackrest.conf")
    return load_cluster(args.state)


def cmd_drill(args: argparse.Namespace) -> int:
    try:
        report = drill_report(args)
    except CommandFailed:
        if args.textfile_dir:
            record_drill(args.textfile_dir, "punchclock" if args.standalone else repository(args).stanza, None)
        raise
    text = json.dumps(report.as_dict(), indent=2)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    if args.textfile_dir:
        record_drill(args.textfile_dir, "punchclock" if args.standalone else repository(args).stanza, report)
    print(text, flush=True)
    progress(summary(report))
    return 0 if report.ok else 1


def drill_report(args: argparse.Namespace) -> DrillReport:
    if args.standalone:
        work = Path(tempfile.mkdtemp(prefix="pcbackup-drill-", dir=args.scratch))
        work.chmod(0o755)
        try:
            with standalone(work) as source:
                report = run_drill(args, source, True, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    else:
        scratch = args.scratch or Path(".state").resolve()
        scratch.mkdir(parents=True, exist_ok=True)
        report = run_drill(args, live_source(args), False, scratch)
    return report


def record_drill(directory: Path, stanza: str, report: DrillReport | None) -> None:
    labels = {"stanza": stanza}
    now = time.time()
    samples: list[metrics.Sample] = [
        ("pcbackup_restore_drill_last_run_timestamp_seconds", labels, now),
        ("pcbackup_restore_drill_ok", labels, int(bool(report and report.ok))),
    ]
    if report and report.ok:
        samples += [
            ("pcbackup_restore_drill_last_success_timestamp_seconds", labels, now),
            ("pcbackup_restore_drill_rto_seconds", labels, report.rto_seconds),
            ("pcbackup_restore_drill_rpo_bound_seconds", labels, report.rpo_bound_seconds),
        ]
    metrics.write_result(directory, "pcbackup-drill.prom", samples)


def summary(report: DrillReport) -> str:
    verdict = "PASS" if report.ok else "FAIL"
    restores = ", ".join(
        f"{r['name']} {'ok' if r['ok'] else 'FAILED'} (RTO {r['rto_seconds']:.1f} s)" for r in report.restores
    )
    verified = ", ".join(f"{repo} {'intact' if ok else 'DAMAGED'}" for repo, ok in report.verify.items())
    return (
        f"restore drill {verdict}: verify {verified}; {restores}; window from {report.window_start} "
        f"({report.window_days:.2f} days); RPO bound {report.rpo_bound_seconds:.1f} s (archive_timeout "
        f"{report.archive_timeout_seconds} s + backlog {report.rpo_backlog_seconds:.1f} s / push "
        f"{report.rpo_push_seconds:.1f} s); sampled {report.rpo_seconds:.1f} s"
    )


def cmd_metrics(args: argparse.Namespace) -> int:
    br = repository(args)
    if args.canary:
        try:
            source = live_source(args)
            writer = CanaryWriter(source.primary)
            writer.ensure()  # a new cluster has no canary table until the first heartbeat makes it
            writer.write([f"heartbeat-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6}"])
        except CommandFailed as error:
            print(f"pcbackup metrics: no canary row ({error})", file=sys.stderr)
    cache = args.cache or (args.textfile_dir / ".pcbackup-metrics-cache.json" if args.textfile_dir else None)
    text = metrics.exposition(metrics.collect(br, cache_file=cache))
    if args.textfile_dir:
        metrics.write_textfile(args.textfile_dir, text)
    else:
        sys.stdout.write(text)
    return 0


def restored_copy(dest: Path) -> Instance:
    """A copy made by ``pcbackup restore``, finished or failed (refuses anything else), with its port."""
    base = dest.resolve()
    auto = base / "data" / "postgresql.auto.conf"
    text = auto.read_text() if auto.exists() else ""
    ports = re.findall(r"^port = (\d+)$", text, re.MULTILINE)
    if ports and "pcbackup restore" in text:
        return Instance(base, int(ports[-1]))
    if (base / MARKER).exists():
        return Instance(base, int(json.loads((base / MARKER).read_text())["port"]))
    raise BackupError(f"{dest} is not a copy made by pcbackup restore; not touching it")


def cmd_discard(args: argparse.Namespace) -> int:
    restored_copy(args.dest).remove()
    print(f"stopped and removed {args.dest}")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    copy = restored_copy(args.dest)
    copy.release()
    print(f"{copy.data_dir} is stopped, with no restore settings left. Make it the new cluster as")
    print("docs/backup.md, 'We lost the whole cluster', says: copy it into every node's data directory, or start")
    print("one Patroni node alone on it and let the others clone.")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    print(repository(args).run("info", timeout=LISTING_SECONDS), end="")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    br = repository(args)
    damaged = False
    for repo in args.repo or br.repos():
        try:
            verdict = br.verify(repo)
            findings = verdict.findings
        except CommandFailed as error:  # verify aborts (exit != 0) on some damage, e.g. an unreadable WAL file
            findings = [str(error)]
        if findings:
            damaged = True
            print(f"repo{repo}: DAMAGED: " + "; ".join(findings[:20]))
        else:
            print(f"repo{repo}: verified: every backup and WAL file matches its checksum")
        if args.textfile_dir:
            labels = {"stanza": br.stanza, "repo": str(repo)}
            metrics.write_result(
                args.textfile_dir,
                f"pgbackrest-verify-repo{repo}.prom",
                [
                    ("pgbackrest_verify_last_run_timestamp_seconds", labels, time.time()),
                    ("pgbackrest_verify_ok", labels, int(not findings)),
                    ("pgbackrest_verify_findings", labels, len(findings)),
                ],
            )
    return 1 if damaged else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handlers = {
        "backup": cmd_backup,
        "restore": cmd_restore,
        "drill": cmd_drill,
        "metrics": cmd_metrics,
        "discard": cmd_discard,
        "release": cmd_release,
        "info": cmd_info,
        "verify": cmd_verify,
    }
    try:
        return int(handlers[args.command](args))
    except CommandFailed as error:
        print(f"pcbackup {args.command}: {error}", file=sys.stderr)
        return 2
    except subprocess.TimeoutExpired as error:  # a helper's bounded wait (psql, pg_ctl), never a backup's
        print(f"pcbackup {args.command}: {error.cmd[0] if error.cmd else 'a command'} gave no answer "
              f"within {error.timeout:.0f} s", file=sys.stderr)  # fmt: skip
        return 2
