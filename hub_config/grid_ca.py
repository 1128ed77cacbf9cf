"""The grid CA folder (``grid_ca.configmap``) in Kubernetes pods: the ConfigMap as a read-only volume at
/etc/grid-security/certificates and X509_CERT_DIR pointing there (physlite.io trusts X509_CERT_DIR for https).
Users' servers get it through KubeSpawner (`hub_config.configure`), dask-gateway's schedulers and workers through
`af.gateway.server_config.configure_gateway_server`.

Example:
    >>> from hub_config.settings_schema import GridCaSettings
    >>> pod, container = with_grid_ca(GridCaSettings(configmap="grid-ca"), {}, {})
    >>> pod["volumes"][0]["configMap"], container["env"]
    ({'name': 'grid-ca'}, [{'name': 'X509_CERT_DIR', 'value': '/etc/grid-security/certificates'}])
"""

from __future__ import annotations

from typing import Any

from hub_config.named_items import merge_by_name
from hub_config.settings_schema import GridCaSettings

MOUNT_PATH = "/etc/grid-security/certificates"
VOLUME_NAME = "grid-ca"


def volumes(grid_ca: GridCaSettings) -> list[dict[str, Any]]:
    """The pod volumes: the ConfigMap, or none without ``grid_ca.configmap``."""
    if not grid_ca.configmap:
        return []
    return [{"name": VOLUME_NAME, "configMap": {"name": grid_ca.configmap}}]


def volume_mounts(grid_ca: GridCaSettings) -> list[dict[str, Any]]:
    """The container's read-only mount of the CA folder, or none."""
    if not grid_ca.configmap:
        return []
    return [{"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": True}]


def environment(grid_ca: GridCaSettings) -> dict[str, str]:
    """X509_CERT_DIR for the container, or nothing."""
    return {"X509_CERT_DIR": MOUNT_PATH} if grid_ca.configmap else {}


def with_grid_ca(
    grid_ca: GridCaSettings, pod_spec: dict[str, Any], container: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copies of a pod spec and a container (Kubernetes JSON, e.g. dask-gateway's ``*_extra_pod_config`` and
    ``*_extra_container_config``) with the CA folder's volume, mount and X509_CERT_DIR added to theirs."""
    if not grid_ca.configmap:
        return dict(pod_spec), dict(container)
    env = [{"name": name, "value": value} for name, value in environment(grid_ca).items()]
    return (
        {**pod_spec, "volumes": merge_by_name(pod_spec.get("volumes", []), volumes(grid_ca))},
        {
            **container,
            "volumeMounts": merge_by_name(container.get("volumeMounts", []), volume_mounts(grid_ca)),
            "env": merge_by_name(container.get("env", []), env),
        },
    )
