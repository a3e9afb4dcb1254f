# Monitoring (deploy/monitoring, punchclock_tools.monitoring): the alerts proven on a real cluster (tests/monitoring),
# Alertmanager's routing, the blackbox probe and log shipping configs, and Prometheus + Alertmanager (and the
# database exporters) beside a running `make cluster-up` cluster. promtool comes with prometheus (mk/deploy.mk
# names it).
# prometheus-alertmanager ships alertmanager and amtool; prometheus-blackbox-exporter checks its probe modules;
# rsyslog parses the JSON log lines of the log-shipping example; prometheus-postgres-exporter (one per PostgreSQL
# node, job postgres) and prometheus-node-exporter (job node) run beside the local cluster. Where systemd runs,
# installing the two exporters also starts Debian's own services on :9187 and :9100 (harmless: the tooling's
# exporters bind free loopback ports of their own and never read those).
MONITORING_APT_PACKAGES := prometheus prometheus-alertmanager prometheus-blackbox-exporter rsyslog \
	prometheus-postgres-exporter prometheus-node-exporter
TEST_APT_PACKAGES += $(MONITORING_APT_PACKAGES)
MONITORING := $(BIN)/python -m punchclock_tools.monitoring

.PHONY: test-monitoring-live monitoring-up monitoring-down monitoring-status monitoring-refresh

# make test-ha runs these too: every live alert scenario on a cluster of their own.
test-ha: test-monitoring-live

test-monitoring-live: dev ## every alert scenario on a real cluster scraped by a real Prometheus (a few minutes)
	scripts/apt-ensure $(sort $(TEST_APT_PACKAGES))
	PUNCHCLOCK_HA_FULL=1 $(BIN)/pytest tests/monitoring $(PYTEST_ARGS)

monitoring-up: dev ## Prometheus, Alertmanager and the database exporters on loopback against the running make cluster-up cluster (SHORTEN=30: rule timings / 30)
	scripts/apt-ensure $(MONITORING_APT_PACKAGES)
	$(MONITORING) up $(if $(SHORTEN),--shorten $(SHORTEN))

monitoring-down: dev ## stop what make monitoring-up started (by pid)
	$(MONITORING) down

monitoring-status: dev ## the URLs of what make monitoring-up started
	$(MONITORING) status

monitoring-refresh: dev ## scrape the instances the cluster runs now (after make cluster-scale; monitoring-up does it too)
	$(MONITORING) refresh
