# Local facility (issue 5): npm packages, `make up` / `make down`, browser for the end-to-end tests.
APT_PACKAGES += chromium
TEST_PREREQS += npm
STATE ?= state

.PHONY: npm up down

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

npm: node_modules/.installed

up: venv npm
	$(VENV)/bin/af up --state $(STATE)

down: venv
	$(VENV)/bin/af down --state $(STATE)
