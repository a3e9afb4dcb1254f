"""The ``punchclock`` command: serve, migrate, backup, restore."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from punchclock import __version__, logs, sqlite_backup, startup
from punchclock.errors import PunchclockError
from punchclock.settings import Settings, SettingsError, load_settings, redact
from punchclock.store import open_store
from punchclock.store.sqlite import path_from_url

log = structlog.get_logger("punchclock.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="punchclock",
        description="Record a durable timestamp for every POST /app. Settings come from the environment "
        "(see the README's configuration table).",
    )
    parser.add_argument("--version", action="version", version=f"punchclock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="serve HTTP until SIGTERM", description="Serve HTTP until SIGTERM.")
    commands.add_parser(
        "migrate",
        help="bring the database schema up to date",
        description="Wait (bounded) for the database, apply missing migrations, exit.",
    )
    backup_cmd = commands.add_parser(
        "backup",
        help="copy the SQLite database consistently while it is in use",
        description="Copy the embedded SQLite database to PATH with SQLite's online backup API.",
    )
    backup_cmd.add_argument("path", type=Path, nargs="?", help="the new backup file (or --dir)")
    backup_cmd.add_argument(
        "--dir", type=Path, help="scheduled form: write punchclock-<UTC time>.db into this directory and rotate"
    )
    backup_cmd.add_argument("--keep", type=int, default=14, help="with --dir: how many backups to keep (default 14)")
    restore_cmd = commands.add_parser(
        "restore",
        help="replace the SQLite database with a backup (service stopped)",
        description="Verify the backup at PATH and put it in place of the SQLite database. "
        "Refused while punchclock serves the database.",
    )
    restore_cmd.add_argument("path", type=Path, help="a file made by `punchclock backup`")
    restore_cmd.add_argument("--force", action="store_true", help="replace an existing database")
    return parser


async def _migrate(settings: Settings) -> list[int]:
    store = open_store(settings)
    await startup.wait_for_database(store, settings.startup_wait_seconds)
    try:
        return await store.migrate()
    finally:
        await store.close()


def _sqlite_path(settings: Settings) -> Path:
    if not settings.is_sqlite:
        raise PunchclockError(
            "backup and restore here are for the embedded SQLite database; PostgreSQL is backed up with "
            "pgBackRest (docs/backup.md)"
        )
    return path_from_url(settings.dsn)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"punchclock: invalid settings: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format, no_color=bool(settings.no_color))
    try:
        if args.command == "serve":
            from punchclock.server import serve

            serve(settings)
        elif args.command == "migrate":
            applied = asyncio.run(_migrate(settings))
            log.info("schema up to date", applied=applied, database=redact(settings.dsn))
        elif args.command == "backup" and args.dir:
            path, count, removed = sqlite_backup.scheduled(_sqlite_path(settings), args.dir, keep=args.keep)
            log.info("backup written", path=str(path), stamps=count, rotated_out=[str(p) for p in removed])
        elif args.command == "backup":
            if args.path is None:
                raise PunchclockError("name the backup file, or a directory with --dir")
            count = sqlite_backup.backup(_sqlite_path(settings), args.path)
            log.info("backup written", path=str(args.path), stamps=count)
        elif args.command == "restore":
            count = sqlite_backup.restore(args.path, _sqlite_path(settings), force=args.force)
            log.info("database restored", source=str(args.path), stamps=count)
    except PunchclockError as exc:
        log.error(f"{args.command} failed", reason=exc.detail)
        return 1
    return 0
