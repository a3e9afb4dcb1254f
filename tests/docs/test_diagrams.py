"""docs/diagrams/*.svg are Graphviz's rendering of their sources, and that rendering does not vary."""

from __future__ import annotations

from punchclock_tools.docs import diagrams


def test_committed_svgs_equal_a_fresh_render() -> None:
    """Given the diagram sources, results and configuration, then every committed SVG is exactly dot's output."""
    stale = [path.name for path in diagrams.stale(diagrams.load_all())]
    assert stale == [], f"stale or edited by hand: {stale}; run make docs-md"


def test_rendering_is_byte_identical_run_to_run() -> None:
    """Given one source, when dot renders it twice, then the two SVGs are the same bytes (the freshness check
    above depends on it)."""
    for diagram in diagrams.load_all():
        assert diagrams.svg(diagram.dot) == diagrams.svg(diagram.dot), diagram.source.name


def test_every_source_has_its_svg_and_every_svg_a_source() -> None:
    """Given docs/diagrams/, then the SVGs are exactly those of the sources (none left from a removed one)."""
    targets = {d.target.name for d in diagrams.load_all()}
    assert {p.name for p in diagrams.DIAGRAMS.glob("*.svg")} == targets
    assert {"architecture.svg", "write-path.svg", "failover.svg", "kubernetes.svg"} <= targets
