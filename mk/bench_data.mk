# `make bench-data`: the production-like benchmark file (ZSTD-5, AutoFlush 1000, baskets <= 128 KiB, 50,000
# events) re-clustered from PHYSLITE_example.root with CERN ROOT. ROOT lives in its own virtual environment
# (build/rootenv), never in the project lock. Cached: the file is rebuilt only when it fails the quick check.
BENCH_DATA := $(BUILD)/data/physlite_bench_50k.root
BENCH_DATA_SOURCE := $(PHYSLITE_TEST_DATA)/PHYSLITE_example.root
BENCH_DATA_COPIES := 500
ROOTENV := $(BUILD)/rootenv
ROOT_WHEEL := root==0.1a12

$(ROOTENV)/.installed:
	$(PYTHON) -m venv $(ROOTENV)
	$(ROOTENV)/bin/pip install --quiet --disable-pip-version-check $(ROOT_WHEEL)
	touch $@

bench-data: venv
	@if $(PY) tools/bench_data/verify_bench_file.py $(BENCH_DATA) --source $(BENCH_DATA_SOURCE) \
	    --entries $$(( $(BENCH_DATA_COPIES) * 100 )) 2>/dev/null; then \
	  echo "$(BENCH_DATA) is up to date"; \
	else \
	  $(MAKE) --no-print-directory $(ROOTENV)/.installed && \
	  echo "building $(BENCH_DATA) (about 12 minutes on one core)" && \
	  $(ROOTENV)/bin/python -W ignore tools/bench_data/make_bench_file.py --source $(BENCH_DATA_SOURCE) \
	    --copies $(BENCH_DATA_COPIES) --output $(BENCH_DATA) && \
	  $(PY) tools/bench_data/verify_bench_file.py $(BENCH_DATA) --source $(BENCH_DATA_SOURCE) \
	    --entries $$(( $(BENCH_DATA_COPIES) * 100 )) --full; \
	fi
