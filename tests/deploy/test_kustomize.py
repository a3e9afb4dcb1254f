"""The Kustomize overlays render, and every object in them is valid for its API (offline)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
import yaml

from punchclock_tools.manifests import OVERLAYS, PROMETHEUS_RULE, Manifest, one, prometheus_rule
from tests.deploy import crds

K8S_VERSION = "1.33.0"  # the oldest Kubernetes these manifests target; every field used exists there
REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
)


def builtin(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if not crds.is_custom(m)]


def custom(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if crds.is_custom(m)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_uniquely_named_objects(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Given an overlay, when kustomize renders it, then it yields objects with unique kind/name pairs."""
    keys = [(m["kind"], m["metadata"]["name"]) for m in rendered[overlay]]
    assert len(keys) > 10
    assert sorted(keys) == sorted(set(keys))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_kinds_pass_strict_schema_validation(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Given the rendered overlay, every built-in object validates strictly against Kubernetes' own schema."""
    for manifest in builtin(rendered[overlay]):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field(prod: list[Manifest]) -> None:
    """A misspelt Deployment field fails validation, so the check above is not vacuous."""
    deployment = copy.deepcopy(one(prod, "Deployment"))
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_objects_match_their_crd_schemas(
    rendered: dict[str, list[Manifest]], crd_schemas: crds.Schemas, overlay: str
) -> None:
    """Given the vendored CRDs, every custom object of the overlay satisfies its CRD's schema."""
    objects = custom(rendered[overlay])
    assert {m["kind"] for m in objects} >= {"Cluster", "PodMonitor", "ServiceMonitor", "PrometheusRule"}
    errors = [error for m in objects for error in crds.validation_errors(m, crd_schemas)]
    assert errors == []


def test_recovery_overlay_recovers_to_a_target_time(rendered: dict[str, list[Manifest]]) -> None:
    """The point-in-time recovery overlay bootstraps its Cluster from the origin's backups up to a target time."""
    bootstrap = one(rendered["recovery"], "Cluster")["spec"]["bootstrap"]
    assert set(bootstrap) == {"recovery"}
    assert isinstance(bootstrap["recovery"]["recoveryTarget"]["targetTime"], str)


def test_crd_validation_rejects_an_unknown_field(prod: list[Manifest], crd_schemas: crds.Schemas) -> None:
    """A misspelt Cluster field fails CRD validation, so the check above is not vacuous."""
    cluster = copy.deepcopy(one(prod, "Cluster"))
    cluster["spec"]["instance"] = 3
    assert crds.validation_errors(cluster, crd_schemas) != []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_carries_the_recommended_labels(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Every object, and every pod template, carries the app.kubernetes.io labels."""
    missing = []
    for manifest in rendered[overlay]:
        metas = [manifest["metadata"]]
        if "template" in manifest.get("spec", {}):
            metas.append(manifest["spec"]["template"]["metadata"])
        for meta in metas:
            absent = [label for label in REQUIRED_LABELS if label not in meta.get("labels", {})]
            if absent:
                missing.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {absent}")
    assert missing == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_carry_a_version_tag(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Every image reference names a version: a tag that is not ``latest`` (or a digest)."""
    images = [c["image"] for m in rendered[overlay] for c in _containers(m)]
    images += [m["spec"]["imageName"] for m in rendered[overlay] if m["kind"] == "Cluster"]
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert "@sha256:" in image or (name and "/" not in tag and tag != "latest"), image


def test_prometheus_rule_carries_the_monitoring_rules_file() -> None:
    """The PrometheusRule manifest holds exactly the groups of the rule files manifests.RULE_FILES names."""
    assert yaml.safe_load(PROMETHEUS_RULE.read_text()) == prometheus_rule()


def _containers(manifest: Manifest) -> list[Manifest]:
    spec = manifest.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]
