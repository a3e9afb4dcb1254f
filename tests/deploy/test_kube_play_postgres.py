"""The rendered Deployment against a real PostgreSQL, played by podman: its migrate initContainer migrates the
schema from the credentials file the operator's Secret would provide, then the server serves a stamp that lands
in PostgreSQL.

What differs from a cluster, and only that: the pods use the host's network (the throwaway server listens on
loopback only) on a free port, the Secret volume is a host directory holding the same `uri` file (podman
4.3 writes kube Secret values still base64-encoded), and the server's CA is mounted at its host path. The
service runs as in production: TLS verified against that CA (verify-full), a real password."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from punchclock_tools import postgres
from punchclock_tools.http import stamp_round_trip, wait_until_ready
from punchclock_tools.manifests import Manifest, one
from punchclock_tools.podman import Podman
from punchclock_tools.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def on_host(pod: Manifest, image: str, port: int, credentials: Path, ca_dir: Path) -> Manifest:
    """A pod spec changed to run under podman on the host network with a file in place of the Secret, and the
    database's CA directory mounted where the URL's sslrootcert names it."""
    pod = copy.deepcopy(pod)
    pod["hostNetwork"] = True
    pod["volumes"].append({"name": "test-db-ca", "hostPath": {"path": str(ca_dir), "type": "Directory"}})
    for volume in pod["volumes"]:
        if "secret" in volume:
            del volume["secret"]
            volume["hostPath"] = {"path": str(credentials), "type": "Directory"}
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        container.update(image=image, imagePullPolicy="Never")
        mount = {"name": "test-db-ca", "mountPath": str(ca_dir), "readOnly": True}
        container.setdefault("volumeMounts", []).append(mount)
        container.pop("ports", None)  # host networking publishes nothing
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                container[probe]["httpGet"]["port"] = port
    return pod


@contextmanager
def played(podman: Podman, manifests: list[Manifest], path: Path) -> Iterator[None]:
    path.write_text(yaml.safe_dump_all(manifests))
    try:
        podman.run("kube", "play", str(path))  # inside the try: a failed play can leave a pod behind
        yield
    finally:
        podman.run("kube", "down", str(path), check=False)


def test_the_deployment_migrates_then_records_a_stamp_in_postgres(
    podman: Podman,
    app_image: str,
    rendered: dict[str, list[Manifest]],
    postgres_server: postgres.Server,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """Given a fresh database, the pod's initContainer migrates it and then its server stores a stamp in it, as
    production runs: TLS verified against the server's CA."""
    dev, suffix, port = rendered["dev"], uuid.uuid4().hex[:8], free_port()
    credentials = tmp_path / "db-credentials"
    credentials.mkdir()
    credentials.chmod(0o755)
    (credentials / "uri").write_text(postgres_url + "\n")
    (credentials / "uri").chmod(0o644)
    config = copy.deepcopy(one(dev, "ConfigMap"))
    config["data"].update(PORT=str(port), PUNCHCLOCK_HOST="127.0.0.1", PUNCHCLOCK_ENV="production")
    assert postgres_server.tls is not None
    ca_dir = postgres_server.tls.ca_cert.parent
    deployment = copy.deepcopy(one(dev, "Deployment", "punchclock"))
    deployment["metadata"]["name"] = f"punchclock-test-{suffix}"
    template = deployment["spec"]["template"]
    assert [c["args"] for c in template["spec"]["initContainers"]] == [["migrate"]]
    template["spec"] = on_host(template["spec"], app_image, port, credentials, ca_dir)
    # podman 4.3 removes a finished "once" init container racily ("cannot remove container ... as it is
    # running"); kept ("always"), it runs to completion before the server starts just the same. podman reads
    # the annotation from the Deployment's own metadata.
    for metadata in (deployment["metadata"], template["metadata"]):
        metadata.setdefault("annotations", {})["io.podman.annotations.init.container.type"] = "always"

    with played(podman, [config, deployment], tmp_path / "app.yaml"):
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, timeout=120)
        receipt, stamp = stamp_round_trip(url)
        assert stamp == receipt
    database = urlsplit(postgres_url).path.lstrip("/")
    count = postgres_server.psql(f"SELECT count(*) FROM stamps WHERE id = {receipt['id']}", database=database)
    assert count.strip() == "1"
