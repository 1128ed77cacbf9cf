"""JupyterHub configuration of the local facility (started by af.tools.local.runner, which sets the AF_* variables).

Everything facility-specific comes from hub_config, exactly as in Kubernetes; this file only adds what belongs to
running on one machine: ports, the state folder, the externally started proxy.
"""

import json
import os
import sys
from pathlib import Path

from hub_config import configure
from hub_config.settings import load_settings

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

settings = load_settings(os.environ["AF_SETTINGS"])
configure(c, settings)

ports = json.loads(os.environ["AF_PORTS"])
state = Path(os.environ["AF_STATE_DIR"])
(state / "hub").mkdir(parents=True, exist_ok=True)

c.JupyterHub.bind_url = f"http://127.0.0.1:{ports['public']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{ports['hub']}"
c.JupyterHub.db_url = f"sqlite:///{state / 'hub' / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "hub" / "jupyterhub_cookie_secret")
# The runner starts configurable-http-proxy itself so that the proxy (and users' routes) survive hub restarts.
c.ConfigurableHTTPProxy.should_start = False
# 127.0.0.2 when users' code runs in containers: an address their network does not reach (af.tools.local.containers)
internal_ip = os.environ.get("AF_INTERNAL_IP", "127.0.0.1")
c.ConfigurableHTTPProxy.api_url = f"http://{internal_ip}:{ports['proxy_api']}"

# Hub-managed services (the idle culler) carry the facility's marker too: `af down` then finds them even when the
# hub could not stop them (a hub that crashed or was killed leaves its services running, reparented to init).
c.JupyterHub.services = [
    {
        **service,
        "environment": {**service.get("environment", {}), "AF_FACILITY_ID": os.environ["AF_FACILITY_ID"]},
    }
    if "command" in service
    else service
    for service in c.JupyterHub.services
]

c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
c.Spawner.ip = "127.0.0.1"
c.Spawner.environment = {
    **c.Spawner.environment,
    "AF_FACILITY_ID": os.environ["AF_FACILITY_ID"],
    "PATH": os.environ["PATH"],
    **({"AF_EXAMPLE_DATA": os.environ["AF_EXAMPLE_DATA"]} if "AF_EXAMPLE_DATA" in os.environ else {}),
}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.JupyterHub.log_level = "INFO"

if "AF_CONTAINER_IMAGE" in os.environ:
    # Users' servers in containers of the notebook image (hub_config.container_spawner), through podman's API service
    # (DOCKER_HOST), with the same profiles, homes and tutorials as the local-process spawner.
    from hub_config.container_names import container_name
    from hub_config.container_spawner import NETWORK, FacilityContainerSpawner, reachable_from_container

    c.JupyterHub.spawner_class = FacilityContainerSpawner
    for trait in ("home_dir_template", "profiles", "tutorials_source", "servicex_endpoint"):
        if trait in c.FacilityLocalSpawner:
            setattr(c.FacilityContainerSpawner, trait, c.FacilityLocalSpawner[trait])
    if c.FacilityContainerSpawner.servicex_endpoint:  # ~/servicex.yaml: the client in the container connects
        c.FacilityContainerSpawner.servicex_endpoint = reachable_from_container(
            c.FacilityContainerSpawner.servicex_endpoint
        )
    c.FacilityContainerSpawner.image = os.environ["AF_CONTAINER_IMAGE"]
    c.FacilityContainerSpawner.pull_policy = "never"  # images are built here (make images), never pulled
    c.FacilityContainerSpawner.network_name = NETWORK
    c.FacilityContainerSpawner.use_internal_ip = False
    c.FacilityContainerSpawner.host_ip = internal_ip
    c.FacilityContainerSpawner.ip = "0.0.0.0"
    c.FacilityContainerSpawner.cmd = ["jupyterhub-singleuser"]
    c.FacilityContainerSpawner.remove = True
    # 30 servers starting at once on two shared cores took more than the 90 s above to answer (the load test)
    c.FacilityContainerSpawner.http_timeout = 300
    c.FacilityContainerSpawner.start_timeout = 300
    c.FacilityContainerSpawner.prefix = container_name(os.environ["AF_FACILITY_ID"])  # name: {prefix}-{user}
    c.FacilityContainerSpawner.facility_id = os.environ["AF_FACILITY_ID"]
    c.FacilityContainerSpawner.data_folders = (
        [os.environ["AF_EXAMPLE_DATA"]] if "AF_EXAMPLE_DATA" in os.environ else []
    )
    # the image's own PATH (its /opt/venv), not this machine's
    c.FacilityContainerSpawner.environment = {k: v for k, v in c.Spawner.environment.items() if k != "PATH"}
