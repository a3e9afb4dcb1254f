"""Render docs/src/*.md.j2 into docs/*.md: values from results/ and from the configuration.

``python -m punchclock_tools.docs`` (``make docs-md``) writes the pages; ``--check`` only says which are stale.
In ``marked`` mode every value a placeholder printed is wrapped in ``MARK_START``/``MARK_END``, so
``numbers.unmarked_numbers`` can tell a templated figure from a typed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from punchclock_tools.docs import capacity, config, filters, results
from punchclock_tools.docs.provenance import RESULTS
from punchclock_tools.paths import REPO

SOURCES = REPO / "docs" / "src"
OUTPUT = REPO / "docs"
MARK_START, MARK_END = "\x02", "\x03"
HEADER = "<!-- Rendered from docs/src/{name}.j2 by `make docs-md`; edit that file, not this one. -->\n"


@dataclass(frozen=True)
class RenderedDoc:
    source: Path
    target: Path
    text: str


def environment(marked: bool = False, sources: Path = SOURCES) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(sources),
        undefined=jinja2.StrictUndefined,  # a figure missing from its results file fails the render
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Markdown, not HTML
        finalize=(lambda value: f"{MARK_START}{value}{MARK_END}") if marked else None,
    )
    env.filters.update(filters.FILTERS)
    return env


def context(results_dir: Path = RESULTS) -> dict[str, Any]:
    loaded = results.load_all(results_dir)
    configured = config.configured()
    return {
        "bench": loaded["bench"],
        "ha": loaded["ha"],
        "provision": loaded["provision"],
        "drill": loaded["restore-drill"],
        "manual": loaded["manual"],
        "scaling": loaded["scaling"],
        "config": configured,
        "capacity": capacity.model(loaded["bench"].data, configured),
    }


def render_all(marked: bool = False, sources: Path = SOURCES, output: Path = OUTPUT) -> list[RenderedDoc]:
    """Every page, rendered (``marked``: with each templated value wrapped, for the number check)."""
    env = environment(marked, sources)
    values = context()
    rendered = []
    for source in sorted(sources.glob("*.md.j2")):
        if source.name.startswith("_"):
            continue  # macros, included by the pages
        text = HEADER.format(name=source.name.removesuffix(".j2")) + env.get_template(source.name).render(values)
        rendered.append(RenderedDoc(source, output / source.name.removesuffix(".j2"), text))
    return rendered


def stale(docs: list[RenderedDoc]) -> list[Path]:
    return [doc.target for doc in docs if not doc.target.exists() or doc.target.read_text() != doc.text]


def write(docs: list[RenderedDoc]) -> list[Path]:
    changed = stale(docs)
    for doc in docs:
        if doc.target in changed:
            doc.target.write_text(doc.text)
    return changed
