"""The local facility's spawner: each user's server in a container of the notebook image (``af up --processes``:
hub_config.local_spawner instead).

DockerSpawner (a maintained JupyterHub spawner) talks to podman's Docker-compatible API service, which the local
facility starts on a unix socket in its state folder (``DOCKER_HOST``). On top of DockerSpawner it
- chooses the profile like the local-process spawner (`hub_config.local_spawner.prepare_server`: HTTP 403 for a
  profile outside the user's groups, tutorials, ``servicex.yaml``) and applies its ``cores`` and ``memory`` as the
  container's cgroup limits (CPU quota, memory limit);
- runs the server as uid 1000 with the user's home (``state/homes/<user>``) as a volume and the example data
  read-only at the path ``AF_EXAMPLE_DATA`` names;
- puts the container in its own slirp4netns network (podman's default bridge would change the host's iptables):
  the host's 127.0.0.1 is 10.0.2.2 inside, so the addresses the server itself connects to (hub API, gateway) are
  rewritten to it; the server's port is published on `host_ip`, an address the containers cannot reach (10.0.2.2
  maps to 127.0.0.1 only), so no user's container reaches another's server;
- labels the container with the facility id, so that ``af down`` finds and removes it.

Example (jupyterhub_config.py):
    >>> c.JupyterHub.spawner_class = "hub_config.container_spawner.FacilityContainerSpawner"  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker.errors
from dockerspawner import DockerSpawner
from traitlets import Dict, Integer, List, Unicode

from hub_config.container_names import FACILITY_LABEL, USER_LABEL
from hub_config.local_spawner import prepare_server

# slirp4netns with allow_host_loopback=true: the host's 127.0.0.1 as seen from inside a container
HOST_LOOPBACK_IN_CONTAINER = "10.0.2.2"
NETWORK = "slirp4netns:allow_host_loopback=true"
CONTAINER_HOME = "/home/jovyan"
PORT_RACE_ATTEMPTS = 3
_LOOPBACK = re.compile(r"(?<=://)(?:127\.0\.0\.1|localhost)(?=[:/]|$)")


def reachable_from_container(url: str, host: str = HOST_LOOPBACK_IN_CONTAINER) -> str:
    """`url` with the host's loopback address replaced by what a container reaches it as.

    Example:
        >>> reachable_from_container("http://127.0.0.1:8081/hub/api")
        'http://10.0.2.2:8081/hub/api'
        >>> reachable_from_container("gateway://localhost:8786")
        'gateway://10.0.2.2:8786'
    """
    return _LOOPBACK.sub(host, url)


def give_to_uid(folder: Path, uid: int) -> None:
    """Make `folder` and everything in it owned by `uid` (homes made by the hub, which runs as root)."""
    for root, dirs, files in os.walk(folder):
        for name in [root, *(os.path.join(root, entry) for entry in dirs + files)]:
            if os.lstat(name).st_uid != uid:
                os.lchown(name, uid, uid)


class FacilityContainerSpawner(DockerSpawner):
    """DockerSpawner with group-limited profiles as cgroup limits, the home as a volume, uid 1000, slirp4netns."""

    profiles = List(help="The facility profiles (settings `profiles`).").tag(config=True)
    tutorials_source = Unicode("", help="Folder whose *.ipynb are copied into new homes.").tag(config=True)
    servicex_endpoint = Unicode("", help="ServiceX endpoint; when set, ~/servicex.yaml is written.").tag(
        config=True
    )
    home_dir_template = Unicode(help="The user's home on the host, e.g. state/homes/{username}.").tag(
        config=True
    )
    uid = Integer(1000, help="The uid the server runs as (the notebook image's user).").tag(config=True)
    facility_id = Unicode("", help="Label value that `af down` removes the facility's containers by.").tag(
        config=True
    )
    data_folders = List(Unicode(), help="Host folders mounted read-only at the same path.").tag(config=True)
    reach_from_container = List(
        Unicode(),
        [
            "JUPYTERHUB_API_URL",
            "JUPYTERHUB_ACTIVITY_URL",
            "DASK_GATEWAY__ADDRESS",
            "DASK_GATEWAY__PROXY_ADDRESS",
            "AF_GATEWAY_SERVICE_URL",
            "AF_SERVICEX_ENDPOINT",
        ],
        help="Variables holding addresses the server itself connects to (not the browser's public ones).",
    ).tag(config=True)
    chosen_profile = Dict(help="The profile of the running server.")

    def home_on_host(self) -> Path:
        return Path(self.home_dir_template.format(username=self.user.name))

    async def start(self) -> Any:
        home = self.home_on_host()
        await prepare_server(self, home)
        give_to_uid(home, self.uid)
        self.volumes = {
            str(home): {"bind": CONTAINER_HOME, "mode": "rw"},
            **{folder: {"bind": folder, "mode": "ro"} for folder in self.data_folders},
        }
        self.extra_create_kwargs = {
            **self.extra_create_kwargs,
            "user": f"{self.uid}:{self.uid}",
            "working_dir": CONTAINER_HOME,
            "labels": {FACILITY_LABEL: self.facility_id, USER_LABEL: self.user.name},
        }
        attempt = 1
        while True:
            try:
                return await super().start()
            except docker.errors.APIError as err:
                # podman picks the published port before binding it: servers starting at once can pick the same
                # one. A new start (DockerSpawner removes the container it made) picks another.
                if "address already in use" not in str(err) or attempt == PORT_RACE_ATTEMPTS:
                    raise
                self.log.warning(
                    "%s's server: its published port was taken (%s); starting again", self.user.name, err
                )
                attempt += 1

    def get_env(self) -> dict[str, str]:
        env: Mapping[str, str] = super().get_env()
        return {
            name: reachable_from_container(value) if name in self.reach_from_container else value
            for name, value in env.items()
        }
