"""Configured values, read from the configuration they describe (never typed into a doc).

Each value names its source; a change there changes the rendered docs, and the freshness test
(tests/docs) fails until ``make docs-md`` has rendered them again.
"""

from __future__ import annotations

import ast
import inspect
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from punchclock.settings import Settings
from punchclock_tools.cluster import balancer, control
from punchclock_tools.cluster import patroni as patroni_module
from punchclock_tools.cluster import render as cluster
from punchclock_tools.cluster.layout import new_layout
from punchclock_tools.paths import REPO


def _ini(path: Path) -> dict[str, str]:
    """``key=value`` lines of a pgBackRest file (the last one wins, as in pgBackRest)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([a-z0-9-]+)=(.*)$", line.strip())
        if match:
            values[match[1]] = match[2]
    return values


def _yaml(relative: str) -> Any:
    return yaml.safe_load((REPO / relative).read_text())


def _haproxy_checks(text: str) -> dict[str, int]:
    """inter (ms), fall and rise of the HTTP balancer's and the database router's server checks: the router's
    from its default-server line, each app server's from the options it is declared with (rendered and at run
    time alike, ``balancer.SERVER_OPTIONS``)."""
    timing = r"inter (\d+)ms .*?fall (\d+) rise (\d+)"
    db_inter, db_fall, db_rise = re.findall(r"default-server " + timing, text)[0]
    app_inter, app_fall, app_rise = re.findall(timing, balancer.SERVER_OPTIONS)[0]
    return {
        "db_inter_ms": int(db_inter),
        "db_fall": int(db_fall),
        "db_rise": int(db_rise),
        "app_inter_ms": int(app_inter),
        "app_fall": int(app_fall),
        "app_rise": int(app_rise),
        "retry_after": int(re.search(r"hdr Retry-After (\d+)", text)[1]),  # type: ignore[index]
    }


def _local_cluster() -> tuple[dict[str, int], dict[str, str]]:
    """Members and configuration files of a fresh local cluster, as ``make cluster-up`` lays it out and renders
    them (``control.up``'s default apps; the settings in the files come from the Ansible roles' defaults)."""
    apps = inspect.signature(control.up).parameters["apps"].default
    with tempfile.TemporaryDirectory() as scratch:
        layout = new_layout(Path(scratch), apps=apps)
        counts = {"etcd": len(layout.etcd), "nodes": len(layout.nodes), "apps": len(layout.apps)}
        files = {
            "patroni": cluster.patroni_config(layout, layout.nodes[0].name),
            "haproxy": cluster.haproxy_config(layout),
            "supervisord": cluster.supervisord_config(layout),
        }
    return counts, files


def _ha_load() -> dict[str, float]:
    """The full scenarios' load (``WORKERS, RATE`` in tests/ha/test_scenarios.py), read without importing it."""
    tree = ast.parse((REPO / "tests/ha/test_scenarios.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "(WORKERS, RATE)":
            full = ast.literal_eval(node.value.body)  # type: ignore[attr-defined]
            quick = ast.literal_eval(node.value.orelse)  # type: ignore[attr-defined]
            return {"clients": full[0], "rate": full[1], "quick_clients": quick[0], "quick_rate": quick[1]}
    raise LookupError("tests/ha/test_scenarios.py no longer sets WORKERS, RATE")


def _scenario_timing() -> dict[str, float]:
    """The scenarios' fault durations (``*_SECONDS = ...`` in tests/ha/test_scenarios.py, such as ``TTL + 10``),
    evaluated against the cluster's timing without importing the test module."""
    names = {
        "TTL": cluster.TTL,
        "LOOP_WAIT": cluster.LOOP_WAIT,
        "RETRY_TIMEOUT": cluster.RETRY_TIMEOUT,
        "FAILOVER_BUDGET_SECONDS": cluster.FAILOVER_BUDGET_SECONDS,
    }
    found: dict[str, float] = {}
    tree = ast.parse((REPO / "tests/ha/test_scenarios.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.endswith("_SECONDS"):
                code = compile(ast.Expression(node.value), "test_scenarios.py", "eval")
                # Only arithmetic on the names above: no builtins, no other globals.
                found[name.lower()] = eval(code, {"__builtins__": {}}, names)  # noqa: S307
    return found


def _patroni_settings() -> dict[str, Any]:
    """The outage-related settings of a rendered Patroni configuration (deploy/cluster/templates/patroni.yml.tmpl)."""
    with tempfile.TemporaryDirectory() as scratch:
        layout = new_layout(Path(scratch), apps=1)
        rendered = yaml.safe_load(cluster.patroni_config(layout, layout.nodes[0].name))
    dcs = rendered["bootstrap"]["dcs"]
    parameters = dcs["postgresql"]["parameters"]
    return {
        "maximum_lag_on_failover_mb": dcs["maximum_lag_on_failover"] // 2**20,
        "maximum_lag_on_syncnode_mb": dcs["maximum_lag_on_syncnode"] // 2**20,
        "primary_start_timeout": dcs["primary_start_timeout"],
        "wal_sender_timeout": parameters["wal_sender_timeout"],
        "wal_receiver_status_interval": parameters["wal_receiver_status_interval"],
        "max_slot_wal_keep_size": parameters["max_slot_wal_keep_size"],
        "max_connections": parameters["max_connections"],
    }


def _haproxy_timeouts(text: str) -> dict[str, str]:
    """HAProxy's check timeout and the database listeners' idle timeouts (the local cluster's haproxy.cfg)."""
    db_write = text.split("listen db_write", 1)[1].split("\nlisten ", 1)[0]
    return {
        "check_timeout": re.search(r"timeout check (\S+)", text)[1],  # type: ignore[index]
        "db_idle_timeout": re.search(r"timeout client (\S+)", db_write)[1],  # type: ignore[index]
    }


def _etcd_compaction(text: str) -> str:
    return re.search(r"--auto-compaction-retention (\S+)", text)[1]  # type: ignore[index]


def cores(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity in cores: ``"250m"`` -> 0.25, ``"2"`` -> 2.0."""
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _slo_latency() -> dict[str, float]:
    """POST /app's latency objective (deploy/monitoring/rules/slo.yml): the bucket its SLI counts, in seconds, and
    the share of requests that must fall within it (one minus the budget its slowest alert compares with)."""
    text = (REPO / "deploy/monitoring/rules/slo.yml").read_text()
    bucket = re.search(r'duration_seconds_bucket\{route="/app", le=~"(\d+(?:\.\d+)?)', text)
    budget = re.search(r"punchclock_post_app_slow:ratio_rate3d > (\d+(?:\.\d+)?)", text)
    return {"latency_seconds": float(bucket[1]), "latency_objective": round(1 - float(budget[1]), 6)}  # type: ignore[index]


def _hpa(base: dict[str, Any], prod: dict[str, Any]) -> dict[str, Any]:
    """The autoscaler's bounds, targets and behaviour (base/app/hpa.yaml; prod's patch sets its own bounds)."""
    spec = base["spec"]
    metrics = {metric["type"]: metric for metric in spec["metrics"]}
    pods = metrics["Pods"]["pods"]
    up, down = spec["behavior"]["scaleUp"], spec["behavior"]["scaleDown"]
    (down_policy,) = down["policies"]
    return {
        "hpa_base_min": spec["minReplicas"],
        "hpa_base_max": spec["maxReplicas"],
        "hpa_prod_min": prod["spec"]["minReplicas"],
        "hpa_prod_max": prod["spec"]["maxReplicas"],
        "hpa_cpu_target_cores": cores(metrics["Resource"]["resource"]["target"]["averageValue"]),
        "hpa_rps_metric": pods["metric"]["name"],
        "hpa_rps_target": float(pods["target"]["averageValue"]),
        "hpa_scale_up_window_seconds": up["stabilizationWindowSeconds"],
        "hpa_scale_up_policies": {p["type"]: (p["value"], p["periodSeconds"]) for p in up["policies"]},
        "hpa_scale_down_window_seconds": down["stabilizationWindowSeconds"],
        "hpa_scale_down_pods": down_policy["value"],
        "hpa_scale_down_period_seconds": down_policy["periodSeconds"],
    }


def _app_pod(deployment: dict[str, Any], env: Path) -> dict[str, Any]:
    """What sizes an app pod: its server container's CPU request and limit, its connection pool."""
    (server,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "punchclock"]
    pool = re.search(r"^PUNCHCLOCK_POOL_SIZE=(\d+)$", env.read_text(), re.MULTILINE)
    return {
        "pod_cpu_request_cores": cores(server["resources"]["requests"]["cpu"]),
        "pod_cpu_limit_cores": cores(server["resources"]["limits"]["cpu"]),
        "pool_size": int(pool[1]),  # type: ignore[index]
    }


def _add_capacity_alert() -> dict[str, Any]:
    """The VM trigger: PunchclockAddCapacity's per-instance rate threshold and its ``for`` (rules/punchclock.yml)."""
    rules = _yaml("deploy/monitoring/rules/punchclock.yml")
    (alert,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "PunchclockAddCapacity"]
    return {
        "threshold": float(re.search(r"> (\d+(?:\.\d+)?)\s*$", alert["expr"].strip())[1]),  # type: ignore[index]
        "for": alert["for"],
    }


def configured() -> dict[str, Any]:
    """Every configured value the docs quote, by area."""
    defaults = {
        name: field.default for name, field in Settings.model_fields.items() if field.annotation is not SecretStr
    }
    local = _ini(REPO / "deploy/backup/pgbackrest.conf.tmpl")
    s3 = _ini(REPO / "deploy/backup/pgbackrest-s3.conf.sample")
    counts, rendered = _local_cluster()
    patroni = rendered["patroni"]
    hpa_base = _yaml("deploy/kubernetes/base/app/hpa.yaml")
    hpa_prod = _yaml("deploy/kubernetes/overlays/prod/hpa.yaml")
    objectstore = _yaml("deploy/kubernetes/overlays/prod/backup/objectstore.yaml")
    cnpg = _yaml("deploy/kubernetes/overlays/prod/cluster.yaml")
    base_cnpg = _yaml("deploy/kubernetes/base/database/cluster.yaml")
    deployment = _yaml("deploy/kubernetes/base/app/deployment.yaml")
    return {
        "settings": defaults,  # src/punchclock/settings.py
        "cluster": {  # punchclock_tools/cluster: render.py and layout.py (3 etcd, 3 PostgreSQL nodes, 2 apps)
            "ttl": cluster.TTL,
            "loop_wait": cluster.LOOP_WAIT,
            "retry_timeout": cluster.RETRY_TIMEOUT,
            "drain_delay_seconds": cluster.DRAIN_DELAY_SECONDS,
            "failover_budget_seconds": cluster.FAILOVER_BUDGET_SECONDS,
            **counts,
            "archive_timeout_seconds": int(re.search(r"archive_timeout: (\d+)s", patroni)[1]),  # type: ignore[index]
            **_haproxy_checks(rendered["haproxy"]),
            **_haproxy_timeouts(rendered["haproxy"]),
            "etcd_compaction_retention": _etcd_compaction(rendered["supervisord"]),
            "patroni_version": patroni_module.VERSION,
            **_patroni_settings(),
        },
        "ha_load": _ha_load(),
        "ha_timing": _scenario_timing(),
        "pgbackrest": {  # deploy/backup/pgbackrest.conf.tmpl (local) and pgbackrest-s3.conf.sample (production)
            "local_full": int(local["repo1-retention-full"]),
            "local_diff": int(local["repo1-retention-diff"]),
            "s3_full_days": int(s3["repo1-retention-full"]),
            "s3_full_type": s3["repo1-retention-full-type"],
            "archive_timeout_seconds": int(local["archive-timeout"]),
            "compress_level": int(local["compress-level"]),
            "process_max": int(local["process-max"]),
            "queue_max": local["archive-push-queue-max"],
        },
        "kubernetes": {  # deploy/kubernetes
            **_hpa(hpa_base, hpa_prod),
            **_app_pod(deployment, REPO / "deploy/kubernetes/base/app/config.env"),
            "instances": cnpg["spec"]["instances"],
            "db_cpu_cores": cores(cnpg["spec"]["resources"]["limits"]["cpu"]),  # prod, each instance
            "max_connections": int(base_cnpg["spec"]["postgresql"]["parameters"]["max_connections"]),
            "retention_days": int(objectstore["spec"]["retentionPolicy"].rstrip("d")),
        },
        "slo": _slo_latency(),  # deploy/monitoring/rules/slo.yml
        "add_capacity": _add_capacity_alert(),  # deploy/monitoring/rules/punchclock.yml
    }
