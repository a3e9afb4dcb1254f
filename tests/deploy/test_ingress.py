"""The public surface (issue 11): the Ingress routes only the stamp API, and limits each client address."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from punchclock_tools.manifests import OVERLAYS, Manifest, one, render

Render = Callable[[str], list[Manifest]]
PUBLIC = {("/app", "Prefix"), ("/display", "Exact")}
INTERNAL = ("/metrics", "/readyz", "/healthz", "/docs", "/openapi.json", "/")
NGINX = "nginx.ingress.kubernetes.io/"


@pytest.fixture(scope="module")
def manifests() -> Render:
    """The overlays, each rendered on first use (see test_cnpg_behaviour)."""
    return functools.cache(render)


def routed(path: str, paths: set[tuple[str, str]]) -> bool:
    """Whether an Ingress with these (path, pathType) pairs routes a request for ``path``."""
    for prefix, kind in paths:
        if kind == "Exact" and path == prefix:
            return True
        if kind == "Prefix" and (prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")):
            return True
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_only_the_stamp_api(manifests: Render, overlay: str) -> None:
    """Only /app (and /app/<id>) and /display are routed; /metrics, /readyz, /healthz, /docs and the
    OpenAPI document stay inside the cluster."""
    ingress = one(manifests(overlay), "Ingress")["spec"]
    paths = {(p["path"], p["pathType"]) for rule in ingress["rules"] for p in rule["http"]["paths"]}
    assert paths == PUBLIC
    assert routed("/app/42", paths)
    assert [path for path in INTERNAL if routed(path, paths)] == []
    assert "defaultBackend" not in ingress


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_limits_each_client_address(manifests: Render, overlay: str) -> None:
    """ingress-nginx limits requests per second (with a burst) and concurrent connections per client address."""
    annotations = one(manifests(overlay), "Ingress")["metadata"].get("annotations", {})
    rps = int(annotations[f"{NGINX}limit-rps"])
    connections = int(annotations[f"{NGINX}limit-connections"])
    burst = int(annotations.get(f"{NGINX}limit-burst-multiplier", 5))
    assert 1 <= rps <= 100
    assert 1 <= connections <= 200
    assert burst >= 1
