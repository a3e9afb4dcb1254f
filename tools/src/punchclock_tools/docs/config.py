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
from punchclock_tools.cluster import control
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
    """inter (ms), fall and rise of the HTTP balancer's and the database router's server checks."""
    found = re.findall(r"default-server inter (\d+)ms .*?fall (\d+) rise (\d+)", text)
    (db_inter, db_fall, db_rise), (app_inter, app_fall, app_rise) = found[0], found[1]
    return {
        "db_inter_ms": int(db_inter),
        "db_fall": int(db_fall),
        "db_rise": int(db_rise),
        "app_inter_ms": int(app_inter),
        "app_fall": int(app_fall),
        "app_rise": int(app_rise),
        "retry_after": int(re.search(r"hdr Retry-After (\d+)", text)[1]),  # type: ignore[index]
    }


def _counts() -> dict[str, int]:
    """Members of a fresh local cluster, as ``make cluster-up`` lays it out (``control.up``'s default apps)."""
    apps = inspect.signature(control.up).parameters["apps"].default
    with tempfile.TemporaryDirectory() as scratch:
        layout = new_layout(Path(scratch), apps=apps)
    return {"etcd": len(layout.etcd), "nodes": len(layout.nodes), "apps": len(layout.apps)}


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
    """HAProxy's check timeout and the database listeners' idle timeouts (deploy/cluster/templates/haproxy.cfg.tmpl)."""
    db_write = text.split("listen db_write", 1)[1].split("\nlisten ", 1)[0]
    return {
        "check_timeout": re.search(r"timeout check (\S+)", text)[1],  # type: ignore[index]
        "db_idle_timeout": re.search(r"timeout client (\S+)", db_write)[1],  # type: ignore[index]
    }


def _etcd_compaction(text: str) -> str:
    return re.search(r"--auto-compaction-retention (\S+)", text)[1]  # type: ignore[index]


def configured() -> dict[str, Any]:
    """Every configured value the docs quote, by area."""
    defaults = {
        name: field.default for name, field in Settings.model_fields.items() if field.annotation is not SecretStr
    }
    local = _ini(REPO / "deploy/backup/pgbackrest.conf.tmpl")
    s3 = _ini(REPO / "deploy/backup/pgbackrest-s3.conf.sample")
    patroni = (REPO / "deploy/cluster/templates/patroni.yml.tmpl").read_text()
    hpa_base = _yaml("deploy/kubernetes/base/app/hpa.yaml")
    hpa_prod = _yaml("deploy/kubernetes/overlays/prod/hpa.yaml")
    objectstore = _yaml("deploy/kubernetes/overlays/prod/backup/objectstore.yaml")
    cnpg = _yaml("deploy/kubernetes/overlays/prod/cluster.yaml")
    return {
        "settings": defaults,  # src/punchclock/settings.py
        "cluster": {  # punchclock_tools/cluster: render.py and layout.py (3 etcd, 3 PostgreSQL nodes, 2 apps)
            "ttl": cluster.TTL,
            "loop_wait": cluster.LOOP_WAIT,
            "retry_timeout": cluster.RETRY_TIMEOUT,
            "drain_delay_seconds": cluster.DRAIN_DELAY_SECONDS,
            "failover_budget_seconds": cluster.FAILOVER_BUDGET_SECONDS,
            **_counts(),
            "archive_timeout_seconds": int(re.search(r"archive_timeout: (\d+)s", patroni)[1]),  # type: ignore[index]
            **_haproxy_checks((REPO / "deploy/cluster/templates/haproxy.cfg.tmpl").read_text()),
            **_haproxy_timeouts((REPO / "deploy/cluster/templates/haproxy.cfg.tmpl").read_text()),
            "etcd_compaction_retention": _etcd_compaction(
                (REPO / "deploy/cluster/templates/etcd.program.tmpl").read_text()
            ),
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
            "hpa_base_min": hpa_base["spec"]["minReplicas"],
            "hpa_base_max": hpa_base["spec"]["maxReplicas"],
            "hpa_prod_min": hpa_prod["spec"]["minReplicas"],
            "hpa_prod_max": hpa_prod["spec"]["maxReplicas"],
            "hpa_cpu_percent": hpa_base["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            "hpa_scale_down_window_seconds": hpa_base["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            "instances": cnpg["spec"]["instances"],
            "retention_days": int(objectstore["spec"]["retentionPolicy"].rstrip("d")),
        },
    }
