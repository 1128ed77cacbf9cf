"""ServiceX seen from the hub: the facility's own service (``servicex.facility``: the hub service `servicex`,
answered by af.servicex) or an external endpoint (``servicex.endpoint``), and the users' ``servicex.yaml``.

The hub gives every server the endpoint (`user_environment`); the server writes the file at start and keeps it
carrying its token (`af.user_server.servicex_refresh`), in Kubernetes and locally alike. For the facility's
service that token is the server's own hub token (JUPYTERHUB_API_TOKEN), which the server role lets use the
service (`ACCESS_SCOPE`); the service exchanges it at ``/token/refresh``.

Example:
    >>> print(servicex_yaml("https://servicex.example.org", "TOKEN"), end="")
    api_endpoints:
    - endpoint: https://servicex.example.org
      name: facility
      token: TOKEN
    default_endpoint: facility
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml

from hub_config.gateway import ACCESS_SCOPE as GATEWAY_ACCESS_SCOPE
from hub_config.settings import SettingsError
from hub_config.settings_schema import Settings

ENDPOINT_NAME = "facility"
ENDPOINT_VARIABLE = "AF_SERVICEX_ENDPOINT"
SERVICE_NAME = "servicex"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
START_WAIT_SECONDS = 3


def servicex_yaml(endpoint: str, token: str) -> str:
    """The text of a ``servicex.yaml`` pointing the ServiceX client at `endpoint` with the user's `token`."""
    document = {
        "api_endpoints": [{"endpoint": endpoint, "name": ENDPOINT_NAME, "token": token}],
        "default_endpoint": ENDPOINT_NAME,
    }
    return yaml.safe_dump(document, sort_keys=False)


def endpoint(settings: Settings) -> str:
    """The ServiceX endpoint users' clients talk to: the external one, the facility's service (at
    ``servicex.address``, else through the hub's public URL), or '' (no ServiceX).

    Example:
        >>> endpoint(Settings.model_validate({"platform": "local", "auth": {"client_id": "h"},
        ...     "hub": {"public_url": "https://af.example.org"}, "servicex": {"facility": True}}))
        'https://af.example.org/services/servicex'
    """
    if settings.servicex.facility:
        if settings.servicex.address:
            return settings.servicex.address.rstrip("/")
        return (
            settings.hub.public_url.rstrip("/")
            + settings.hub.base_url.rstrip("/")
            + f"/services/{SERVICE_NAME}"  # the client appends /token/refresh, /servicex…
        )
    return settings.servicex.endpoint


def user_environment(settings: Settings) -> dict[str, str]:
    """Variables for a user's server: the ServiceX endpoint, when there is one.

    Example:
        >>> user_environment(Settings.model_validate({"platform": "local", "auth": {"client_id": "h"},
        ...     "servicex": {"endpoint": "https://servicex.example.org"}}))
        {'AF_SERVICEX_ENDPOINT': 'https://servicex.example.org'}
    """
    url = endpoint(settings)
    return {ENDPOINT_VARIABLE: url} if url else {}


def servicex_role() -> dict[str, Any]:
    """The service's role: its one scope lets its token use the facility's dask-gateway, where it runs its own
    cluster (as the gateway's user ``service:servicex``, within the gateway's per-user limits). It needs
    nothing else: it asks the hub's API about a user's token with that token.

    Example:
        >>> servicex_role()["scopes"]
        ['access:services!service=dask-gateway']
    """
    return {"name": SERVICE_NAME, "scopes": [GATEWAY_ACCESS_SCOPE], "services": [SERVICE_NAME]}


def servicex_service(settings: Settings, environ: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """The hub service `servicex`, or None without ``servicex.facility`` (its role: `servicex_role`); not
    started by the hub, so that it keeps running while the hub restarts."""
    if not settings.servicex.facility:
        return None
    name = settings.servicex.api_token_env
    token = environ.get(name, "")
    if not token:
        raise SettingsError(f"servicex.api_token_env: environment variable {name} is not set or empty")
    service = {
        "name": SERVICE_NAME,
        "url": settings.servicex.service_url,
        "api_token": token,
        "display": False,
        # the hub needs nothing from the service to start (its proxy route is set anyway)
        "timeout": START_WAIT_SECONDS,
    }
    return service
