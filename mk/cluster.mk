# The local HA cluster (punchclock_tools.cluster, templates in deploy/cluster) and its failure scenarios (tests/ha).
CLUSTER_APT_PACKAGES := etcd-server etcd-client haproxy supervisor pgbackrest nftables postgresql-15 python3-venv
TEST_APT_PACKAGES += $(CLUSTER_APT_PACKAGES)
CLUSTER := $(BIN)/punchclock-cluster

.PHONY: cluster-up cluster-status cluster-down cluster-scale test-ha

# `dev`, not `install`: `uv sync --no-dev` would strip the test tools from a shared .venv.
cluster-up: dev ## start etcd x3, Patroni/PostgreSQL x3, HAProxy and 2 punchclock instances on loopback
	scripts/apt-ensure $(CLUSTER_APT_PACKAGES)
	$(CLUSTER) up

cluster-status: dev ## print the leader, replication state, instance health and the URLs
	$(CLUSTER) status

cluster-scale: dev ## run N punchclock instances while the cluster serves (make cluster-scale N=3; removal drains first; a running make monitoring-up scrapes the new set)
	$(if $(N),,$(error set N, the number of instances: make cluster-scale N=3))
	$(CLUSTER) scale $(N) $(if $(CPU_QUOTA),--cpu-quota $(CPU_QUOTA))
	$(MONITORING) refresh --if-running

cluster-down: dev ## stop every process of the local cluster (data stays in .state/cluster)
	$(CLUSTER) down

test-ha: dev ## run every failure scenario against a real cluster (tens of minutes; logs and a PNG per scenario in .state/ha-logs)
	scripts/apt-ensure $(sort $(TEST_APT_PACKAGES))
	mkdir -p .state && rm -f .state/ha-report.jsonl
	PUNCHCLOCK_HA_FULL=1 PUNCHCLOCK_HA_REPORT=$(CURDIR)/.state/ha-report.jsonl \
	  PUNCHCLOCK_HA_KEEP_LOGS=$(CURDIR)/.state/ha-logs $(BIN)/pytest tests/ha -m ha $(PYTEST_ARGS)
	$(if $(PYTEST_ARGS),@echo "PYTEST_ARGS narrowed the run: results/ha.json not updated",$(BIN)/python -m punchclock_tools.docs.provenance ha .state/ha-report.jsonl --command "make test-ha")
