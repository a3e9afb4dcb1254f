# make bench: the write path's throughput and latency beside pgbench's commit ceiling and GET /healthz, on a
# standalone PostgreSQL and on the three-node synchronous cluster of mk/cluster.mk (BENCH_CLUSTER=0 skips it).
TEST_APT_PACKAGES += wrk

# Recursive (=): CLUSTER_APT_PACKAGES (etcd, HAProxy, supervisor, pgBackRest...) is set in mk/cluster.mk.
BENCH_APT_PACKAGES = postgresql-15 wrk $(CLUSTER_APT_PACKAGES)

.PHONY: bench

bench: dev ## measure POST /app against pgbench and /healthz on PostgreSQL and the HA cluster (BENCH_SECONDS=2: quick, ~3 min)
	scripts/apt-ensure $(BENCH_APT_PACKAGES)
	$(BIN)/python -m bench
	$(BIN)/python -m punchclock_tools.docs.provenance bench .state/bench/bench.json --command "make bench"
	install -m 644 .state/bench/bench-concurrency.png results/bench-concurrency.png
