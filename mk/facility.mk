# Local facility (issue 5): npm packages, `make up` / `make down`, browser for the end-to-end tests.
APT_PACKAGES += chromium
TEST_PREREQS += npm
STATE ?= state

.PHONY: npm up down

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

npm: node_modules/.installed

# `make up CONTAINERS=1`: users' servers and dask clusters in containers of the notebook image (af up --containers)
up: venv npm seaweedfs-env $(if $(CONTAINERS),images)
	$(VENV)/bin/af up --state $(STATE) --tutorials notebooks --node-modules node_modules --example-data $(PHYSLITE_TEST_DATA) \
		$(if $(CONTAINERS),--containers --containers-conf images/containers.conf)

down: venv
	$(VENV)/bin/af down --state $(STATE)

# 30 users log in through the OIDC provider and start their servers at once (p50/p95 login -> JupyterLab).
BENCH_TARGETS += bench-facility
.PHONY: bench-facility
bench-facility: venv npm
	$(PY) -m af.tools.local.load --users 30 --json $(BUILD)/bench/facility.json
