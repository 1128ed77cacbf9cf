# Mounted by the analysis-facility chart into the hub's jupyterhub_config.d/, which Zero to JupyterHub's
# jupyterhub_config.py executes after its own configuration (with `c` in scope). Every facility decision
# lives in hub_config (installed in the hub image); this file only hands it the rendered settings.
from hub_config import configure
from hub_config.settings import load_settings

configure(c, load_settings("/usr/local/etc/jupyterhub/analysis-facility/settings.yaml"))  # noqa: F821
