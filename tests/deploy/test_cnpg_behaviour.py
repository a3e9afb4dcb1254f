"""The manifests read as CloudNativePG and Kubernetes would act on them (issue 13), checked as data on the
rendered overlays: migrations that cannot deadlock or race, the operator's own traffic admitted, no
acknowledged stamp lost in a failover, a failover budget that fits CloudNativePG, safe updates, a recovery
that is prod with another bootstrap, and a drain that fits its grace period.

Each overlay is rendered lazily, so pointing PUNCHCLOCK_KUSTOMIZE_ROOT at an older checkout shows which of
these checks that revision fails (an overlay it lacks fails only the tests that need it)."""

from __future__ import annotations

import copy
import functools
import ipaddress
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from punchclock.app import WRITER_STOP_SECONDS
from punchclock_tools.manifests import OVERLAYS, Manifest, kubernetes_root, one, render, render_directory
from tests.deploy.netpol import Endpoint, admits

Render = Callable[[str], list[Manifest]]
REPLICATED = ("prod", "recovery")
DB_CLUSTER = "punchclock-db"
OPERATOR = Endpoint("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})
HOOK_ANNOTATIONS = ("argocd.argoproj.io/hook", "helm.sh/hook")
# CloudNativePG's detection of a lost node (its failover documentation, "Detection of node-level failures"):
# kube-controller-manager's --node-monitor-grace-period (50 s since Kubernetes 1.32) plus one
# --node-monitor-period poll (5 s), after which the failover starts (after .spec.failoverDelay).
NODE_MONITOR_GRACE_SECONDS = 50
NODE_MONITOR_PERIOD_SECONDS = 5
PROMOTION_ALLOWANCE_SECONDS = 15  # promotion, the -rw Service's endpoint, the pool's reconnect
POOL_CLOSE_SECONDS = 5  # PostgresStore.close() waits at most 5 s for pool.close() (src/punchclock/store/postgres.py)
GRACE_MARGIN_SECONDS = 10
MIN_OPERATOR = (1, 28)  # postgresql.synchronous.failoverQuorum
RESERVED_CONNECTIONS = 20  # superuser_reserved_connections, the operator, the exporter, migrate initContainers


@pytest.fixture(scope="module")
def manifests() -> Render:
    """The overlays of kubernetes_root(), each rendered on first use."""
    return functools.cache(render)


def config(objects: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = one(objects, "ConfigMap")["data"]
    return data


def pod_of(objects: list[Manifest]) -> Manifest:
    spec: Manifest = one(objects, "Deployment", "punchclock")["spec"]["template"]["spec"]
    return spec


def app_endpoint(objects: list[Manifest]) -> Endpoint:
    deployment = one(objects, "Deployment", "punchclock")
    return Endpoint(deployment["metadata"]["namespace"], deployment["spec"]["template"]["metadata"]["labels"])


def instance_endpoint(objects: list[Manifest]) -> Endpoint:
    cluster = one(objects, "Cluster", DB_CLUSTER)
    labels = {"cnpg.io/cluster": DB_CLUSTER, "cnpg.io/instanceRole": "primary", "cnpg.io/podRole": "instance"}
    return Endpoint(cluster["metadata"]["namespace"], labels)


def policies(objects: list[Manifest]) -> list[Manifest]:
    return [m for m in objects if m["kind"] == "NetworkPolicy"]


# --- Migrations ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_hook_needs_a_resource_of_its_own_sync(manifests: Render, overlay: str) -> None:
    """No object is an Argo CD or Helm hook (a PreSync hook runs before the ServiceAccount, ConfigMap and
    database Secret of its own sync exist), and no versioned migration Job has to be renamed per release."""
    hooks = [
        f"{m['kind']}/{m['metadata']['name']}: {key}"
        for m in manifests(overlay)
        for key in HOOK_ANNOTATIONS
        if key in m["metadata"].get("annotations", {})
    ]
    assert hooks == []
    assert [m["metadata"]["name"] for m in manifests(overlay) if m["kind"] == "Job"] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_app_pod_migrates_before_it_serves(manifests: Render, overlay: str) -> None:
    """The Deployment's pods run `punchclock migrate` in an initContainer (advisory-locked, idempotent) with the
    server's image, configuration, credentials and CA, waiting long for the database, on one connection."""
    pod = pod_of(manifests(overlay))
    (server,) = pod["containers"]
    migrate = [c for c in pod.get("initContainers", []) if c.get("args") == ["migrate"]]
    assert len(migrate) == 1, "no initContainer runs `punchclock migrate`"
    (init,) = migrate
    assert init["image"] == server["image"]
    assert init["envFrom"] == server["envFrom"]
    env = {e["name"]: e["value"] for e in init.get("env", [])}
    assert float(env["PUNCHCLOCK_STARTUP_WAIT_SECONDS"]) >= 300
    assert env["PUNCHCLOCK_POOL_SIZE"] == "1"
    settings = config(manifests(overlay))
    mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    for path in (settings["DATABASE_URL_FILE"], settings["DB_SSLROOTCERT"]):
        directory = path.rpartition("/")[0]
        assert directory in mounts, f"{path} is not mounted in the migrate initContainer"
        assert {"name": mounts[directory], "mountPath": directory, "readOnly": True} in server["volumeMounts"]
    assert settings["DB_SSLMODE"] == "verify-full"


# --- The operator's traffic ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_database_policy_admits_the_instances_and_the_operator(manifests: Render, overlay: str) -> None:
    """Instances reach each other on 5432 (replication) and 8000 (the primary's liveness isolation check calls
    /failsafe on every instance), the operator reaches 8000 and 5432, the app reaches 5432."""
    objects = manifests(overlay)
    rules, instance = policies(objects), instance_endpoint(objects)
    standby = Endpoint(instance.namespace, {**instance.labels, "cnpg.io/instanceRole": "replica"})
    assert admits(rules, instance, standby, 8000), "the primary cannot reach a standby's port 8000"
    assert admits(rules, standby, instance, 8000), "a standby cannot reach the primary's port 8000"
    assert admits(rules, standby, instance, 5432)
    assert admits(rules, OPERATOR, instance, 8000)
    assert admits(rules, OPERATOR, instance, 5432)
    assert admits(rules, app_endpoint(objects), instance, 5432)
    stranger = Endpoint(instance.namespace, {"app.kubernetes.io/name": "something-else"})
    assert not admits(rules, stranger, instance, 5432)
    assert not admits(rules, stranger, instance, 8000)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_app_resolves_names_through_node_local_dns(manifests: Render, overlay: str) -> None:
    """The app may send DNS to a host-network resolver (NodeLocal DNSCache on 169.254.20.10, or the kube-dns
    address bound on the node), which no podSelector matches, as well as to kube-dns pods."""
    objects = manifests(overlay)
    app = app_endpoint(objects)
    node_local = Endpoint(ip="169.254.20.10")
    for protocol in ("UDP", "TCP"):
        assert admits(policies(objects), app, node_local, 53, protocol)
    assert not admits(policies(objects), app, Endpoint(ip="203.0.113.7"), 443), "app egress is not restricted"


def test_a_host_network_ingress_controller_can_be_admitted(tmp_path: Path) -> None:
    """With components/hostnetwork-ingress, a controller on the host network (its node's address) reaches the
    app's port; without it, it does not."""
    component = kubernetes_root() / "components" / "hostnetwork-ingress"
    assert (component / "kustomization.yaml").is_file(), "no component admits a host-network ingress controller"
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(kubernetes_root() / "overlays" / "prod", tmp_path)],  # kustomize: relative
        "components": [os.path.relpath(component, tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    with_component, without = render_directory(tmp_path), render("prod")
    (cidr,) = [
        peer["ipBlock"]["cidr"]
        for rule in one(with_component, "NetworkPolicy", "punchclock")["spec"]["ingress"]
        for peer in rule["from"]
        if "ipBlock" in peer
    ]
    node = Endpoint(ip=str(next(ipaddress.ip_network(cidr).hosts())))
    assert admits(policies(with_component), node, app_endpoint(with_component), 8000)
    assert not admits(policies(without), node, app_endpoint(without), 8000)


# --- Failover ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", REPLICATED)
def test_failover_promotes_only_a_standby_with_every_acknowledged_commit(manifests: Render, overlay: str) -> None:
    """Quorum synchronous replication with durability required and failoverQuorum, so the operator never
    promotes the standby of `ANY 1` that lacks acknowledged commits."""
    synchronous = one(manifests(overlay), "Cluster", DB_CLUSTER)["spec"]["postgresql"]["synchronous"]
    assert synchronous["method"] == "any"
    assert synchronous["dataDurability"] == "required"
    assert synchronous.get("failoverQuorum") is True


def test_docs_require_an_operator_that_knows_failover_quorum() -> None:
    """docs/kubernetes.md states a CloudNativePG minimum of at least 1.28, where failoverQuorum is stable."""
    text = (kubernetes_root().parents[1] / "docs" / "kubernetes.md").read_text()
    (minimum,) = re.findall(r"CloudNativePG operator (\d+)\.(\d+) or newer", text)
    assert tuple(map(int, minimum)) >= MIN_OPERATOR


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_failover_budget_covers_cloudnativepg_failover(manifests: Render, overlay: str) -> None:
    """PUNCHCLOCK_FAILOVER_BUDGET_SECONDS covers CloudNativePG's detection of a lost node (grace period plus one
    poll), the Cluster's failoverDelay and the promotion; the Ingress does not time out before the app answers."""
    objects = manifests(overlay)
    budget = float(config(objects)["PUNCHCLOCK_FAILOVER_BUDGET_SECONDS"])
    delay = one(objects, "Cluster", DB_CLUSTER)["spec"].get("failoverDelay", 0)
    needed = NODE_MONITOR_GRACE_SECONDS + NODE_MONITOR_PERIOD_SECONDS + delay + PROMOTION_ALLOWANCE_SECONDS
    assert budget >= needed
    annotations = one(objects, "Ingress")["metadata"].get("annotations", {})
    assert float(annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", 60)) > budget


def test_docs_state_the_kubernetes_failover_budget(manifests: Render) -> None:
    """docs/kubernetes.md quotes the budget config.env sets, not the Patroni cluster's."""
    budget = config(manifests("prod"))["PUNCHCLOCK_FAILOVER_BUDGET_SECONDS"]
    text = (kubernetes_root().parents[1] / "docs" / "kubernetes.md").read_text()
    assert f"`PUNCHCLOCK_FAILOVER_BUDGET_SECONDS` = {budget} s" in text


# --- Updates, spread, QoS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_primary_updates_by_switchover_with_a_short_smart_shutdown(manifests: Render, overlay: str) -> None:
    """The primary is updated by a switchover, and a stopping instance waits seconds, not 180, for clients
    that never leave (the app's pool), while stopDelay keeps the 15 s CloudNativePG needs after it."""
    spec = one(manifests(overlay), "Cluster", DB_CLUSTER)["spec"]
    assert spec.get("primaryUpdateMethod") == "switchover"
    smart = spec.get("smartShutdownTimeout", 180)
    assert smart <= 30
    assert spec.get("stopDelay", 1800) - smart >= 15


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topology_spread_honours_node_taints(manifests: Render, overlay: str) -> None:
    """Every topology spread constraint (app and database) sets nodeTaintsPolicy: Honor, so nodes the pods
    cannot run on are not empty domains capping the app below the HPA maximum."""
    objects = manifests(overlay)
    constraints = pod_of(objects).get("topologySpreadConstraints", [])
    constraints += one(objects, "Cluster", DB_CLUSTER)["spec"].get("topologySpreadConstraints", [])
    assert constraints
    assert [c["topologyKey"] for c in constraints if c.get("nodeTaintsPolicy") != "Honor"] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitors_carry_a_release_label(manifests: Render, overlay: str) -> None:
    """PodMonitor, ServiceMonitor and PrometheusRule carry `release:` for the common operator selectors."""
    kinds = {"PodMonitor", "ServiceMonitor", "PrometheusRule"}
    monitors = [m for m in manifests(overlay) if m["kind"] in kinds]
    assert {m["kind"] for m in monitors} == kinds
    assert [m["kind"] for m in monitors if not m["metadata"]["labels"].get("release")] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_database_pods_are_guaranteed_qos(manifests: Render, overlay: str) -> None:
    """PostgreSQL's requests equal its limits, and so do the Barman Cloud sidecar's where the plugin runs."""
    objects = manifests(overlay)
    cluster = one(objects, "Cluster", DB_CLUSTER)["spec"]
    resources = [cluster["resources"]]
    if cluster.get("plugins"):
        store = one(objects, "ObjectStore")["spec"]
        resources.append(store.get("instanceSidecarConfiguration", {}).get("resources", {}))
    for resource in resources:
        assert set(resource.get("limits", {})) >= {"cpu", "memory"}
        assert resource.get("requests") == resource.get("limits")


def test_prod_sizes_its_database_itself() -> None:
    """The prod overlay sets the database's resources and shared_buffers rather than inheriting base's."""
    patch = yaml.safe_load((kubernetes_root() / "overlays" / "prod" / "cluster.yaml").read_text())["spec"]
    assert "resources" in patch
    assert "shared_buffers" in patch["postgresql"].get("parameters", {})


@pytest.mark.parametrize("overlay", REPLICATED)
def test_max_connections_fit_the_autoscaler_maximum(manifests: Render, overlay: str) -> None:
    """max_connections holds every pool the HPA may run at once (maximum plus the rollout's surge pod) and
    reserved connections."""
    objects = manifests(overlay)
    parameters = one(objects, "Cluster", DB_CLUSTER)["spec"]["postgresql"].get("parameters", {})
    pods = one(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    pods += int(one(objects, "Deployment", "punchclock")["spec"]["strategy"]["rollingUpdate"]["maxSurge"])
    needed = pods * int(config(objects)["PUNCHCLOCK_POOL_SIZE"]) + RESERVED_CONNECTIONS
    assert int(parameters.get("max_connections", 100)) >= needed


@pytest.mark.parametrize("overlay", REPLICATED)
def test_namespace_enforces_restricted_pod_security(manifests: Render, overlay: str) -> None:
    """The namespace admits only pods meeting the restricted Pod Security Standard."""
    labels = one(manifests(overlay), "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_covers_the_whole_drain_with_a_margin(manifests: Render, overlay: str) -> None:
    """terminationGracePeriodSeconds covers the native preStop sleep, the drain delay, the drain bound, the
    writer's final commit and the pool's close, with at least 10 s to spare."""
    objects = manifests(overlay)
    pod, settings = pod_of(objects), config(objects)
    (server,) = pod["containers"]
    pre_stop = server["lifecycle"]["preStop"]
    assert "sleep" in pre_stop, "preStop should be Kubernetes' sleep action, not an exec of the image's sleep"
    needed = (
        pre_stop["sleep"]["seconds"]
        + float(settings.get("PUNCHCLOCK_DRAIN_DELAY_SECONDS", 0))
        + float(settings.get("PUNCHCLOCK_DRAIN_SECONDS", 10))
        + WRITER_STOP_SECONDS
        + POOL_CLOSE_SECONDS
    )
    assert pod["terminationGracePeriodSeconds"] >= needed + GRACE_MARGIN_SECONDS


# --- Recovery ---------------------------------------------------------------------------------------------


def _without_bootstrap(cluster: Manifest) -> Manifest:
    spec: Manifest = copy.deepcopy(cluster["spec"])
    for key in ("bootstrap", "externalClusters"):
        spec.pop(key, None)
    for plugin in spec.get("plugins", []):
        plugin.get("parameters", {}).pop("serverName", None)
    return spec


def test_recovery_is_prod_with_another_bootstrap(manifests: Render) -> None:
    """The recovery overlay renders prod's objects, and its Cluster is prod's (parameters, resources, spread,
    anti-affinity, synchronous replication) except for the bootstrap and the archive's serverName."""
    prod, recovery = manifests("prod"), manifests("recovery")
    assert sorted((m["kind"], m["metadata"]["name"]) for m in recovery if m["kind"] != "Namespace") == sorted(
        (m["kind"], m["metadata"]["name"]) for m in prod if m["kind"] != "Namespace"
    )

    def pod_security(objects: list[Manifest]) -> dict[str, str]:
        labels = one(objects, "Namespace")["metadata"]["labels"]
        return {k: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")}

    assert pod_security(recovery) == pod_security(prod)
    assert _without_bootstrap(one(recovery, "Cluster", DB_CLUSTER)) == _without_bootstrap(
        one(prod, "Cluster", DB_CLUSTER)
    )
    assert set(one(recovery, "Cluster", DB_CLUSTER)["spec"]["bootstrap"]) == {"recovery"}


def test_recovered_cluster_is_backed_up_under_a_name_of_its_own(manifests: Render) -> None:
    """The restored cluster gets a base backup (ScheduledBackup, immediate) and archives to a serverName that is
    neither the origin's nor its own cluster name (barman refuses a non-empty archive on a retried attempt)."""
    recovery = manifests("recovery")
    cluster = one(recovery, "Cluster", DB_CLUSTER)["spec"]
    (origin,) = [c for c in cluster["externalClusters"] if c["name"] == cluster["bootstrap"]["recovery"]["source"]]
    (archiver,) = [p for p in cluster["plugins"] if p.get("isWALArchiver")]
    server_name = archiver["parameters"].get("serverName", DB_CLUSTER)
    assert server_name not in {origin["plugin"]["parameters"].get("serverName", origin["name"]), DB_CLUSTER}
    backup = one(recovery, "ScheduledBackup")["spec"]
    assert backup["cluster"]["name"] == DB_CLUSTER
    assert backup.get("immediate") is True
    assert backup["method"] == "plugin"
