# Remote reading (physlite.io): the Debian servers the tests start on loopback, and the remote benchmark.
APT_PACKAGES += nginx-light openssl xrootd-server xrootd-client iptables iproute2 libnetfilter-queue-dev
# XRootD requiring a token in the credential tests (ztn + SciTokens authorization)
APT_PACKAGES += xrootd-scitokens-plugins

# The rucio *server* (for the tests' real rucio on loopback, SQLite) lives in its own virtual environment: it
# pins a web stack (flask, SQLAlchemy, alembic, ...) that users of physlite never need. The client
# (rucio-clients) is in the project lock, group `remote`.
RUCIO_ENV := $(BUILD)/rucioenv
RUCIO_SERVER := rucio==41.5.1

$(RUCIO_ENV)/.installed:
	$(PYTHON) -m venv $(RUCIO_ENV)
	$(RUCIO_ENV)/bin/pip install --quiet --disable-pip-version-check $(RUCIO_SERVER)
	touch $@

.PHONY: rucio-server-env
rucio-server-env: $(RUCIO_ENV)/.installed
TEST_PREREQS += rucio-server-env

# The delay line of the remote benchmark (NFQUEUE, the kernel has no netem) runs with PyPI NetfilterQueue in a
# small virtual environment of its own: a benchmark tool, built against Debian's libnetfilter-queue.
DELAY_ENV := $(BUILD)/delayenv
DELAY_PACKAGE := netfilterqueue==1.1.0

$(DELAY_ENV)/.installed:
	$(PYTHON) -m venv $(DELAY_ENV)
	$(DELAY_ENV)/bin/pip install --quiet --disable-pip-version-check $(DELAY_PACKAGE)
	touch $@

.PHONY: delay-line-env bench-remote
delay-line-env: sysdeps $(DELAY_ENV)/.installed

# https and root:// at 20 and 50 ms round trip against uproot and a full download; writes build/bench/remote.json
BENCH_REMOTE_REPEAT ?= 3
bench-remote: venv sysdeps bench-data delay-line-env
	$(PY) tools/bench/remote.py --repeat $(BENCH_REMOTE_REPEAT) --json $(BUILD)/bench/remote.json
BENCH_TARGETS += bench-remote
