"""Build ``design.pdf`` from the rendered pages: ``python -m punchclock_tools.docs.pdf OUT.pdf`` (``make docs``).

The PDF is docs/design.md followed by the other pages as appendices. design.md answers the seven questions and
points to the other pages for the full tables and procedures; a PDF read on its own has nowhere to point to
unless those pages are in it, so they are, and their links become links inside the document.

``assemble`` numbers the headings (design's sections 1, 2...; appendices A, B... with A.1...), gives each an
id prefixed by its page (two pages may share a heading) and rewrites the links: ``ha.md#x`` to ``#ha-x``, a
repository file to its name in plain text. pandoc (``commonmark_x``, the GitHub-flavoured syntax the pages are
written in, plus heading attributes) makes the HTML with a title page and a table of contents;
WeasyPrint lays it out with docs/pdf/design.css (page numbers, the contents' page references, the diagrams'
SVG). Both from Debian, see mk/docs.mk.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from punchclock_tools.docs import results
from punchclock_tools.paths import REPO

DOCS = REPO / "docs"
STYLE = DOCS / "pdf" / "design.css"
TEMPLATE = DOCS / "pdf" / "template.html"
MAIN = "design"
APPENDICES = ("ha", "performance", "capacity", "backup", "kubernetes", "monitoring", "provisioning")
TITLE = "punchclock: high-level design"
SUBTITLE = "A highly available service that records a durable timestamp for every POST /app"
TOOL_TIMEOUT_SECONDS = 300

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6}) +(.*?) *$")
LINK = re.compile(r"(?<!!)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


def github_id(text: str) -> str:
    """The anchor GitHub gives a heading, which the pages' own ``#links`` use."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _lines_outside_code(text: str) -> Iterator[tuple[bool, str]]:
    """Each line of a page, with whether it is prose (outside a fenced code block)."""
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if match and (fence is None or match[1] == fence):
            fence = match[1] if fence is None else None
            yield False, line
        else:
            yield fence is None, line


def _link(page: str, text: str, target: str) -> str:
    if re.match(r"[a-z]+://|mailto:", target):
        return f"[{text}]({target})"
    name, _, fragment = target.partition("#")
    if not name:
        return f"[{text}](#{page}-{fragment})"
    if "/" not in name and name.endswith(".md") and name.removesuffix(".md") in (MAIN, *APPENDICES):
        other = name.removesuffix(".md")
        return f"[{text}](#{other}-{fragment})" if fragment else f"[{text}](#{other})"
    return text  # a file of the repository: named, not linked, in a PDF


def page_markdown(page: str, letter: str | None) -> str:
    """One page, its headings numbered (``letter`` for an appendix, None for the design itself)."""
    text = (DOCS / f"{page}.md").read_text()
    out: list[str] = []
    counters = [0, 0, 0]
    seen: set[str] = set()
    for prose, line in _lines_outside_code(text):
        if not prose:
            out.append(line)
            continue
        if line.startswith("<!-- Rendered from"):
            continue
        heading = HEADING.match(line)
        if heading:
            level, title = len(heading[1]), heading[2]
            named = ANCHOR.search(title)  # `## <a id="x"></a>Title`: the page links to #x
            title = ANCHOR.sub("", title).strip()
            anchor = named[1] if named else github_id(title)
            while anchor in seen:
                anchor += "-1"
            seen.add(anchor)
            if level == 1:
                if letter is not None:
                    out.append(f"# Appendix {letter}: {title} {{#{page} .appendix}}")
                continue  # the design's own title is the title page's
            depth = min(level - 2, len(counters) - 1)  # ## numbers 1 (design) or A.1 (appendix A)
            counters[depth] += 1
            counters[depth + 1 :] = [0] * (len(counters) - depth - 1)
            number = ".".join(str(n) for n in counters[: depth + 1])
            number = number if letter is None else f"{letter}.{number}"
            title = re.sub(r"^\d+\. ", "", title)  # the design page numbers its sections itself
            out.append(f"{'#' * (depth + 1 if letter is None else depth + 2)} {number} {title} {{#{page}-{anchor}}}")
            continue
        line = ANCHOR.sub(lambda m: f'<a id="{page}-{m[1]}"></a>', line)
        out.append(LINK.sub(lambda m: _link(page, m[1], m[2]), line))
    return "\n".join(out) + "\n"


def assemble() -> str:
    """The whole document's Markdown: the design, then each appendix."""
    parts = [page_markdown(MAIN, None)]
    for index, page in enumerate(APPENDICES):
        parts.append(page_markdown(page, chr(ord("A") + index)))
    return "\n".join(parts)


def revision() -> str:
    """The commit the document is built from, and its date: what the title page says."""
    out = subprocess.run(
        ["git", "log", "-1", "--format=%h, %cd", "--date=short"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()


def figures() -> str:
    """Where the figures come from, for the title page: each results file's run, date and commit."""
    runs = []
    for name, loaded in sorted(results.load_all().items()):
        p = loaded.provenance
        how = "transcribed" if p["transcribed"] else ("dirty tree" if p["dirty"] else "")
        runs.append(f"{name}.json ({p['produced_at'][:10]}, {p['commit'][:7]}{', ' + how if how else ''})")
    return "Figures from results/: " + "; ".join(runs)


def html(markdown: str) -> str:
    out = subprocess.run(
        [
            "pandoc",
            "--from=commonmark_x",
            "--to=html5",
            "--standalone",
            f"--template={TEMPLATE}",  # no screen CSS of pandoc's own: design.css lays the pages out
            "--toc",
            "--toc-depth=2",
            "--columns=1000",  # no fixed column widths from the width of a table's source lines
            f"--metadata=title:{TITLE}",
            f"--metadata=subtitle:{SUBTITLE}",
            f"--metadata=date:{revision()}",
            f"--metadata=figures:{figures()}",
            "--metadata=lang:en",
        ],
        input=markdown,
        capture_output=True,
        text=True,
        check=True,
        timeout=TOOL_TIMEOUT_SECONDS,
    )
    return out.stdout


def build(output: Path) -> Path:
    """Write the PDF to ``output``; images are found relative to docs/, like the pages on GitHub."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="punchclock-pdf-") as scratch:
        page = Path(scratch) / "design.html"
        page.write_text(html(assemble()))
        subprocess.run(
            ["weasyprint", "--base-url", f"{DOCS}/", "--stylesheet", str(STYLE), str(page), str(output)],
            check=True,
            timeout=TOOL_TIMEOUT_SECONDS,
        )
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m punchclock_tools.docs.pdf", description=__doc__)
    parser.add_argument("output", type=Path, help="where to write the PDF (make docs: build/docs/design.pdf)")
    args = parser.parse_args(argv)
    print(f"built {build(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
