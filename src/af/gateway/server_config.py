"""dask-gateway-server configuration shared by the local facility and Kubernetes (import it in the gateway's
config file): hub authentication, cluster options, per-user limits and cluster idle timeout.

- `FacilityHubAuthenticator`: JupyterHubAuthenticator that requires the
  ``access:services!service=dask-gateway`` scope (dask-gateway#829) and answers a malformed or unknown token
  with 401 instead of a 500, and whose ``setup`` adds `af.gateway.request_bodies.json_object_bodies` (an API
  request body that is not a JSON object is a 400, not a 500);
- the backend class is wrapped by `af.gateway.limits.limit_per_user`: ``gateway.limits`` (clusters,
  workers, cores, memory) are totals over all of one user's clusters, not only per cluster;
- ``grid_ca.configmap``: the grid CA folder and X509_CERT_DIR in KubeBackend's scheduler and worker pods;
- cluster options: worker cores and memory (bounded by ``gateway.limits``) and extra environment variables.

Example (dask_gateway_config.py):
    >>> from af.gateway.server_config import configure_gateway_server  # doctest: +SKIP
    >>> configure_gateway_server(c, settings, hub_api_url="http://127.0.0.1:8081/hub/api")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from dask_gateway_server.auth import JupyterHubAuthenticator, unauthorized
from dask_gateway_server.options import Float, Integer, Options
from dask_gateway_server.options import Mapping as MappingOption

from af.gateway.limits import PerUserLimits, UserLimits, limit_per_user
from af.gateway.request_bodies import json_object_bodies
from hub_config.gateway import SERVICE_NAME, service_prefix
from hub_config.grid_ca import with_grid_ca
from hub_config.settings import Settings
from hub_config.settings_schema import GatewaySettings, memory_bytes

GIB = 2**30


class FacilityHubAuthenticator(JupyterHubAuthenticator):
    """JupyterHubAuthenticator that never turns a bad token (nor a request body that is no JSON object) into a
    server error."""

    async def setup(self, app: web.Application) -> None:
        # The server hands its application to the authenticator before it starts: the last moment to add one.
        app.middlewares.append(json_object_bodies)
        await super().setup(app)

    def get_token(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        kind, _, token = header.strip().partition(" ")
        if kind.lower() in ("jupyterhub", "token", "bearer") and token.strip():
            return token.strip()
        return None

    async def authenticate(self, request: web.Request) -> Any:
        try:
            return await super().authenticate(request)
        except web.HTTPInternalServerError as err:
            # Upstream reports the hub's 403/4xx for an unknown or expired token as a server error.
            self.log.info("rejecting token that the hub did not accept: %s", err.reason)
            raise unauthorized("jupyterhub") from None
        except web.HTTPException:
            raise
        except Exception as err:  # the hub's answer to a garbage token is not a user model
            self.log.info("rejecting token that the hub did not accept: %s", err)
            raise unauthorized("jupyterhub") from None


def cluster_options(gateway: GatewaySettings) -> Options:
    """The options a user may pass to ``Gateway().new_cluster(...)``, bounded by ``gateway.limits``."""
    limits, worker = gateway.limits, gateway.worker
    max_memory_gib = memory_bytes(limits.max_memory) / GIB
    default_memory_gib = memory_bytes(worker.memory) / GIB

    def to_config(options: Any, user: Any) -> dict[str, Any]:
        return {
            "worker_cores": options.worker_cores,
            "worker_memory": int(options.worker_memory * GIB),
            "environment": dict(options.environment),
        }

    return Options(
        Integer(
            "worker_cores",
            default=worker.cores,
            min=1,
            max=max(1, int(limits.max_cores)),
            label="Worker cores",
        ),
        Float(
            "worker_memory",
            default=default_memory_gib,
            min=0.25,
            max=max_memory_gib,
            label="Worker memory (GiB)",
        ),
        MappingOption("environment", default={}, label="Environment variables"),
        handler=to_config,
    )


def configure_gateway_server(c: Any, settings: Settings, hub_api_url: str, backend_class: type) -> None:
    """The platform-independent gateway settings; the caller adds addresses and backend-specific settings.

    `backend_class` (e.g. UnsafeLocalBackend or KubeBackend) is wrapped by `limit_per_user`, which makes
    ``gateway.limits`` totals per user; dask-gateway's own per-cluster limits are set to the same values.
    """
    gateway = settings.gateway
    c.DaskGateway.backend_class = limit_per_user(backend_class)
    totals = UserLimits.from_settings(gateway.limits)
    section = getattr(c, PerUserLimits.__name__)
    section.user_max_clusters = totals.clusters
    section.user_max_workers = totals.workers
    section.user_max_cores = totals.cores
    section.user_max_memory = totals.memory
    c.DaskGateway.authenticator_class = FacilityHubAuthenticator
    c.JupyterHubAuthenticator.jupyterhub_api_url = hub_api_url
    c.JupyterHubAuthenticator.jupyterhub_service_name = SERVICE_NAME
    c.Proxy.prefix = service_prefix(settings.hub)
    c.Backend.cluster_options = cluster_options(gateway)
    c.ClusterConfig.idle_timeout = float(gateway.cluster_idle_timeout)
    # dask-gateway's defaults (dask-scheduler, dask-worker) are scripts distributed 2026 no longer has: on
    # Kubernetes the scheduler pod failed with 'exec: "dask-scheduler": executable file not found'
    c.ClusterConfig.scheduler_cmd = ["dask", "scheduler"]
    c.ClusterConfig.worker_cmd = ["dask", "worker"]
    c.ClusterConfig.cluster_max_workers = totals.workers
    c.ClusterConfig.cluster_max_cores = totals.cores
    c.ClusterConfig.cluster_max_memory = totals.memory
    add_grid_ca(c.KubeClusterConfig, settings)


def add_grid_ca(section: Any, settings: Settings) -> None:
    """``grid_ca.configmap`` in the scheduler and worker pods of KubeBackend (`section`: c.KubeClusterConfig),
    added to the extra pod and container config already there (the chart's backend.scheduler/worker values)."""
    if not settings.grid_ca.configmap:
        return
    for role in ("scheduler", "worker"):
        pod_key, container_key = f"{role}_extra_pod_config", f"{role}_extra_container_config"
        pod, container = with_grid_ca(
            settings.grid_ca,
            section.get(pod_key, {}),
            section.get(container_key, {}),
        )
        section[pod_key], section[container_key] = pod, container
