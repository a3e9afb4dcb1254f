# make bench: the write path's throughput and latency beside pgbench's commit ceiling and GET /healthz.
TEST_APT_PACKAGES += wrk

BENCH_APT_PACKAGES := postgresql-15 wrk

.PHONY: bench

bench: dev ## measure POST /app against pgbench and /healthz (BENCH_SECONDS=2: quick, ~2 min)
	scripts/apt-ensure $(BENCH_APT_PACKAGES)
	$(BIN)/python -m bench
	$(BIN)/python -m punchclock_tools.docs.provenance bench .state/bench/bench.json --command "make bench"
	install -m 644 .state/bench/bench-concurrency.png results/bench-concurrency.png
