"""The live tests' rules are the production rules with only their timing divided, and promtool accepts them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from punchclock_tools.monitoring import rules
from tests.monitoring.conftest import RULE_FILES, SHORTENING


def test_durations_parse_and_print_in_prometheus_syntax() -> None:
    """Prometheus durations read as seconds and come back out to the millisecond."""
    assert [rules.seconds(text) for text in ("5m", "1h30m", "2d", "500ms")] == [300, 5400, 172800, 0.5]
    assert [rules.duration(value) for value in (10, 0.5, 0)] == ["10s", "500ms", "0s"]
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        rules.seconds("5 minutes")


def test_ranges_subqueries_and_offsets_are_divided_with_a_floor() -> None:
    """Every range and offset shrinks by the factor; a range never drops below the floor."""
    shortening = rules.Shortening(factor=30, floor=5)
    expr = 'rate(x{a=~"[0-9]"}[1h]) > changes(y[1m]) + max_over_time(z[30m:1m]) + w offset 15m'
    expected = 'rate(x{a=~"[0-9]"}[120s]) > changes(y[5s]) + max_over_time(z[60s:5s]) + w offset 30s'
    assert rules.shorten_expr(expr, shortening) == expected


def test_shortened_copy_keeps_every_rule_and_only_moves_its_timing(tmp_path: Path) -> None:
    """Each production rule is in the copy with the same name, labels and annotations; its ``for:`` divided."""
    written = rules.write_shortened(RULE_FILES, tmp_path, SHORTENING)
    assert [path.name for path in written] == [path.name for path in RULE_FILES]
    for source, copy in zip(RULE_FILES, written, strict=True):
        original = [r for g in yaml.safe_load(source.read_text())["groups"] for r in g["rules"]]
        short = [r for g in yaml.safe_load(copy.read_text())["groups"] for r in g["rules"]]
        assert [{k: v for k, v in r.items() if k not in ("expr", "for")} for r in short] == [
            {k: v for k, v in r.items() if k not in ("expr", "for")} for r in original
        ]
        for before, after in zip(original, short, strict=True):
            if "for" in before:
                assert rules.seconds(after["for"]) == rules.seconds(before["for"]) / SHORTENING.factor


def test_shortened_copy_passes_promtool(tmp_path: Path) -> None:
    """promtool accepts the shortened rule files as valid rules and PromQL."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make test installs it)")
    written = rules.write_shortened(RULE_FILES, tmp_path, SHORTENING)
    proc = subprocess.run([promtool, "check", "rules", *map(str, written)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
