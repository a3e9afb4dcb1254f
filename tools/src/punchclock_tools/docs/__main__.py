"""``python -m punchclock_tools.docs [--check]``: render docs/src/*.md.j2 into docs/*.md and docs/diagrams/*.dot
(``*.dot.j2``) into their SVGs (``make docs-md``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from punchclock_tools.docs import diagrams
from punchclock_tools.docs.render import render_all, stale, write
from punchclock_tools.paths import REPO


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m punchclock_tools.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    docs = render_all()
    drawings = diagrams.load_all()
    if args.check:
        out_of_date = stale(docs) + diagrams.stale(drawings)
        for path in out_of_date:
            print(f"{path.relative_to(REPO)} is stale: run make docs-md", file=sys.stderr)
        return 1 if out_of_date else 0
    for path in write(docs) + diagrams.write(drawings):
        print(f"rendered {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
