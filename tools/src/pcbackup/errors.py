"""pcbackup's one error type."""

from __future__ import annotations

from punchclock_tools.postgres import CommandFailed


class BackupError(CommandFailed):
    """A backup, restore or drill step failed; the message says which and why in one sentence.

    Catch ``CommandFailed`` to handle these and a failed pgBackRest or psql command alike.
    """
