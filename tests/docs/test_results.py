"""Every results file says when, on which commit and from which tree it was produced."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

import punchclock_tools.docs.provenance as prov
from punchclock_tools.docs.results import NAMES, PROVENANCE_KEYS
from punchclock_tools.paths import REPO

FILES = sorted((REPO / "results").glob("*.json"))


def check(provenance: dict[str, object]) -> None:
    assert set(PROVENANCE_KEYS) <= set(provenance), provenance
    assert datetime.fromisoformat(str(provenance["produced_at"])).tzinfo is not None
    assert re.fullmatch(r"[0-9a-f]{40}", str(provenance["commit"])), provenance["commit"]
    # A run records its dirty flag; a transcribed or reconstructed file may say it is unknown (null).
    assert provenance["dirty"] in (True, False) or provenance.get("note"), provenance


def test_the_docs_read_every_results_file_and_no_other() -> None:
    """Given results/, then it holds exactly the files the templates read."""
    assert sorted(path.stem for path in FILES) == sorted(NAMES)


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_each_results_file_and_earlier_run_has_provenance(path: Path) -> None:
    """Given a results file, then it and each earlier run it keeps carry a complete provenance block."""
    document = json.loads(path.read_text())
    check(document["provenance"])
    for run in document.get("earlier_runs", []):
        check(run["provenance"])


def test_record_stamps_the_run_and_keeps_the_one_before(tmp_path: Path) -> None:
    """Given a JSON-lines report, when it is recorded twice, then the file holds the new run with HEAD's
    provenance and the older one under earlier_runs."""
    source = tmp_path / "report.jsonl"
    source.write_text('{"scenario": "a", "lost": 0}\n{"scenario": "b", "lost": 0}\n')
    prov.record("ha", source, "make test-ha", results=tmp_path / "results")
    source.write_text('{"scenario": "a", "lost": 1}\n')
    target = prov.record("ha", source, "make test-ha", results=tmp_path / "results")
    document = json.loads(target.read_text())
    assert document["records"] == [{"scenario": "a", "lost": 1}]
    assert [len(run["records"]) for run in document["earlier_runs"]] == [2]
    check(document["provenance"])
    assert document["provenance"]["command"] == "make test-ha"
    assert document["provenance"]["transcribed"] is False


def test_record_in_place_adds_provenance_to_the_run_itself(tmp_path: Path) -> None:
    """Given a run that wrote results/bench.json itself, when it is recorded in place, then its keys stay
    at the top level beside provenance."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "bench.json").write_text('{"post_app_rps": 1.0}')
    target = prov.record("bench", results / "bench.json", "make bench", results=results)
    document = json.loads(target.read_text())
    assert (document["post_app_rps"], document["earlier_runs"]) == (1.0, [])
    check(document["provenance"])


def test_results_itself_does_not_make_the_tree_dirty(tmp_path: Path) -> None:
    """Given a clean repository, when only results/ changes, then the provenance is not dirty; any other
    change makes it dirty."""
    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)

    def git(*args: str) -> None:
        prov._git(*args, repo=repo)

    git("init", "-q")
    (repo / "a.txt").write_text("a")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    (repo / "results" / "x.json").write_text("{}")
    assert prov.provenance("make x", repo=repo)["dirty"] is False
    (repo / "a.txt").write_text("b")
    assert prov.provenance("make x", repo=repo)["dirty_files"] == ["a.txt"]
