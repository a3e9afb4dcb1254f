"""Every number of a rendered page that no placeholder printed, with where it stands.

A number is a run of digits (with ``,``/``.``/``:`` between groups), not glued to a letter or an
underscore before it: ``pg1``, ``etcd3``, ``s3``, ``v1``, ``sha256`` are names, not figures. ``60s`` or
``4GiB`` still count (a unit after the figure).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from punchclock_tools.docs.render import MARK_END, MARK_START

NUMBER = re.compile(r"(?<![A-Za-z_\d])\d+(?:[.,:]\d+)*")
MARKED = re.compile(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), re.DOTALL)


@dataclass(frozen=True)
class Number:
    text: str
    line: int
    context: str  # the whole line, marks replaced by ``{…}``
    start: int  # offset of the number in the unmarked page
    end: int


def unmarked(page: str) -> str:
    """The page with every templated value replaced by a placeholder of no digits."""
    return MARKED.sub("{…}", page)


def unmarked_numbers(page: str) -> list[Number]:
    text = unmarked(page)
    lines = text.splitlines()
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    found = []
    for match in NUMBER.finditer(text):
        index = next(i for i, start in enumerate(starts) if start > match.start()) - 1
        found.append(Number(match[0], index + 1, lines[index], match.start(), match.end()))
    return found
