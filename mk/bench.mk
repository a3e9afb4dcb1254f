# make bench: the write path's throughput and latency beside pgbench's commit ceiling and GET /healthz, on a
# standalone PostgreSQL and on the three-node synchronous cluster of mk/cluster.mk (BENCH_CLUSTER=0 skips it).
TEST_APT_PACKAGES += wrk

# Recursive (=): CLUSTER_APT_PACKAGES (etcd, HAProxy, supervisor, pgBackRest...) is set in mk/cluster.mk.
BENCH_APT_PACKAGES = postgresql-15 wrk $(CLUSTER_APT_PACKAGES)

.PHONY: bench bench-scaling

bench: dev ## measure POST /app against pgbench and /healthz on PostgreSQL and the HA cluster (BENCH_SECONDS=2: quick, ~3 min)
	scripts/apt-ensure $(BENCH_APT_PACKAGES)
	$(BIN)/python -m bench
	$(BIN)/python -m punchclock_tools.docs.provenance bench .state/bench/bench.json --command "make bench"
	install -m 644 .state/bench/bench-concurrency.png results/bench-concurrency.png

# make bench-scaling: instances added while load rises and removed while it falls (bench/scaling.py), each under
# a CPU quota; recorded only when no request failed and nothing was lost or doubled (the run exits 1 otherwise).
bench-scaling: dev ## scale 1-2-3-2-1 instances under rising then falling load, every request checked (~5 min)
	scripts/apt-ensure $(CLUSTER_APT_PACKAGES)
	$(BIN)/python -m bench.scaling
	$(BIN)/python -m punchclock_tools.docs.provenance scaling .state/bench/scaling.json --command "make bench-scaling"
	install -D -m 644 .state/bench/scaling.png docs/img/scaling.png
