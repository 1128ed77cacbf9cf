"""Idle culling of users' servers: jupyterhub-idle-culler as a hub-managed service.

Gateway clusters are culled by the gateway itself (``gateway.cluster_idle_timeout``, see `gateway_server`) and
stopped with their owner's server (`gateway.make_post_stop_hook`).

Example:
    >>> from hub_config.settings_schema import CullingSettings
    >>> service, role = culler_service(CullingSettings(server_idle_timeout=3600, every=300))
    >>> service["command"][-2:]
    ['--timeout=3600', '--cull-every=300']
"""

from __future__ import annotations

import sys
from typing import Any

from hub_config.settings_schema import CullingSettings

SERVICE_NAME = "idle-culler"
SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def culler_service(culling: CullingSettings) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The culler's service entry and role, or None when ``culling.server_idle_timeout`` is 0."""
    timeout = int(culling.server_idle_timeout)
    if timeout == 0:
        return None
    command = [sys.executable, "-m", "jupyterhub_idle_culler"]
    if culling.server_max_age:
        command.append(f"--max-age={int(culling.server_max_age)}")
    command += [f"--timeout={timeout}", f"--cull-every={int(culling.every)}"]
    service = {"name": SERVICE_NAME, "command": command}
    role = {"name": SERVICE_NAME, "scopes": list(SCOPES), "services": [SERVICE_NAME]}
    return service, role
