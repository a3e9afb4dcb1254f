"""The scaling triggers follow the capacity model: the HPA's targets and bounds, the Prometheus Adapter rule behind
its request-rate metric and the VM "add capacity" alert sit where results/bench.json puts them (docs/capacity.md)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from punchclock_tools.docs import capacity, config
from punchclock_tools.manifests import KUBERNETES, Manifest, one, render_directory

REPO = Path(__file__).resolve().parents[2]
ADAPTER = KUBERNETES / "prometheus-adapter"
ALERTS = REPO / "deploy" / "monitoring" / "rules" / "punchclock.yml"
SCALED = ("prod", "recovery")  # the overlays that keep the HPA (dev runs one pod)
K8S_VERSION = "1.33.0"


@pytest.fixture(scope="module")
def model() -> capacity.Capacity:
    bench = json.loads((REPO / "results" / "bench.json").read_text())
    return capacity.model(bench, config.configured())


def hpa_spec(rendered: dict[str, list[Manifest]], overlay: str) -> dict[str, Any]:
    spec: dict[str, Any] = one(rendered[overlay], "HorizontalPodAutoscaler")["spec"]
    return spec


def metric(spec: dict[str, Any], kind: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [m for m in spec["metrics"] if m["type"] == kind]
    (only,) = found
    return only


def drift(actual: float, expected: float) -> float:
    """How far a manifest's figure sits from the model's, as a share of the model's."""
    return abs(actual - expected) / expected


def adapter_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ADAPTER / "config.yaml").read_text())
    return loaded


def add_capacity_alert() -> dict[str, Any]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    found: list[dict[str, Any]] = [r for g in groups for r in g["rules"] if r.get("alert") == "PunchclockAddCapacity"]
    (alert,) = found
    return alert


@pytest.mark.parametrize("overlay", SCALED)
def test_cpu_target_is_the_target_share_of_a_pods_core(
    rendered: dict[str, list[Manifest]], model: capacity.Capacity, overlay: str
) -> None:
    """The HPA's CPU target is an absolute value per pod: the chosen share of the one core a pod can use."""
    target = metric(hpa_spec(rendered, overlay), "Resource")["resource"]
    assert target["name"] == "cpu"
    assert target["target"]["type"] == "AverageValue"
    assert config.cores(target["target"]["averageValue"]) == pytest.approx(model.cpu_target_cores)


@pytest.mark.parametrize("overlay", SCALED)
def test_request_rate_target_follows_the_benchmark(
    rendered: dict[str, list[Manifest]], model: capacity.Capacity, overlay: str
) -> None:
    """The per-pod POST /app rate target is what a pod carries at the CPU target on the production path, within
    the model's tolerance (rerun the model and update hpa.yaml and the alert when it fails)."""
    pods = metric(hpa_spec(rendered, overlay), "Pods")["pods"]
    assert pods["target"]["type"] == "AverageValue"
    target = float(pods["target"]["averageValue"])
    assert drift(target, model.pod_target_rate) <= capacity.TOLERANCE, (target, round(model.pod_target_rate))


@pytest.mark.parametrize("overlay", SCALED)
def test_replica_bounds_carry_the_design_peak(
    rendered: dict[str, list[Manifest]], model: capacity.Capacity, overlay: str
) -> None:
    """maxReplicas carries the design peak times the headroom at the per-pod target (within the tolerance);
    minReplicas keeps the HA floor and stays below the maximum."""
    spec = hpa_spec(rendered, overlay)
    low, high = model.max_replicas_range()
    assert low <= spec["maxReplicas"] <= high, (spec["maxReplicas"], model.max_replicas)
    assert capacity.HA_FLOOR <= spec["minReplicas"] < spec["maxReplicas"]


@pytest.mark.parametrize("overlay", SCALED)
def test_scaling_up_is_prompt_and_scaling_down_is_stabilized(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Scale-up reacts on the next sync; scale-down waits out a longer window than the adapter's rate and removes
    one pod at a time, so the PDB's one eviction and the drain of each leaving pod hold."""
    behavior = hpa_spec(rendered, overlay)["behavior"]
    up, down = behavior["scaleUp"], behavior["scaleDown"]
    assert up["stabilizationWindowSeconds"] < down["stabilizationWindowSeconds"]
    assert down["stabilizationWindowSeconds"] >= 60
    assert [p["value"] for p in down["policies"] if p["type"] == "Pods"] == [1]
    assert all(p["type"] == "Pods" for p in down["policies"])


def test_add_capacity_alert_uses_the_hpa_threshold(rendered: dict[str, list[Manifest]]) -> None:
    """The VM trigger fires at the HPA's per-pod request rate, averaged over instances like the HPA does."""
    alert = add_capacity_alert()
    threshold = float(re.search(r">\s*(\d+(?:\.\d+)?)\s*$", alert["expr"].strip())[1])  # type: ignore[index]
    target = float(metric(hpa_spec(rendered, "prod"), "Pods")["pods"]["target"]["averageValue"])
    assert threshold == target
    assert alert["expr"].lstrip().startswith("avg by (namespace, job)")
    assert 'route="/app", method="POST"' in alert["expr"]


def test_drift_beyond_the_tolerance_fails(model: capacity.Capacity) -> None:
    """A benchmark whose server CPU per stamp doubled moves the per-pod rate out of the tolerance."""
    runs = copy.deepcopy(model.runs)
    runs["cluster_post_app_balancer"]["server_cpu_us_per_stamp"] *= 2
    slower = capacity.Capacity(runs, model.headline, model.config, None)
    assert drift(model.pod_target_rate, slower.pod_target_rate) > capacity.TOLERANCE


def test_adapter_config_has_the_rule_structure() -> None:
    """config.yaml is a Prometheus Adapter configuration: one rule with a series query, namespace and pod mapped
    to their resources, a renamed metric and a per-pod rate query using the adapter's templates."""
    config_yaml = adapter_config()
    assert set(config_yaml) == {"rules"}
    (rule,) = config_yaml["rules"]
    assert set(rule) == {"seriesQuery", "resources", "name", "metricsQuery"}
    assert rule["resources"] == {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}}
    assert set(rule["name"]) == {"matches", "as"}
    assert re.fullmatch(rule["name"]["matches"], "punchclock_http_requests_total")
    for template in ("<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"):
        assert template in rule["metricsQuery"]
    assert 'route="/app",method="POST"' in rule["metricsQuery"].replace(" ", "")


def test_adapter_exposes_the_metric_the_hpa_asks_for(rendered: dict[str, list[Manifest]]) -> None:
    """The adapter's metric name is the HPA's Pods metric, in every overlay that scales."""
    (rule,) = adapter_config()["rules"]
    for overlay in SCALED:
        assert metric(hpa_spec(rendered, overlay), "Pods")["pods"]["metric"]["name"] == rule["name"]["as"]


def test_adapter_configmap_renders_and_validates() -> None:
    """The kustomization renders one valid ConfigMap carrying config.yaml as it is in the repository."""
    (configmap,) = render_directory(ADAPTER)
    kubernetes_validate.validate(configmap, K8S_VERSION, strict=True)
    assert configmap["kind"] == "ConfigMap"
    assert configmap["data"]["config.yaml"] == (ADAPTER / "config.yaml").read_text()


def test_adapter_queries_parse(promtool: str, tmp_path: Path) -> None:
    """The series query and the metrics query, with the adapter's templates filled in as it fills them for a
    pod, are valid PromQL (promtool on a throwaway recording-rule file)."""
    (rule,) = adapter_config()["rules"]
    metrics_query = (
        rule["metricsQuery"]
        .replace("<<.Series>>", "punchclock_http_requests_total")
        .replace("<<.LabelMatchers>>", 'namespace="punchclock",pod=~"punchclock-a|punchclock-b"')
        .replace("<<.GroupBy>>", "pod")
    )
    assert "<<" not in metrics_query
    rules = {
        "groups": [
            {
                "name": "adapter",
                "rules": [
                    {"record": "adapter:series", "expr": rule["seriesQuery"]},
                    {"record": "adapter:metrics", "expr": metrics_query},
                ],
            }
        ]
    }
    path = tmp_path / "adapter_queries.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
