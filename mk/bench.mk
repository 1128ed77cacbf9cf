# `make bench` part of the reader: physlite vs uproot vs the decompression ceiling on the benchmark file.
BENCH_TARGETS += bench-reader
BENCH_REPEAT ?= 3

.PHONY: bench-reader
bench-reader: venv bench-data
	$(PY) tools/bench/reader.py --file $(BENCH_DATA) --repeat $(BENCH_REPEAT) --json $(BUILD)/bench/reader.json
