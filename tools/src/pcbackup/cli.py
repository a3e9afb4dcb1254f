"""pcbackup's command line: backup, restore, discard, release, drill, metrics, info, verify."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from pcbackup import metrics, service
from pcbackup.drill import Drill, DrillReport, Writer
from pcbackup.errors import BackupError
from pcbackup.instance import Instance
from pcbackup.pgbackrest import BACKUP_TYPES, PgBackRest
from pcbackup.restore import restore
from pcbackup.sources import Source, load_cluster, load_config, standalone
from pcbackup.writers import STAMPS_DDL, ApiWriter, SqlWriter, wait_ready
from punchclock_tools.postgres import CommandFailed


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
    rest = commands.add_parser("restore", help="restore into a new data directory and start it on its own port")
    rest.add_argument("--target", help='point in time, e.g. "2026-11-27 10:00:00+00" (default: latest)')
    rest.add_argument("--set", dest="backup_set", help="backup label to restore from (default: chosen by pgBackRest)")
    rest.add_argument("--dest", type=Path, help="new directory for the copy (default .state/restore/<time>)")
    rest.add_argument("--port", type=int, help="port for the copy (default: a free one)")
    drill = commands.add_parser("drill", help="backup, write, restore to a point in time, verify row-exact")
    drill.add_argument("--standalone", action="store_true", help="drill on a private throwaway server")
    drill.add_argument("--writer", choices=("auto", "api", "sql"), default="auto")
    drill.add_argument("--count", type=int, default=20, help="stamps written before and after the target")
    drill.add_argument("--type", choices=BACKUP_TYPES, default="incr")
    drill.add_argument("--report", type=Path, help="also write the JSON report here")
    drill.add_argument("--scratch", type=Path, help="parent directory of the scratch instance")
    drill.add_argument("--app-url", help="punchclock service to write through (default: the cluster's app_url)")
    exporter = commands.add_parser("metrics", help="write backup/WAL freshness for node_exporter")
    exporter.add_argument("--textfile-dir", type=Path, help="directory node_exporter reads (default: stdout)")
    commands.add_parser("info", help="pgbackrest info")
    commands.add_parser("verify", help="check every file in the repository against its checksum")
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
    try:
        live_source(args).checkpoint()
    except CommandFailed as error:
        print(f"pcbackup backup: no checkpoint before the backup ({error})", file=sys.stderr)
    started = time.monotonic()
    done = br.backup(args.type)
    print(
        f"backup {done['label']} ({done['type']}, {done['info']['size'] / 1e6:.1f} MB, "
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
    done = restore(br, dest.resolve(), target=args.target, backup_set=args.backup_set, port=args.port)
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


@contextlib.contextmanager
def drill_writer(
    args: argparse.Namespace, source: Source, private: bool, log_dir: Path
) -> Iterator[tuple[Writer, str]]:
    """The API through a running service when possible (and required for --writer api), else direct SQL."""
    if args.writer != "sql" and source.app_url and not private:
        wait_ready(source.app_url)
        yield ApiWriter(source.app_url), "api"
        return
    cli = service.punchclock_cli() if args.writer != "sql" and source.database_url else None
    if cli:
        if private:
            service.migrate(cli, source.database_url)
        with service.serving(cli, source.database_url, log_dir / "punchclock.log") as url:
            yield ApiWriter(url), "api"
        return
    if args.writer == "api":
        raise BackupError("--writer api: no punchclock service (app_url) and no punchclock CLI with serve")
    if private:
        source.primary().query(STAMPS_DDL)
    yield SqlWriter(source.primary), "sql"


def run_drill(args: argparse.Namespace, source: Source, private: bool, scratch: Path) -> DrillReport:
    with drill_writer(args, source, private, scratch) as (writer, name):
        drill = Drill(
            br=source.br,
            primary=source.primary,
            writer=writer,
            scratch=scratch,
            source="standalone" if private else "cluster",
            writer_name=name,
            strict=private,
            backup_type=args.type,
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
    app_url = getattr(args, "app_url", None)
    if args.config:
        return load_config(args.config, app_url=app_url)
    if not (args.state / "cluster.json").exists():
        return load_config(args.state / "pgbackrest" / "pgbackrest.conf", app_url=app_url)
    source = load_cluster(args.state)
    return dataclasses.replace(source, app_url=app_url) if app_url else source


def cmd_drill(args: argparse.Namespace) -> int:
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
    text = json.dumps(report.as_dict(), indent=2)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    print(text, flush=True)
    progress(summary(report))
    return 0 if report.ok else 1


def summary(report: DrillReport) -> str:
    verdict = "PASS" if report.ok else "FAIL"
    return (
        f"restore drill {verdict}: {report.stamps_before_target} stamps before the target restored, "
        f"{len(report.missing)} missing, {len(report.restored_after_target)} restored from after the target, "
        f"{len(report.unknown)} unknown, {report.rows_other_clients} from other clients; "
        f"RTO {report.rto_seconds:.1f} s (files {report.restore_seconds:.1f} s + recovery "
        f"{report.recovery_seconds:.1f} s); RPO {report.rpo_seconds:.1f} s "
        f"({report.rpo_unarchived_bytes} bytes of WAL not yet archived, archive_timeout "
        f"{report.archive_timeout_seconds} s)"
    )


def cmd_metrics(args: argparse.Namespace) -> int:
    text = metrics.exposition(metrics.collect(repository(args)))
    if args.textfile_dir:
        metrics.write_textfile(args.textfile_dir, text)
    else:
        sys.stdout.write(text)
    return 0


def restored_copy(dest: Path) -> Instance:
    """A copy made by ``pcbackup restore`` (refuses anything else), with its current port."""
    auto = dest.resolve() / "data" / "postgresql.auto.conf"
    text = auto.read_text() if auto.exists() else ""
    if "pcbackup restore" not in text:
        raise BackupError(f"{dest} is not a copy made by pcbackup restore; not touching it")
    ports = re.findall(r"^port = (\d+)$", text, re.MULTILINE)
    return Instance(dest.resolve(), int(ports[-1]))


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
    print(repository(args).run("info"), end="")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    print(repository(args).verify().strip() or "repository verified: every file matches its checksum")
    return 0


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
