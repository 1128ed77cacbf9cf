"""Users' code in containers for the local facility: podman's Docker-compatible API service, the containers'
addresses, and removing a facility's containers on ``af down``.

With containers on, the local facility starts ``podman system service`` on ``<state>/podman.sock`` (the hub's
DockerSpawner and the gateway's container backend use it through ``DOCKER_HOST``). Containers run in their own
slirp4netns network that maps the host's 127.0.0.1 to 10.0.2.2: what containers may reach (the public proxy, the
hub API, the gateway's scheduler proxy) listens on 127.0.0.1; what they may not (the gateway's API and web
ports, the proxy's REST API, users' servers, schedulers' published ports) listens on `INTERNAL_IP`, another
loopback address slirp4netns does not map.

Example:
    >>> mode = ContainerMode(image="ghcr.io/physlite-facility/notebook:0.1.0", conf=Path("images/containers.conf"))
    >>> mode.socket(Path("/tmp/state")).name
    'podman.sock'
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hub_config.container_names import FACILITY_LABEL

# A loopback address slirp4netns does not map into containers (it maps 10.0.2.2 to 127.0.0.1 only).
INTERNAL_IP = "127.0.0.2"
MODE_FILE = "containers.json"


def default_image() -> str:
    """The notebook image of this version, as `make images` tags it and the chart's values name it."""
    from importlib.metadata import version

    return f"ghcr.io/physlite-facility/notebook:{version('physlite-facility')}"


class ContainerError(RuntimeError):
    """podman's API service or the podman CLI failed; the message names the command or socket."""


@dataclass(frozen=True)
class ContainerMode:
    """Run users' servers and dask clusters in containers of `image`, with podman configured by `conf`."""

    image: str
    conf: Path

    def socket(self, state_dir: Path) -> Path:
        return state_dir / "podman.sock"

    def environment(self, state_dir: Path) -> dict[str, str]:
        """What the hub and the gateway need to use podman's API service."""
        return {
            "CONTAINERS_CONF": str(self.conf),
            "DOCKER_HOST": f"unix://{self.socket(state_dir)}",
            "AF_CONTAINER_IMAGE": self.image,
            "AF_INTERNAL_IP": INTERNAL_IP,
        }

    def service_command(self, state_dir: Path) -> list[str]:
        return ["podman", "system", "service", "--time=0", f"unix://{self.socket(state_dir)}"]

    def check_image(self) -> None:
        """Raise ContainerError unless the image exists locally (it is built here, never pulled)."""
        env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}
        found = subprocess.run(
            ["podman", "image", "exists", self.image], env=env, capture_output=True, timeout=60
        )
        if found.returncode != 0:
            raise ContainerError(f"the notebook image {self.image} is not built here: run `make images`")

    def save(self, state_dir: Path) -> None:
        (state_dir / MODE_FILE).write_text(json.dumps({"image": self.image, "conf": str(self.conf)}))

    @classmethod
    def load(cls, state_dir: Path) -> ContainerMode | None:
        """The mode the facility in `state_dir` was last started with (None: processes, not containers)."""
        try:
            saved = json.loads((state_dir / MODE_FILE).read_text())
        except FileNotFoundError:
            return None
        return cls(image=saved["image"], conf=Path(saved["conf"]))


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def wait_api_service(path: Path, timeout: float, check: Callable[[], None]) -> None:
    """Wait until podman's API service answers ``/_ping`` on the unix socket `path`."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        check()
        connection = _UnixHTTPConnection(path, timeout=5)
        try:
            connection.request("GET", "/_ping")
            if connection.getresponse().status == 200:
                return
        except OSError as err:
            last = str(err)
        finally:
            connection.close()
        time.sleep(0.2)
    raise ContainerError(f"podman's API service on {path} did not answer within {timeout:.0f} s ({last})")


def _labelled(kind: list[str], facility_id: str, env: Mapping[str, str]) -> list[str]:
    """The ids of the containers (``ps --all``) or pods (``pod ps``) labelled with `facility_id`."""
    listed = subprocess.run(
        ["podman", *kind, "--filter", f"label={FACILITY_LABEL}={facility_id}", "--format", "{{.ID}}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if listed.returncode != 0:
        raise ContainerError(f"podman {' '.join(kind)} failed: {listed.stderr.strip()}")
    return listed.stdout.split()


def remove_containers(facility_id: str, environ: Mapping[str, str]) -> list[str]:
    """Remove (stopping first) every container and pod labelled with `facility_id`; returns their ids.

    Pods go too: a gateway cluster's pod keeps an infra container that `podman rm` cannot remove while the pod
    exists."""
    env = {**os.environ, **environ}
    names = _labelled(["ps", "--all"], facility_id, env)
    pods = _labelled(["pod", "ps"], facility_id, env)
    with contextlib.suppress(subprocess.TimeoutExpired):
        if names:
            subprocess.run(
                ["podman", "rm", "--force", "--time", "5", *names], env=env, capture_output=True, timeout=120
            )
        if pods:
            subprocess.run(
                ["podman", "pod", "rm", "--force", "--time", "5", *pods],
                env=env,
                capture_output=True,
                timeout=120,
            )
    return names + pods


def memory_of(names: list[str], environ: Mapping[str, str]) -> dict[str, int]:
    """Resident memory (bytes: the cgroup's ``total_rss``, page cache left out) of each running container."""
    if not names:
        return {}
    env = {**os.environ, **environ}
    inspected = subprocess.run(
        ["podman", "inspect", "--format", "{{.Name}} {{.State.CgroupPath}}", *names],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = {}
    for line in inspected.stdout.splitlines():
        name, _, cgroup = line.partition(" ")
        with contextlib.suppress(OSError, ValueError):
            stat = Path(f"/sys/fs/cgroup/memory{cgroup}/memory.stat").read_text()
            fields = dict(entry.split() for entry in stat.splitlines())
            found[name] = int(fields["total_rss"])
    return found
