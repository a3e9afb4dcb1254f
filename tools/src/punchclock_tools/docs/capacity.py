"""The capacity model: what one instance and the database carry, from results/bench.json, and what a rate needs.

Measured (``make bench``): the production path (two instances behind HAProxy, a synchronous standby), the
standalone group-commit run at the headline concurrency and pgbench's one-row commits, each with the CPU one
stamp (or one commit) cost the server and PostgreSQL. Configured (``config.configured()``): the latency
objective, a pod's CPU limit and pool, the prod database's cores and ``max_connections``. Chosen here: the design
peak, the headroom and the share of a core at which a pod is full. From these come the HPA's targets and bounds,
which deploy/kubernetes carries and tests/deploy/test_capacity.py holds to this model within ``TOLERANCE``, and
the instances and database cores of each rate in ``RATES`` (docs/capacity.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

DESIGN_PEAK = 10_000  # stamps/s the deployment is sized for
HEADROOM = 2  # the HPA's maximum carries this multiple of the design peak with every pod at its target
TARGET_SHARE = 0.6  # of a pod's core: past it the HPA adds a pod; the rest carries a burst while one starts
HA_FLOOR = 2  # pods at least: one serves while another is lost or evicted
RATES = (1_000, 10_000, 100_000, 1_000_000)  # stamps/s the model is asked about
TOLERANCE = 0.25  # how far a manifest's target may sit from the model: runs move by this much on a busy machine
PERCENTILES = {0.99: "p99_ms", 0.999: "p999_ms"}  # the objective's share -> the benchmark's latency key

Run = dict[str, Any]


def per_core(cpu_us: float) -> float:
    """Stamps (or commits) per second one core carries at ``cpu_us`` microseconds of CPU each."""
    return 1e6 / cpu_us


@dataclass(frozen=True)
class Sizing:
    """What one rate of stamps needs."""

    rate: int
    instances: int  # app pods (or VM instances), each at its target, never below HA_FLOOR
    db_cores: float  # PostgreSQL cores at the target share, on the cluster's figure (every node's CPU)
    connections: int  # the instances' pools together
    fits_connections: bool  # within max_connections
    fits_prod_database: bool  # within the prod database's cores at the target share


@dataclass(frozen=True)
class Capacity:
    runs: dict[str, Run]
    headline: str  # the standalone run at the benchmark's headline concurrency
    config: dict[str, Any]  # config.configured()
    wal_bytes_per_stamp: float | None  # not recorded by make bench yet: None

    # The runs the model stands on.
    @property
    def production(self) -> Run:
        """Two instances through HAProxy, the synchronous standby: what a deployment runs."""
        return self.runs["cluster_post_app_balancer"]

    @property
    def standalone(self) -> Run:
        return self.runs[self.headline]

    @property
    def pgbench(self) -> Run:
        return self.runs["pgbench_commit"]

    @property
    def cluster_pgbench(self) -> Run:
        return self.runs["cluster_pgbench_commit"]

    # The latency objective (deploy/monitoring/rules/slo.yml).
    @property
    def objective_key(self) -> str:
        return PERCENTILES[self.config["slo"]["latency_objective"]]

    def within_objective(self, run: Run) -> bool:
        return bool(run[self.objective_key] <= 1000 * self.config["slo"]["latency_seconds"])

    # One instance.
    def server_per_core(self, run: Run) -> float:
        """Stamps/s one core of an instance carried in ``run``."""
        return per_core(run["server_cpu_us_per_stamp"])

    def db_per_core(self, run: Run) -> float:
        """Stamps (or pgbench commits) per second one PostgreSQL core took in ``run``."""
        return per_core(run["db_cpu_us_per_stamp"])

    @property
    def production_instance_cores(self) -> float:
        """The cores one instance of the production path kept busy (the run's server CPU over its instances)."""
        return float(self.production["server_cores"] / self.production["server_processes"])

    @property
    def app_per_core(self) -> float:
        """Stamps/s one core of an instance carries on the production path."""
        return per_core(self.production["server_cpu_us_per_stamp"])

    @property
    def pod_cores(self) -> float:
        """What one pod can use: its CPU limit, at most one core (one server process, one event loop)."""
        return min(1.0, float(self.config["kubernetes"]["pod_cpu_limit_cores"]))

    @property
    def cpu_target_cores(self) -> float:
        return self.pod_cores * TARGET_SHARE

    @property
    def pod_target_rate(self) -> float:
        """POST /app per second per pod at the CPU target: the HPA's and the alert's threshold."""
        return self.app_per_core * self.cpu_target_cores

    # The database.
    @property
    def db_per_core_group(self) -> float:
        """Stamps/s one PostgreSQL core takes with group commit (standalone, no standby)."""
        return per_core(self.standalone["db_cpu_us_per_stamp"])

    @property
    def db_per_core_one_row(self) -> float:
        """One-row commits/s one PostgreSQL core takes (pgbench, standalone)."""
        return per_core(self.pgbench["db_cpu_us_per_stamp"])

    @property
    def db_per_core_cluster(self) -> float:
        """Stamps/s per core of the cluster's PostgreSQL CPU (every node's, charged to the primary)."""
        return per_core(self.production["db_cpu_us_per_stamp"])

    @property
    def prod_db_ceiling(self) -> float:
        """Stamps/s the prod database's cores take at the target share, on the cluster's figure."""
        return float(self.config["kubernetes"]["db_cpu_cores"]) * TARGET_SHARE * self.db_per_core_cluster

    # The synchronous standby: the cluster's runs beside the standalone ones.
    @property
    def standby_db_cpu_factor(self) -> float:
        return float(self.production["db_cpu_us_per_stamp"] / self.standalone["db_cpu_us_per_stamp"])

    @property
    def standby_throughput_share(self) -> float:
        """The production path's stamps/s as a share of the standalone headline's, on the same machine."""
        return float(self.production["rps"] / self.standalone["rps"])

    @property
    def standby_p50_factor(self) -> float:
        return float(self.production["p50_ms"] / self.standalone["p50_ms"])

    @property
    def standby_commit_cpu_factor(self) -> float:
        return float(self.cluster_pgbench["db_cpu_us_per_stamp"] / self.pgbench["db_cpu_us_per_stamp"])

    # The autoscaler.
    def replicas_for(self, rate: float, pod_rate: float | None = None) -> int:
        return max(HA_FLOOR, math.ceil(rate / (pod_rate or self.pod_target_rate)))

    @property
    def max_replicas(self) -> int:
        return self.replicas_for(DESIGN_PEAK * HEADROOM)

    def max_replicas_range(self) -> tuple[int, int]:
        """The maxima the model gives when the per-pod rate moves by TOLERANCE either way."""
        fast, slow = self.pod_target_rate * (1 + TOLERANCE), self.pod_target_rate * (1 - TOLERANCE)
        return self.replicas_for(DESIGN_PEAK * HEADROOM, fast), self.replicas_for(DESIGN_PEAK * HEADROOM, slow)

    def size(self, rate: int) -> Sizing:
        instances = self.replicas_for(rate)
        db_cores = rate / self.db_per_core_cluster / TARGET_SHARE
        connections = instances * self.config["kubernetes"]["pool_size"]
        return Sizing(
            rate=rate,
            instances=instances,
            db_cores=db_cores,
            connections=connections,
            fits_connections=connections <= self.config["kubernetes"]["max_connections"],
            fits_prod_database=db_cores <= self.config["kubernetes"]["db_cpu_cores"],
        )

    @property
    def sizes(self) -> list[Sizing]:
        return [self.size(rate) for rate in RATES]

    @property
    def constants(self) -> dict[str, Any]:
        """The design choices, for the page."""
        return {
            "design_peak": DESIGN_PEAK,
            "headroom": HEADROOM,
            "target_share": TARGET_SHARE,
            "ha_floor": HA_FLOOR,
            "tolerance": TOLERANCE,
        }


def model(bench: dict[str, Any], configured: dict[str, Any]) -> Capacity:
    """The model of one results/bench.json (its ``data``) and the configuration."""
    runs = {run["name"]: run for run in bench["runs"]}
    return Capacity(
        runs=runs,
        headline=f"post_app_group_c{bench['connections']}",
        config=configured,
        wal_bytes_per_stamp=bench.get("wal_bytes_per_stamp"),
    )
