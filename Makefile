# The only entry points of the repository: up, down, test, bench, lint, check.
# Each area adds its own targets and prerequisites in mk/<area>.mk (included at the end).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV_VERSION := 0.13.9
BUILD := build
UV := $(BUILD)/bootstrap/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
# The shared folder beside the repository (test data, upstream chart schemas); /work/shared when cloned elsewhere.
SHARED ?= $(firstword $(wildcard $(abspath ../shared) /work/shared) $(abspath ../shared))
export PHYSLITE_TEST_DATA ?= $(SHARED)/data
export AF_SUBCHART_SCHEMAS ?= $(SHARED)/schemas

# Areas append Debian packages they need (installed idempotently by `sysdeps`)
# and extra prerequisites of `make test`.
APT_PACKAGES :=
TEST_PREREQS :=
BENCH_TARGETS :=
PYTEST_ARGS ?=

.PHONY: help venv sysdeps test lint format bench bench-data

help:
	@echo "make up          start the local facility on 127.0.0.1 (see README)"
	@echo "make down        stop everything 'make up' started"
	@echo "make test        set up everything (venv, Debian and npm packages) and run the whole test suite"
	@echo "make lint        ruff"
	@echo "make bench       benchmarks against uproot/coffea (writes build/bench/*.json)"
	@echo "make check       offline validation of charts, Flux manifests and images"
	@echo "make images      build the hub and notebook images with podman (tests/images runs them)"
	@echo "make cluster     a single-node Kubernetes from upstream Go modules (make cluster-down removes it)"
	@echo "make cluster-chart  helm install of our own chart objects (subcharts off) into that cluster"
	@echo "make deploy-local   the whole chart into that cluster, local images, development IAM (AF_SUBCHARTS=dir)"

$(UV):
	$(PYTHON) -m venv $(BUILD)/bootstrap
	$(BUILD)/bootstrap/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The virtual environment comes from the committed lock only (--locked fails if pyproject and lock disagree).
$(VENV)/.synced: pyproject.toml uv.lock $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --python $(PYTHON)
	$(PY) -m physlite.decode.warmup
	touch $@

venv: $(VENV)/.synced

sysdeps:
	@missing=$$(for p in $(sort $(APT_PACKAGES)); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: venv sysdeps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# every benchmark writes build/bench/<name>.json; the areas add theirs to BENCH_TARGETS
bench: venv bench-data
	@echo "benchmark results: $(BUILD)/bench/*.json"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

include $(wildcard mk/*.mk)

# Prerequisites added by the fragments; listed here because make expands prerequisites when it reads a rule.
test: $(TEST_PREREQS)
bench: $(BENCH_TARGETS)
