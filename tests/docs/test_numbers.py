"""No doc types a figure: every number of a rendered page is a templated value or on the allow-list below."""

from __future__ import annotations

import re

import pytest

from punchclock_tools.docs import diagrams
from punchclock_tools.docs.numbers import Number, unmarked, unmarked_numbers
from punchclock_tools.docs.render import render_all

# Each entry: a pattern whose match may hold numbers, and why those numbers are not figures to template.
# Keep them narrow: a pattern covers a number only where the match spans it.
ALLOWED: list[tuple[str, str]] = [
    # Structure, not figures.
    (r"(?m)^#+ \d+\.", "section numbers: the brief's seven questions"),
    (r"(?m)^\s*\d+\. ", "ordered-list markers"),
    (r"(?m)^\| \d \|", "scenario numbers in ha.md's table"),
    (r"(?i)scenarios? \d", "a scenario named by its number"),
    (r"\(\d\) ", "enumerations in prose: (1), (2)..."),
    # Versions and names.
    (r"PostgreSQL 15(\.\d+)?|postgresql-15|Python 3\.11(\.\d+)?|Debian 12|psycopg 3", "versions the project builds on"),
    (r"Patroni 4\.x|\b4\.x\b|3\.0\.2|4\.1\.5|etcd 3\.4|pgBackRest 2\.45", "versions compared or relied on"),
    (r"Kubernetes 1\.33|OpenAPI 3\.1|HTTP/1\.1", "API and protocol versions"),
    (r"RFC \d+", "RFC numbers"),
    (r"\(20\d\d\)", "a release year: Patroni 3.0.2 is from 2023"),
    (r"aes-256-cbc|6100N|mode 0700|bind\(0\)", "names: a cipher, the nodes' group ids, a file mode, a syscall"),
    # Examples and syntax.
    (r"2026-11-27[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|\+00)?|20261127T\d+", "the example restore target and its directory"),
    (r"127\.0\.0\.1(:\d+)?|\b8080\b|43553", "example addresses and ports"),
    (r"20768 and 32767", "the cluster's port range, chosen in punchclock_tools/ports.py"),
    (r"\{\"id\":1,|/app/1\b", "the example receipt"),
    (r"(?<=`)(?:200|201|400|404|405|413|500|503)(?=`)|\b(?:200|201|500|503)\b(?! ?(ms|s|MB)\b)", "HTTP status codes"),
    (r"\b[1-5]xx\b|p99\.9", "status classes (2xx, 5xx) and the p99.9 percentile's name"),
    (r"1-255", "the Idempotency-Key's length (the IETF draft's header syntax)"),
    (r"n\+1|limit=\d+|[A-Z_]+=\d+\b|BENCH_SCAN_ROWS=\"[\d ]+\"", "query and environment syntax in commands"),
    (r"pg\{1,2,3\}|for n in 1 2 3", "shell loops over the three nodes"),
    (r"2·retry_timeout", "Patroni's timing rule"),
    (r"the 1 % of", "what a p99 means"),
    (r"timeline \d+ does not match pg_control timeline \d+", "a quoted error message"),
    (r"exits 0 even on damage|\d on any mismatch \(\d when|status code \(0 ok\)", "exit and status codes"),
    # Upstream facts, not this project's figures.
    (r"below 20 s to 20|`ttl: 20`|raises it to 20|~20 s that 4\.x", "Patroni 4.x's ttl floor of 20 s"),
    # Configured values not yet read by the templates (the next step: read them like config.py does).
    (
        r"stop 1 etcd \(5 s\), then all|\(20 s\) \||down for 20 s",
        "scenario 5's phases: time.sleep() in tests/ha/test_scenarios.py",
    ),
    (r"1,000 concurrent `POST`s \(1,000 distinct rows", "tests/contract's concurrency, a test parameter"),
    (
        r"Sunday 01:15 \(\+ up to 10 min\)|Monday.Saturday 01:15|the 1st of each month, 03:30",
        "deploy/backup/systemd timers",
    ),
    (r"for 26 h \(for 10 min\)|for 15 min", "alert thresholds in deploy/monitoring/rules/backup.yml"),
]


def allowed(number: Number, spans: list[tuple[int, int]]) -> bool:
    return any(start <= number.start and number.end <= end for start, end in spans)


def typed_numbers(marked_text: str) -> list[Number]:
    text = unmarked(marked_text)
    spans = [m.span() for pattern, _ in ALLOWED for m in re.finditer(pattern, text)]
    return [n for n in unmarked_numbers(marked_text) if not allowed(n, spans)]


def report(typed: list[Number]) -> str:
    lines = "\n".join(f"  line {n.line}: {n.text!r} in {n.context.strip()[:140]}" for n in typed[:60])
    return f"{len(typed)} typed numbers; template them or allow-list them:\n{lines}"


DOCS = render_all(marked=True)
# What a diagram prints: its labels (a layout attribute such as fontsize=10 is not a figure).
LABEL = re.compile(r'\b(?:x?label)="((?:[^"\\]|\\.)*)"')
DIAGRAMS = diagrams.load_all(marked=True)


@pytest.mark.parametrize("doc", DOCS, ids=[doc.target.name for doc in DOCS])
def test_every_number_is_templated_or_allowed(doc: object) -> None:
    """Given a rendered page, then each number in it came from a placeholder or matches the allow-list."""
    typed = typed_numbers(doc.text)  # type: ignore[attr-defined]
    assert not typed, report(typed)


@pytest.mark.parametrize("diagram", DIAGRAMS, ids=[d.source.name for d in DIAGRAMS])
def test_no_diagram_types_a_figure(diagram: diagrams.Diagram) -> None:
    """Given a diagram's source, then each number its labels print is templated or on the allow-list."""
    labels = "\n".join(m[1].replace("\\n", "\n") for m in LABEL.finditer(diagram.dot))
    typed = typed_numbers(labels)
    assert not typed, report(typed)
