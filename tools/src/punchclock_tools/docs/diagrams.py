"""Render docs/diagrams/*.dot (and *.dot.j2 templates) into the SVGs the pages and the PDF embed.

Graphviz's ``dot`` (Debian's ``graphviz``) lays them out. A ``.dot.j2`` is a Jinja2 template with the pages'
context (``render.context``), so a timing it prints comes from results/, never typed. Every source names
DejaVu Sans (``fonts-dejavu-core``): dot measures text with the fonts it finds, so naming the font the make
targets install keeps the layout, and the committed SVG, the same on every machine.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from punchclock_tools.docs.render import context, environment
from punchclock_tools.paths import REPO

DIAGRAMS = REPO / "docs" / "diagrams"
DOT_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Diagram:
    source: Path
    target: Path
    dot: str  # the Graphviz source, after templating


def sources(directory: Path = DIAGRAMS) -> list[Path]:
    return sorted([*directory.glob("*.dot"), *directory.glob("*.dot.j2")])


def _stem(source: Path) -> str:
    return source.name.removesuffix(".j2").removesuffix(".dot")


def load_all(marked: bool = False, directory: Path = DIAGRAMS) -> list[Diagram]:
    """Every diagram's Graphviz source (``marked``: templated values wrapped, for the number check)."""
    env = environment(marked, directory)
    values = context()
    loaded = []
    for source in sources(directory):
        text = env.get_template(source.name).render(values) if source.suffix == ".j2" else source.read_text()
        loaded.append(Diagram(source, source.with_name(_stem(source) + ".svg"), text))
    return loaded


def svg(dot: str) -> bytes:
    """``dot -Tsvg`` of one source; byte-identical from run to run for the same input and fonts."""
    out = subprocess.run(
        ["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=True, timeout=DOT_TIMEOUT_SECONDS
    )
    if out.stderr.strip():  # a warning (an unknown cluster, a font not found) is a diagram bug
        raise RuntimeError(f"dot: {out.stderr.decode().strip()}")
    return out.stdout


def stale(diagrams: list[Diagram]) -> list[Path]:
    return [d.target for d in diagrams if not d.target.exists() or d.target.read_bytes() != svg(d.dot)]


def write(diagrams: list[Diagram]) -> list[Path]:
    changed = []
    for diagram in diagrams:
        rendered = svg(diagram.dot)
        if not diagram.target.exists() or diagram.target.read_bytes() != rendered:
            diagram.target.write_bytes(rendered)
            changed.append(diagram.target)
    return changed
