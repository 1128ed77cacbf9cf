# `make bench` part of the event model (issue 3): the reference analysis on physlite.events vs plain uproot +
# awkward + vector vs coffea's PHYSLITESchema, one thread each, and the bytes/branches of a three-field selection.
BENCH_TARGETS += bench-analysis

.PHONY: bench-analysis
bench-analysis: venv bench-data
	$(PY) tools/bench/analysis.py $(BENCH_DATA) --repeat $(BENCH_REPEAT) --json $(BUILD)/bench/analysis.json
