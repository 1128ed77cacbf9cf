"""dask-gateway-server configuration of the local facility (started by af.tools.local.runner).

The shared part (hub authentication, cluster options, limits, idle timeout) comes from af.gateway.server_config;
this file adds the backend (podman pods of the notebook image, af.gateway.container_backend; with `af up
--processes` local processes, af.gateway.local_backend), the ports and the state folder.
"""

import json
import os
import sys
from pathlib import Path

from af.gateway.container_backend import ContainerBackend
from af.gateway.local_backend import RecoveringLocalBackend
from af.gateway.server_config import configure_gateway_server
from hub_config.settings import load_settings

c = get_config()  # noqa: F821 (provided by dask-gateway-server when it loads this file)

settings = load_settings(os.environ["AF_SETTINGS"])
ports = json.loads(os.environ["AF_PORTS"])
state = Path(os.environ["AF_STATE_DIR"])
bin_dir = Path(sys.executable).parent

containers = "AF_CONTAINER_IMAGE" in os.environ
# UnsafeLocalBackend: clusters run as the gateway's own account (LocalBackend needs one unix account per user);
# with containers, each cluster is a podman pod of notebook-image containers (af.gateway.container_backend).
configure_gateway_server(
    c,
    settings,
    hub_api_url=f"http://127.0.0.1:{ports['hub']}/hub/api",
    backend_class=ContainerBackend if containers else RecoveringLocalBackend,
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

if containers:
    c.ContainerBackend.image = os.environ["AF_CONTAINER_IMAGE"]
    c.ContainerBackend.facility_id = os.environ["AF_FACILITY_ID"]
    c.ContainerBackend.publish_ip = internal_ip
    c.ContainerBackend.db_url = c.UnsafeLocalBackend.db_url
    c.ContainerBackend.db_encrypt_keys = c.UnsafeLocalBackend.db_encrypt_keys
    c.ContainerBackend.stop_clusters_on_shutdown = False
    c.ContainerBackend.clusters_directory = c.UnsafeLocalBackend.clusters_directory
    # schedulers reach the gateway API as users' servers do: through the public proxy (the host's 127.0.0.1 is
    # 10.0.2.2 in their network; the gateway's own ports are on an address they do not reach)
    c.ContainerBackend.api_url = f"http://10.0.2.2:{ports['public']}/services/dask-gateway/api"
    example_data = os.environ.get("AF_EXAMPLE_DATA")
    c.ContainerBackend.data_folders = [example_data] if example_data else []
    c.ContainerBackend.environment = {
        "AF_FACILITY_ID": os.environ["AF_FACILITY_ID"],
        **({"AF_EXAMPLE_DATA": example_data} if example_data else {}),
    }
    # CAs of https storage beyond the image's (e.g. the grid's IGTF folder), from LocalFacility(trusted_ca_dir=)
    ca_dir = os.environ.get("AF_TRUSTED_CA_DIR")
    if ca_dir:
        c.ContainerBackend.data_folders = [*c.ContainerBackend.data_folders, ca_dir]
        c.ContainerBackend.environment = {**c.ContainerBackend.environment, "X509_CERT_DIR": ca_dir}
    # the image's own dask
    c.ClusterConfig.scheduler_cmd = ["dask", "scheduler"]
    c.ClusterConfig.worker_cmd = ["dask", "worker"]
