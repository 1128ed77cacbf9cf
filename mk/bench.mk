# `make bench` part of the reader: physlite vs uproot vs the decompression ceiling on the benchmark file.
BENCH_TARGETS += bench-reader
BENCH_REPEAT ?= 3

.PHONY: bench-reader
bench-reader: venv bench-data
	$(PY) tools/bench/reader.py --file $(BENCH_DATA) --repeat $(BENCH_REPEAT) --json $(BUILD)/bench/reader.json

# ServiceX: the facility's service (one 1-thread worker) delivering 20 columns with a cut to the real client,
# against the same query through plain uproot, and the time to first file (writes build/bench/servicex.json).
BENCH_TARGETS += bench-servicex
SERVICEX_BENCH_COPIES ?= 8

.PHONY: bench-servicex
bench-servicex: venv bench-data seaweedfs-env
	$(PY) tools/bench/servicex_delivery.py --file $(BENCH_DATA) --copies $(SERVICEX_BENCH_COPIES) \
	  --repeat $(BENCH_REPEAT) --json $(BUILD)/bench/servicex.json

# `make bench` part of the Kubernetes deployment: warm start of the one-machine cluster, chart install, login ->
# JupyterLab in a KubeSpawner pod and a gateway cluster with two worker pods, beside the local facility's same
# steps (writes build/bench/kubernetes.json). It uses the running cluster, or starts and stops one from the cache.
BENCH_TARGETS += bench-kubernetes

.PHONY: bench-kubernetes
bench-kubernetes: venv cluster-build images
	$(PY) tools/bench/kubernetes.py --json $(BUILD)/bench/kubernetes.json
