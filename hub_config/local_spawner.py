"""The spawner of the local facility: JupyterLab as a local process per user, home under the state folder.

On top of JupyterHub's SimpleLocalProcessSpawner it
- enforces the profile choice server-side (a profile outside the user's groups gives HTTP 403);
- applies the profile's limits where a local process can: CPU affinity (``cores`` CPUs of this machine) and a
  data-segment limit (``memory``) on the server and everything it starts (kernels, terminals);
- copies the tutorials (``tutorials.source``/*.ipynb) into a new home, never over a user's own copy;
- writes ``~/servicex.yaml`` with the server's hub token when ServiceX is configured.

Example (jupyterhub_config.py):
    >>> c.JupyterHub.spawner_class = "hub_config.local_spawner.FacilityLocalSpawner"  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyterhub.utils import random_port
from traitlets import Dict, List, Unicode

from af.user_server.tutorials import copy_tutorials
from hub_config.profiles import PROFILE_FIELD, choose_profile, user_group_names
from hub_config.servicex import servicex_yaml
from hub_config.settings_schema import memory_bytes

NOTIFICATION_SETTINGS = Path(
    ".jupyter/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
)


def pick_cpus(username: str, cores: float, available: list[int]) -> list[int]:
    """`cores` CPUs (at least one) out of `available`, chosen by a stable hash so users spread out.

    Example:
        >>> pick_cpus("alice", 1, [0, 1]) in ([0], [1])
        True
    """
    count = max(1, min(len(available), int(cores)))
    start = int(hashlib.sha256(username.encode()).hexdigest(), 16) % len(available)
    return [available[(start + i) % len(available)] for i in range(count)]


def quiet_jupyterlab(home: Path) -> None:
    """Turn off JupyterLab's news and update checks for a user (unless they chose otherwise already).

    In the notebook image the same is set for everyone in ``share/jupyter/lab/settings/overrides.json``.
    """
    path = home / NOTIFICATION_SETTINGS
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


async def prepare_server(spawner: Any, home: Path) -> None:
    """What every local spawner does before starting a server: choose the profile (HTTP 403 for one outside the
    user's groups), set its limits (``spawner.cpu_limit``, ``spawner.mem_limit``, ``AF_PROFILE``), and prepare
    the home (JupyterLab's news off, the tutorials, ``servicex.yaml``).

    `spawner` has the traits `profiles`, `tutorials_source`, `servicex_endpoint` and `chosen_profile`.
    """
    profile = choose_profile(
        spawner.profiles,
        spawner.user.name,
        user_group_names(spawner.user),
        spawner.user_options.get(PROFILE_FIELD),
    )
    spawner.chosen_profile = profile.model_dump()
    spawner.cpu_limit = float(profile.cores)
    spawner.mem_limit = memory_bytes(profile.memory)
    spawner.environment = {**spawner.environment, "AF_PROFILE": profile.name}
    home.mkdir(parents=True, exist_ok=True)
    quiet_jupyterlab(home)
    if spawner.tutorials_source:
        copy_tutorials(Path(spawner.tutorials_source), home)
    if spawner.servicex_endpoint:
        # the server's own hub token (the hub set it before start): what the facility's ServiceX service accepts
        path = home / "servicex.yaml"
        path.write_text(servicex_yaml(spawner.servicex_endpoint, spawner.api_token))
        path.chmod(0o600)
    spawner.log.info("starting %s with profile %s", spawner.user.name, profile.name)


class PortReservations:
    """Free ports handed out to servers being started, so that concurrent spawns never get the same one.

    A port from the kernel (bind to port 0) is free when chosen but stays unclaimed until the server binds it;
    without this, two servers starting at once can be given the same port (seen with 30 simultaneous logins).
    """

    def __init__(self, hold_seconds: float = 300.0):
        self.hold_seconds = hold_seconds
        self.held: dict[int, float] = {}

    def reserve(self) -> int:
        now = time.monotonic()
        self.held = {port: until for port, until in self.held.items() if until > now}
        while True:
            port = random_port()
            if port not in self.held:
                self.held[port] = now + self.hold_seconds
                return port


class FacilityLocalSpawner(SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner with group-limited profiles, resource limits, tutorials and ServiceX config."""

    ports = PortReservations()

    profiles = List(help="The facility profiles (settings `profiles`).").tag(config=True)
    tutorials_source = Unicode("", help="Folder whose *.ipynb are copied into new homes.").tag(config=True)
    servicex_endpoint = Unicode("", help="ServiceX endpoint; when set, ~/servicex.yaml is written.").tag(
        config=True
    )
    chosen_profile = Dict(help="The profile of the running server.")

    async def start(self) -> Any:
        await prepare_server(self, Path(self.home_dir))
        self.port = self.ports.reserve()
        return await super().start()

    def get_args(self) -> list[str]:
        args = super().get_args()
        if os.geteuid() == 0 and "--allow-root" not in args:
            # The single-user server refuses to run as root without it (and the hub would wait its timeout).
            args.append("--allow-root")
        return args

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        base = super().make_preexec_fn(name)
        cpus = pick_cpus(self.user.name, self.cpu_limit or 1, sorted(os.sched_getaffinity(0)))
        memory = int(self.mem_limit) if self.mem_limit else None

        def preexec() -> None:
            base()
            os.sched_setaffinity(0, cpus)
            if memory:
                resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))

        return preexec
