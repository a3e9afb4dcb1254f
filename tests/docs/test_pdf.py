"""make docs builds design.pdf: a title page, contents, the seven answers, the diagrams, page numbers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from punchclock_tools.docs import pdf

# The brief's seven questions, in its order, and the words of the design's section that answers each.
ANSWERS = [
    "The high-level design, and why it meets the requirements",
    "The web API",
    "Backup and restore automation",
    "The persistence layer and its cluster",
    "Load balancing and queuing",
    "Monitoring and maintainability",
    "Elasticity",
]
# Text that only the diagrams carry (WeasyPrint keeps an SVG's text as text, so pdftotext reads it).
DIAGRAM_TEXT = {
    "architecture": "punchclock: logical architecture",
    "write path": "The write path: a 201 only once the stamp is on two machines",
    "failover": "Failover after a hard-killed leader",
    "kubernetes": "punchclock on Kubernetes (prod overlay)",
}


def run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pdf.build(tmp_path_factory.mktemp("docs") / "design.pdf")


@pytest.fixture(scope="module")
def text(built: Path) -> str:
    return re.sub(r"[ \t]+", " ", run("pdftotext", "-layout", str(built), "-"))


def test_title_page_then_contents(built: Path) -> None:
    """Given the PDF, then page 1 is the title page and page 2 the contents, with page references."""
    first = run("pdftotext", "-f", "1", "-l", "1", str(built), "-")
    contents = run("pdftotext", "-layout", "-f", "2", "-l", "2", str(built), "-")
    assert pdf.TITLE.split(": ")[0] in first
    assert "Built from commit" in first
    assert "Contents" in contents
    assert re.search(r"1 The high-level design.*?\. (\d+)\s*$", contents, re.MULTILINE), contents[:800]


def test_each_question_has_a_numbered_section(text: str) -> None:
    """Given the PDF's text, then sections 1 to 7 are the answers to the brief's questions, in its order."""
    for number, title in enumerate(ANSWERS, start=1):
        assert re.search(rf"^ ?{number} {re.escape(title)}", text, re.MULTILINE), f"no section {number} {title}"


def test_the_answers_carry_measured_figures(text: str) -> None:
    """Given the PDF, then its answers quote the figures of results/ (checked here by their units)."""
    assert re.search(r"\d[\d,]*/s", text)
    assert re.search(r"\d+(\.\d+)? s\b", text)
    assert "Measured figures" in text


def test_every_diagram_is_drawn(text: str) -> None:
    """Given the PDF, then the text of each diagram is in it: the SVGs were laid out, not dropped."""
    flat = " ".join(text.split())
    missing = [name for name, label in DIAGRAM_TEXT.items() if label not in flat]
    assert missing == []


def test_appendices_and_page_numbers(built: Path, text: str) -> None:
    """Given the PDF, then the other pages follow as appendices, and pages carry "n / total"."""
    pages = int(re.search(r"Pages:\s+(\d+)", run("pdfinfo", str(built)))[1])  # type: ignore[index]
    for index, page in enumerate(pdf.APPENDICES):
        assert f"Appendix {chr(ord('A') + index)}:" in text, page
    assert f"3 / {pages}" in text


def test_first_pages_render_as_images(built: Path, tmp_path: Path) -> None:
    """Given the PDF, when pdftoppm renders its first pages, then each is a non-empty PNG (what a reviewer sees)."""
    run("pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "3", str(built), str(tmp_path / "page"))
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == 3
    assert all(image.stat().st_size > 1000 for image in images)
