# Remote reading (physlite.io): the Debian servers the tests start on loopback, and the remote benchmark.
APT_PACKAGES += nginx-light openssl xrootd-server xrootd-client iptables libnetfilter-queue-dev

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
