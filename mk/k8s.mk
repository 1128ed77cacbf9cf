# Kubernetes deployment (issue 6): offline validation of charts/, flux/, images/ and .sops.yaml.
#   make check                 every check (python -m af.tools.check; `make test` runs it first)
#   make diff REF=<git ref>    what an upgrade from REF to the working tree would change (chart + Flux)
#   make values-reference      regenerate the generated files: the settings subtree of the chart's values.schema.json
#                              (from hub_config/settings_schema.py) and docs/values-reference.md
APT_PACKAGES += age git
TEST_PREREQS += check

.PHONY: check diff values-reference

check: venv sysdeps
	$(PY) -m af.tools.check

diff: venv
	@if [ -z "$(REF)" ]; then echo "usage: make diff REF=<git ref>  (e.g. REF=origin/main or REF=HEAD~1)" >&2; exit 2; fi
	$(PY) -m af.tools.check diff "$(REF)"

values-reference: venv
	$(PY) -m af.tools.check reference --write
