"""docs/*.md are the rendering of docs/src/*.md.j2: nobody edits the output by hand."""

from __future__ import annotations

import difflib

from punchclock_tools.docs.render import render_all


def test_committed_docs_equal_a_fresh_render() -> None:
    """Given the templates, results and configuration, then every committed page is exactly their rendering."""
    for doc in render_all():
        committed = doc.target.read_text() if doc.target.exists() else ""
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(True), doc.text.splitlines(True), str(doc.target), "rendered", n=1
            )
        )
        assert committed == doc.text, f"{doc.target.name} is stale or edited by hand: run make docs-md\n{diff[:3000]}"
