"""The hub's configuration, one module per concern, shared by the local facility and the Kubernetes chart.

Entry point: `configure(c, settings)` with the traitlets config `c` of jupyterhub_config.py and the settings
from `hub_config.settings.load_settings(path)` (typed: `hub_config.settings_schema.Settings`). ``settings.platform``
picks the spawner; the rest is the same.

Modules: `settings_schema` (the settings' models), `settings` (load, validate), `auth` (IAM login), `profiles` (group-limited choices), `gateway`
(hub side of dask-gateway), `gateway_server` (import it in the gateway's own config), `culling`, `services`
(roles, operator account), `servicex`, `local_spawner` (platform "local" only).

What `configure` needs from the environment (Kubernetes: from Secrets): the variables named by
``auth.client_secret_env``, ``gateway.api_token_env``, (optional) ``services.operator_token_env``, (with
``servicex.facility``) ``servicex.api_token_env``, and
``JUPYTERHUB_CRYPT_KEY`` (auth_state encryption). It reads the issuer's discovery document at start-up.

Platform "kubernetes" differs only in: ``KubeSpawner`` as spawner, profiles as a `profile_list` callable
(KubeSpawner enforces the choice), ServiceX config written by the server's postStart hook. Ports, database and
proxy are the deployment's business (the chart / z2jh), not this package's.

Example (jupyterhub_config.py):
    >>> from hub_config import configure  # doctest: +SKIP
    >>> from hub_config.settings import load_settings  # doctest: +SKIP
    >>> configure(c, load_settings("/usr/local/etc/jupyterhub/analysis-facility/settings.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub_config import auth, culling, gateway, grid_ca, profiles, services, servicex
from hub_config.named_items import merge_by_name
from hub_config.settings_schema import Settings

__all__ = ["configure"]

# JupyterLab opens terminals as login shells (`bash -l`) when the server has no tty; Debian's /etc/profile then
# replaces PATH, and python, jupyter and physlite of the server's environment are no longer found. An interactive
# non-login bash (what a desktop terminal opens) keeps the server's environment and still reads the bashrc files.
# (A jupyter_server_config.d file cannot carry it: only extension switches are read from there.)
TERMINAL_SHELL = "--ServerApp.terminado_settings=shell_command=/bin/bash"


def _configured(section: Any, key: str, default: Any) -> Any:
    """A value already set in a traitlets config section, or `default` (unset keys are lazy placeholders)."""
    return section[key] if key in section and isinstance(section[key], type(default)) else default


def configure(c: Any, settings: Settings, discovery: dict[str, str] | None = None) -> None:
    """Apply the facility settings to the JupyterHub config `c`.

    `discovery` (the issuer's discovery document) is fetched from ``auth.issuer`` when not given.
    """
    c.JupyterHub.base_url = settings.hub.base_url
    auth.configure_auth(c, settings, discovery)
    profiles.configure_profiles(c, settings)

    hub_services = [gateway.gateway_service(settings.gateway)]
    servicex_service = servicex.servicex_service(settings)
    roles = services.facility_roles()
    if servicex_service is not None:
        hub_services.append(servicex_service)
        roles.append(servicex.servicex_role())
    for extra in (culling.culler_service(settings.culling), services.operator_service(settings.services)):
        if extra is not None:
            service, role = extra
            hub_services.append(service)
            roles.append(role)
    # Merged with what the deployment set before (z2jh's own services and roles), ours win by name.
    c.JupyterHub.services = merge_by_name(_configured(c.JupyterHub, "services", []), hub_services)
    c.JupyterHub.load_roles = merge_by_name(_configured(c.JupyterHub, "load_roles", []), roles)

    # KubeSpawner's own section overrides Spawner's for the same trait (z2jh sets KubeSpawner.environment).
    spawner_section = c.KubeSpawner if settings.platform == "kubernetes" else c.Spawner
    environment = dict(_configured(spawner_section, "environment", {}))
    environment.update(gateway.user_environment(settings.gateway))
    environment.update(servicex.user_environment(settings))
    if settings.platform == "kubernetes":
        environment.update(grid_ca.environment(settings.grid_ca))
    spawner_section.environment = environment
    args = list(_configured(spawner_section, "args", []))
    if not any(arg.startswith("--ServerApp.terminado_settings") for arg in args):
        args.append(TERMINAL_SHELL)
    spawner_section.args = args
    c.Spawner.default_url = "/lab"
    c.Spawner.post_stop_hook = gateway.make_post_stop_hook(settings)
    # Servers and clusters keep running while the hub restarts (upgrades, crashes).
    c.JupyterHub.cleanup_servers = False

    if settings.platform == "kubernetes":
        c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
        if settings.grid_ca.configmap:
            # beside the volumes z2jh configured (the home's claim, singleuser.storage.extraVolumes)
            c.KubeSpawner.volumes = merge_by_name(
                _configured(c.KubeSpawner, "volumes", []), grid_ca.volumes(settings.grid_ca)
            )
            c.KubeSpawner.volume_mounts = merge_by_name(
                _configured(c.KubeSpawner, "volume_mounts", []), grid_ca.volume_mounts(settings.grid_ca)
            )
        if servicex.endpoint(settings):
            # The hub cannot write into the user's volume: the server writes ~/servicex.yaml itself at start.
            c.KubeSpawner.lifecycle_hooks = {
                "postStart": {"exec": {"command": ["python", "-m", "af.user_server.servicex_config"]}}
            }
        return

    state_dir = Path(settings.local.state_dir).resolve()
    c.JupyterHub.spawner_class = "hub_config.local_spawner.FacilityLocalSpawner"
    c.FacilityLocalSpawner.home_dir_template = str(state_dir / "homes" / "{username}")
    c.FacilityLocalSpawner.profiles = list(settings.profiles)
    c.FacilityLocalSpawner.tutorials_source = settings.tutorials.source
    c.FacilityLocalSpawner.servicex_endpoint = servicex.endpoint(settings)
