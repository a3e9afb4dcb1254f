# The container image (Dockerfile, built with podman), the Kubernetes manifests (deploy/kubernetes) and the
# Prometheus rules (deploy/monitoring); their tests live in tests/deploy.
# catatonit is only a Recommends of podman, but its pause image (podman kube play) cannot be built without it;
# git gives the image its revision label.
DEPLOY_APT_PACKAGES := podman catatonit git runc debootstrap uidmap netavark aardvark-dns iptables prometheus
TEST_APT_PACKAGES += $(DEPLOY_APT_PACKAGES)
CHECKOV_VENV := $(TOOLS)/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
IMAGE ?= localhost/punchclock:dev
MANIFESTS_OUT ?= .state/k8s

.PHONY: checkov base-image image manifests prometheus-rule lint-deploy test-deploy test-fresh

# make test needs checkov for tests/deploy/test_static_checks.py.
test: $(CHECKOV)

$(CHECKOV): tests/deploy/requirements-checkov.txt
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

checkov: $(CHECKOV) ## create the pinned checkov tool env in .tools/checkov

base-image: dev ## make the local podman base image (debootstrap bookworm + python3) unless it is cached
	scripts/apt-ensure $(DEPLOY_APT_PACKAGES)
	$(BIN)/python -m punchclock_tools.podman base-image

image: dev ## build the container image with podman on the local base image (IMAGE=localhost/punchclock:dev)
	scripts/apt-ensure $(DEPLOY_APT_PACKAGES)
	$(BIN)/python -m punchclock_tools.podman image $(IMAGE)
	@echo 'run it: eval "$$($(BIN)/python -m punchclock_tools.podman env)"; podman run --rm -p 127.0.0.1:8000:8000 $(IMAGE)'

manifests: dev ## render every Kustomize overlay to .state/k8s/<overlay>.yaml (MANIFESTS_OUT=...)
	mkdir -p $(MANIFESTS_OUT)
	for overlay in dev prod recovery; do $(BIN)/kubectl kustomize deploy/kubernetes/overlays/$$overlay > $(MANIFESTS_OUT)/$$overlay.yaml; done
	@echo "rendered into $(MANIFESTS_OUT)/"

prometheus-rule: dev ## regenerate the PrometheusRule manifest from deploy/monitoring/rules/punchclock.yml and slo.yml
	$(BIN)/python -m punchclock_tools.manifests prometheusrule

lint-deploy: dev $(CHECKOV) ## hadolint, promtool and the offline manifest checks (kubernetes-validate, CRD schemas, checkov)
	scripts/apt-ensure prometheus
	$(BIN)/hadolint Dockerfile
	promtool check rules deploy/monitoring/rules/*.yml
	$(BIN)/pytest tests/deploy/test_kustomize.py tests/deploy/test_static_checks.py tests/deploy/test_monitoring_rules.py $(PYTEST_ARGS)

test-deploy: dev $(CHECKOV) ## every deployment test, including the podman image and kube play runs
	scripts/apt-ensure $(DEPLOY_APT_PACKAGES)
	$(BIN)/pytest tests/deploy $(PYTEST_ARGS)

# A clone of HEAD, so uncommitted changes are not tested; PYTEST_ARGS narrows the inner make test.
test-fresh: dev ## make run and make test on a bare Debian 12 root file system in a privileged podman container (~10 min)
	scripts/apt-ensure $(DEPLOY_APT_PACKAGES)
	$(BIN)/python -m punchclock_tools.freshmachine --repo . --pytest-args '$(PYTEST_ARGS)'
