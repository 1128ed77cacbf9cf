"""dask-gateway-server configuration of the local facility (started by af.tools.local.runner).

The shared part (hub authentication, cluster options, limits, idle timeout) comes from af.gateway.server_config;
this file adds the local-process backend, the ports and the state folder.
"""

import json
import os
import sys
from pathlib import Path

from af.gateway.local_backend import RecoveringLocalBackend
from af.gateway.server_config import configure_gateway_server
from hub_config.settings import load_settings

c = get_config()  # noqa: F821 (provided by dask-gateway-server when it loads this file)

settings = load_settings(os.environ["AF_SETTINGS"])
ports = json.loads(os.environ["AF_PORTS"])
state = Path(os.environ["AF_STATE_DIR"])
bin_dir = Path(sys.executable).parent

# UnsafeLocalBackend: clusters run as the gateway's own account (LocalBackend needs one unix account per user).
configure_gateway_server(
    c, settings, hub_api_url=f"http://127.0.0.1:{ports['hub']}/hub/api", backend_class=RecoveringLocalBackend
)
# 127.0.0.2 when users' code runs in containers: an address their network does not reach (af.tools.local.containers)
internal_ip = os.environ.get("AF_INTERNAL_IP", "127.0.0.1")
c.DaskGateway.address = f"{internal_ip}:{ports['gateway_api']}"
c.Proxy.address = f"{internal_ip}:{ports['gateway_web']}"
c.Proxy.tcp_address = f"127.0.0.1:{ports['gateway_tcp']}"
c.UnsafeLocalBackend.db_url = f"sqlite:///{state / 'gateway' / 'gateway.sqlite'}"
c.UnsafeLocalBackend.db_encrypt_keys = [os.environ["AF_GATEWAY_DB_KEY"]]
# Clusters survive a gateway restart; the restarted gateway finds them in its database.
c.UnsafeLocalBackend.stop_clusters_on_shutdown = False
c.UnsafeLocalBackend.clusters_directory = str(state / "gateway" / "clusters")
c.UnsafeLocalBackend.inherited_environment = [
    "PATH",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "LANG",
    "LC_ALL",
    "AF_FACILITY_ID",
    "AF_EXAMPLE_DATA",
]
# distributed 2026 has no dask-scheduler/dask-worker scripts; workers run the notebook's environment.
c.ClusterConfig.scheduler_cmd = [str(bin_dir / "dask"), "scheduler"]
c.ClusterConfig.worker_cmd = [str(bin_dir / "dask"), "worker"]
c.DaskGateway.log_level = "INFO"
