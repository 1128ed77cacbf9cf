# Local facility (issue 5): npm packages, `make up` / `make down`, browser for the end-to-end tests.
APT_PACKAGES += chromium
TEST_PREREQS += npm
STATE ?= state

.PHONY: npm up down

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

npm: node_modules/.installed

# Users' servers and dask clusters run in containers of the notebook image (`make images`). `make up PROCESSES=1`:
# as processes of the venv instead (af up --processes: not isolated, for development without podman).
up: venv npm seaweedfs-env $(if $(PROCESSES),,images)
	$(VENV)/bin/af up --state $(STATE) --tutorials notebooks --node-modules node_modules --example-data $(PHYSLITE_TEST_DATA) \
		$(if $(PROCESSES),--processes,--containers-conf images/containers.conf)

down: venv
	$(VENV)/bin/af down --state $(STATE)

# 30 users log in through the OIDC provider and start their servers (containers) at once: p50/p95 login -> JupyterLab, memory.
BENCH_TARGETS += bench-facility
.PHONY: bench-facility
bench-facility: venv npm images seaweedfs-env
	$(PY) -m af.tools.local.load --users 30 --json $(BUILD)/bench/facility.json
