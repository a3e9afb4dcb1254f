"""Where the repository's files are, for tooling that reads its templates and writes its state."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]  # tools/src/punchclock_tools/paths.py
STATE = REPO / ".state"
