"""The rendered dev Deployment and the image agree: `podman kube play` runs the Deployment (database replaced
by the image's SQLite default on /data) and it serves a stamp."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest
import yaml

from punchclock_tools.http import stamp_round_trip, wait_until_ready
from punchclock_tools.manifests import Manifest, one
from punchclock_tools.podman import Podman
from punchclock_tools.ports import free_port

pytestmark = pytest.mark.slow

DB_ONLY_SETTINGS = ("DATABASE_URL_FILE", "PUNCHCLOCK_MIGRATE_ON_START")


def playable(dev: list[Manifest], image: str, port: int) -> list[Manifest]:
    """The dev ConfigMap and Deployment, changed only where a cluster differs from podman: the local image,
    the app port published on loopback, SQLite on /data instead of the operator's database Secret, and a
    unique name (podman names the pod after the Deployment). SQLite migrates as the server starts, so the pod
    runs without its migrate initContainer."""
    config = copy.deepcopy(one(dev, "ConfigMap"))
    deployment = copy.deepcopy(one(dev, "Deployment", "punchclock"))
    deployment["metadata"]["name"] = f"punchclock-test-{uuid.uuid4().hex[:8]}"
    for key in DB_ONLY_SETTINGS:
        del config["data"][key]
    pod = deployment["spec"]["template"]["spec"]
    pod.pop("initContainers", None)
    pod["volumes"] = [v for v in pod["volumes"] if "secret" not in v]
    (app,) = pod["containers"]
    app["volumeMounts"] = [m for m in app["volumeMounts"] if m["name"] in {v["name"] for v in pod["volumes"]}]
    app["image"] = image
    app["imagePullPolicy"] = "Never"
    app["ports"][0].update(hostPort=port, hostIP="127.0.0.1")
    return [config, deployment]


def test_dev_deployment_serves_a_stamp_under_kube_play(
    podman: Podman, app_image: str, rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    """Given the dev Deployment under kube play, a stamp is recorded as user 10001 on a read-only root."""
    port = free_port()
    manifests = playable(rendered["dev"], app_image, port)
    kube_file = tmp_path / "punchclock-dev.yaml"
    kube_file.write_text(yaml.safe_dump_all(manifests))
    try:
        podman.run("kube", "play", str(kube_file))  # inside the try: a failed play can leave a pod behind
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url)
        receipt, stamp = stamp_round_trip(url)
        assert stamp == receipt
        deployment = manifests[1]
        (app,) = deployment["spec"]["template"]["spec"]["containers"]
        name = f"{deployment['metadata']['name']}-pod-0-{app['name']}"
        (info,) = json.loads(podman.run("inspect", name).stdout)
        assert info["Config"]["User"] == "10001:10001"
        assert info["HostConfig"]["ReadonlyRootfs"] is True
    finally:
        podman.run("kube", "down", str(kube_file), check=False)
