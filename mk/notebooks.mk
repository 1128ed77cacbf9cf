# Tutorials (notebooks/): tests/notebooks executes every one of them with nbclient (part of `make test`).
#   make test-notebooks   only the tutorials; executed copies and run times in build/notebooks/
.PHONY: test-notebooks
test-notebooks: venv sysdeps npm rucio-server-env
	$(VENV)/bin/pytest tests/notebooks $(PYTEST_ARGS)
	@echo "run times [s]:" && cat $(BUILD)/notebooks/timings.json
