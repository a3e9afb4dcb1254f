# punchclock's named commands. The README and CI use these verbatim.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.8
VENV := .venv
BIN := $(VENV)/bin

# Debian packages each area's tests need; area makefiles in mk/ add to these.
# openssl makes the throwaway PostgreSQL servers' TLS certificates.
TEST_APT_PACKAGES := postgresql-15 postgresql-contrib curl openssl
PYTEST_ARGS ?=

-include mk/*.mk

.PHONY: help run serve test test-unit lint typecheck install dev clean apt-packages

help: ## list the commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# A minimal Debian has no python3; the venv module is how uv itself gets installed; pip and uv fetch over
# HTTPS, which needs the CA bundle.
$(UV):
	scripts/apt-ensure python3 python3-venv ca-certificates
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV) ## create .venv with punchclock and its pinned runtime dependencies
	$(UV) sync --locked --no-dev --inexact

dev: $(UV) ## create .venv with the test and lint tools and the project's tooling (tools/) as well
	$(UV) sync --locked

run: install ## serve on http://localhost:8000 using an embedded SQLite database
	$(BIN)/punchclock serve

# PUNCHCLOCK_MAKE_TEST tells tests/test_packages.py that every package below is meant to be installed.
test: dev ## install what the tests need, then run every test suite
	scripts/apt-ensure $(sort $(TEST_APT_PACKAGES))
	PUNCHCLOCK_MAKE_TEST=1 $(BIN)/pytest $(PYTEST_ARGS)

apt-packages: # the Debian packages make test installs, on one line (read by tests/test_packages.py)
	@echo $(sort $(TEST_APT_PACKAGES))

test-unit: dev ## the fast tests that need nothing but the package
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: dev ## ruff, mypy, yamllint and ansible-lint
	$(BIN)/ruff check src tools tests bench
	$(BIN)/ruff format --check src tools tests bench
	$(BIN)/mypy
	$(BIN)/yamllint -s -c deploy/ansible/.yamllint deploy/ansible
	cd deploy/ansible && PATH=$(CURDIR)/$(BIN):$$PATH ../../$(BIN)/ansible-lint --offline

clean: ## remove the virtual environments and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
