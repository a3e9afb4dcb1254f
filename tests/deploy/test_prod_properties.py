"""Properties the rendered prod overlay must keep: hardened pods, safe disruption and scaling, a replicated
database reachable only from the app. The drain, migrations and CloudNativePG's behaviour: test_cnpg_behaviour."""

from __future__ import annotations

from punchclock_tools.manifests import Manifest, one, pod_specs

DB_CLUSTER = "punchclock-db"
POSTGRES_PORT = 5432
APP_COMPONENTS = {"api"}  # the server and its migrate initContainer
OPERATOR_NAMESPACE = "cnpg-system"


def containers(prod: list[Manifest]) -> list[tuple[str, Manifest, Manifest]]:
    return [
        (f"{workload}/{c['name']}", pod, c)
        for workload, pod in pod_specs(prod)
        for c in [*pod.get("initContainers", []), *pod["containers"]]
    ]


def test_every_long_running_container_has_probes(prod: list[Manifest]) -> None:
    """Every Deployment container has startup, liveness and readiness probes."""
    deployment = one(prod, "Deployment", "punchclock")
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        assert {"startupProbe", "livenessProbe", "readinessProbe"} <= container.keys(), container["name"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_every_container_has_requests_and_limits(prod: list[Manifest]) -> None:
    """Every container requests and is limited in CPU and memory."""
    for name, _pod, container in containers(prod):
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources.get(bound, {}).keys(), f"{name} lacks {bound}"


def test_every_container_runs_unprivileged(prod: list[Manifest]) -> None:
    """Non-root numeric user, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp."""
    for name, pod, container in containers(prod):
        context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert context.get("runAsNonRoot") is True, name
        assert context.get("runAsUser", 0) > 0, name
        assert context.get("readOnlyRootFilesystem") is True, name
        assert context.get("allowPrivilegeEscalation") is False, name
        assert context.get("capabilities", {}).get("drop") == ["ALL"], name
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name


def test_pod_disruption_budget_keeps_a_ready_pod_through_a_drain(prod: list[Manifest]) -> None:
    """For every replica count the autoscaler may choose, the evictions the PDB allows leave a pod ready."""
    pdb = one(prod, "PodDisruptionBudget")["spec"]
    hpa = one(prod, "HorizontalPodAutoscaler")["spec"]
    deployment = one(prod, "Deployment", "punchclock")
    assert pdb["selector"]["matchLabels"].items() <= deployment["spec"]["selector"]["matchLabels"].items()
    for replicas in range(hpa["minReplicas"], hpa["maxReplicas"] + 1):
        if "maxUnavailable" in pdb:
            evictable = _count(pdb["maxUnavailable"], replicas)
        else:
            evictable = replicas - _count(pdb["minAvailable"], replicas)
        assert 1 <= evictable < replicas, f"{replicas} replicas: {evictable} may be evicted at once"


def _count(value: int | str, replicas: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return -(-replicas * int(value[:-1]) // 100)  # Kubernetes rounds percentages up
    return int(value)


def test_autoscaler_keeps_at_least_two_pods(prod: list[Manifest]) -> None:
    """The HPA never scales the app below two pods, targets the app Deployment and alone sets its size."""
    hpa = one(prod, "HorizontalPodAutoscaler")["spec"]
    assert hpa["minReplicas"] >= 2
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "punchclock"}
    assert "replicas" not in one(prod, "Deployment", "punchclock")["spec"], "the HPA owns the replica count"


def test_app_reads_credentials_from_the_operator_secret(prod: list[Manifest]) -> None:
    """The app's database URI comes from the <cluster>-app Secret's `uri` key; no manifest holds a password."""
    for _workload, pod in pod_specs(prod):
        secrets = [v["secret"] for v in pod.get("volumes", []) if "secret" in v]
        assert {"secretName": f"{DB_CLUSTER}-app", "key": "uri"} in [
            {"secretName": s["secretName"], "key": item["key"]} for s in secrets for item in s["items"]
        ]
    assert not [m for m in prod if m["kind"] == "Secret"]
    config = one(prod, "ConfigMap")["data"]
    assert "DATABASE_URL" not in config
    assert config["DATABASE_URL_FILE"].endswith("/uri")


def test_database_is_replicated_synchronously_across_nodes(prod: list[Manifest]) -> None:
    """Three instances, at least one synchronous standby with durability required, required anti-affinity."""
    spec = one(prod, "Cluster", DB_CLUSTER)["spec"]
    assert spec["instances"] >= 3
    assert spec["postgresql"]["synchronous"]["number"] >= 1
    assert spec["postgresql"]["synchronous"]["dataDurability"] == "required"
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert spec["affinity"]["podAntiAffinityType"] == "required"


def test_database_is_backed_up_through_the_barman_cloud_plugin(prod: list[Manifest]) -> None:
    """WAL archiving and the scheduled backup both go through the plugin to the declared ObjectStore."""
    spec = one(prod, "Cluster", DB_CLUSTER)["spec"]
    store = one(prod, "ObjectStore")["metadata"]["name"]
    (plugin,) = spec["plugins"]
    assert plugin["isWALArchiver"] is True
    assert plugin["parameters"]["barmanObjectName"] == store
    backup = one(prod, "ScheduledBackup")["spec"]
    assert backup["cluster"]["name"] == DB_CLUSTER
    assert backup["method"] == "plugin"
    assert backup["pluginConfiguration"]["name"] == plugin["name"]


def test_only_the_app_reaches_the_database(prod: list[Manifest]) -> None:
    """Every rule admitting PostgreSQL traffic names app pods, the cluster's own instances or the operator."""
    policies = [
        p
        for p in prod
        if p["kind"] == "NetworkPolicy"
        and p["spec"]["podSelector"].get("matchLabels", {}).get("cnpg.io/cluster") == DB_CLUSTER
    ]
    assert policies, "no NetworkPolicy selects the database pods"
    assert all("Ingress" in p["spec"]["policyTypes"] for p in policies)
    admitted = []
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = {p.get("port") for p in rule.get("ports", [{}])}
            if POSTGRES_PORT in ports or None in ports:
                assert rule.get("from"), f"{policy['metadata']['name']} admits every peer to PostgreSQL"
                admitted += rule["from"]
    assert admitted
    for peer in admitted:
        assert _is_app_or_database_or_operator(peer), peer


def _is_app_or_database_or_operator(peer: Manifest) -> bool:
    pods = peer.get("podSelector", {}).get("matchLabels", {})
    namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
    if "ipBlock" in peer or "podSelector" not in peer:
        return False
    if namespace:
        operator = {"app.kubernetes.io/name": "cloudnative-pg"}
        return bool(namespace == {"kubernetes.io/metadata.name": OPERATOR_NAMESPACE} and pods == operator)
    is_app = (
        pods.get("app.kubernetes.io/name") == "punchclock" and pods.get("app.kubernetes.io/component") in APP_COMPONENTS
    )
    return is_app or pods == {"cnpg.io/cluster": DB_CLUSTER}


def test_app_is_reachable_only_from_the_ingress_controller_and_prometheus(prod: list[Manifest]) -> None:
    """The app's NetworkPolicy admits only the ingress controller and Prometheus, on the app port."""
    policy = one(prod, "NetworkPolicy", "punchclock")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    sources = {
        (
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        )
        for rule in policy["ingress"]
        for peer in rule["from"]
    }
    assert sources == {("ingress-nginx", "ingress-nginx"), ("monitoring", "prometheus")}
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [8000]


def test_mounted_secrets_are_readable_by_the_non_root_user(prod: list[Manifest]) -> None:
    """Pods mounting a Secret set fsGroup and a group-readable mode, since Secret files belong to root."""
    for workload, pod in pod_specs(prod):
        context = pod.get("securityContext", {})
        for volume in pod.get("volumes", []):
            if "secret" not in volume:
                continue
            mode = volume["secret"].get("defaultMode", 0o644)
            assert context.get("fsGroup") == context.get("runAsGroup"), workload
            assert mode & 0o040, f"{workload}: {volume['name']} mode {mode:o} is not group-readable"
