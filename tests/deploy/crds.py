"""Validate custom objects against the openAPIV3Schema of their CustomResourceDefinition.

The CRDs (CloudNativePG, Barman Cloud, Prometheus operator) are read from ``../shared/vendor/crds`` beside the
repository, or from ``PUNCHCLOCK_CRD_DIR``; they are never copied into the repository. Validation is strict:
an object schema that lists its properties rejects any other property, as ``kubectl apply
--validate=strict`` would, unless the schema preserves unknown fields.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from punchclock_tools.manifests import Manifest
from punchclock_tools.paths import REPO

CRD_DIR = Path(os.environ.get("PUNCHCLOCK_CRD_DIR", REPO.parent / "shared" / "vendor" / "crds"))

Schemas = dict[tuple[str, str], dict[str, Any]]


def load_schemas(crd_dir: Path = CRD_DIR) -> Schemas:
    """Map (apiVersion, kind) to a strict JSON schema for every version of every CRD in ``crd_dir``."""
    schemas: Schemas = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def is_custom(manifest: Manifest) -> bool:
    """True for kinds a CRD defines (their API group has a dot and is not a Kubernetes one)."""
    group = manifest["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def validation_errors(manifest: Manifest, schemas: Schemas) -> list[str]:
    """Every schema violation of one custom object, as readable sentences; unknown kinds are one error."""
    key = (manifest["apiVersion"], manifest["kind"])
    if key not in schemas:
        return [f"no CRD for {key[1]} {key[0]} in {CRD_DIR}"]
    validator = jsonschema.Draft7Validator(schemas[key])
    name = manifest["metadata"]["name"]
    return [
        f"{manifest['kind']}/{name} at {'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]
