"""dask-gateway as a JupyterHub service, seen from the hub.

- registers the `dask-gateway` service (its token comes from the env var ``gateway.api_token_env``); the hub's
  proxy sends ``/services/dask-gateway/`` to ``gateway.service_url`` (locally the dashboard guard in front of the
  gateway's proxy, in Kubernetes the gateway's traefik or the guard);
- gives users' servers the ``DASK_GATEWAY__*`` variables so that ``Gateway()`` needs no arguments;
- stops a user's clusters when their server stops, so that clusters do not outlive their users
  (dask-gateway#260; idle clusters are also stopped by the gateway's ``idle_timeout``).

Example:
    >>> from hub_config.settings_schema import GatewaySettings
    >>> user_environment(GatewaySettings())["DASK_GATEWAY__AUTH__TYPE"]
    'jupyterhub'
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from hub_config.settings import Settings, SettingsError
from hub_config.settings_schema import GatewaySettings, HubSettings

SERVICE_NAME = "dask-gateway"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
log = logging.getLogger("hub_config.gateway")


def service_prefix(hub: HubSettings) -> str:
    """The URL path under which the hub's proxy serves the gateway, e.g. ``/services/dask-gateway``."""
    return hub.base_url.rstrip("/") + f"/services/{SERVICE_NAME}"


def user_environment(gateway: GatewaySettings) -> dict[str, str]:
    """Variables for a user's server: dask-gateway's client reads its whole configuration from them."""
    return {
        "DASK_GATEWAY__ADDRESS": gateway.address,
        "DASK_GATEWAY__PROXY_ADDRESS": gateway.proxy_address,
        "DASK_GATEWAY__PUBLIC_ADDRESS": gateway.public_address,
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
        # af.user_server.dask_sidebar answers the sidebar's requests itself (all of the user's gateway clusters, "+ NEW" through
        # the gateway); the labextension's own factory is kept for clusters it starts with `labextension.initial`.
        "DASK_LABEXTENSION__FACTORY__MODULE": "dask_gateway",
        "DASK_LABEXTENSION__FACTORY__CLASS": "GatewayCluster",
    }


def gateway_api_token(gateway: GatewaySettings, environ: Mapping[str, str] = os.environ) -> str:
    """The gateway's hub service token, from the env var named by ``gateway.api_token_env``."""
    name = gateway.api_token_env
    token = environ.get(name, "")
    if not token:
        raise SettingsError(f"gateway.api_token_env: environment variable {name} is not set or empty")
    return token


START_WAIT_SECONDS = 3


def gateway_service(gateway: GatewaySettings, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The hub service entry of the gateway (not started by the hub: it must survive hub restarts)."""
    return {
        "name": SERVICE_NAME,
        "url": gateway.service_url,
        "api_token": gateway_api_token(gateway, environ),
        "oauth_no_confirm": True,
        "display": False,
        # JupyterHub waits this long at start-up for the service's URL to answer (default 30 s); the hub needs
        # nothing from the guard to start (its proxy route is set anyway), and the guard may start after it
        "timeout": START_WAIT_SECONDS,
    }


async def stop_user_clusters(api_url: str, token: str, timeout: float = 30.0) -> list[str]:
    """Stop every running cluster the owner of `token` has on the gateway at `api_url` (…/api/v1)."""
    client = AsyncHTTPClient()
    headers = {"Authorization": f"jupyterhub {token}"}
    listing = await client.fetch(
        HTTPRequest(f"{api_url}/clusters/", headers=headers, request_timeout=timeout)
    )
    names = sorted(json.loads(listing.body))
    for name in names:
        await client.fetch(
            HTTPRequest(
                f"{api_url}/clusters/{name}", method="DELETE", headers=headers, request_timeout=timeout
            )
        )
    return names


def _revoke(db: Any, token: str) -> None:
    from jupyterhub import orm

    orm_token = orm.APIToken.find(db, token)
    if orm_token is not None:
        db.delete(orm_token)
        db.commit()


def make_post_stop_hook(settings: Settings) -> Any:
    """A `Spawner.post_stop_hook` that stops the user's gateway clusters with a short-lived user token."""
    api_url = settings.gateway.service_url.rstrip("/") + service_prefix(settings.hub) + "/api/v1"

    async def post_stop_hook(spawner: Any) -> None:
        if spawner.name:  # only the default server owns the user's clusters
            return
        token = spawner.user.new_api_token(
            scopes=[ACCESS_SCOPE], expires_in=300, note="stop dask-gateway clusters after server stop"
        )
        try:
            stopped = await stop_user_clusters(api_url, token)
            if stopped:
                spawner.log.info("stopped dask-gateway clusters of %s: %s", spawner.user.name, stopped)
        except (HTTPClientError, OSError) as err:
            spawner.log.warning("could not stop dask-gateway clusters of %s: %s", spawner.user.name, err)
        finally:
            _revoke(spawner.user.db, token)

    return post_stop_hook
