"""The local facility's dask-gateway backend with containers: each cluster a podman pod, its scheduler and each of
its workers a container of the notebook image, as uid 1000, with the cluster options' cores and memory as cgroup
limits (CPU quota, memory limit).

On dask-gateway's own `DBBackendBase` (like its local and jobqueue backends): the gateway's database, reconciliation
loop, TLS credentials and scheduler/worker commands are dask-gateway's; this class only says how to start, check
and stop a scheduler or a worker. The containers of one cluster share the pod's network (slirp4netns, like the
users' servers): workers reach their scheduler and each other on the pod's loopback, as pods of one cluster do on
Kubernetes. The pod publishes the scheduler's three ports on `publish_ip` (an address containers do not reach,
see af.tools.local.containers); the addresses a scheduler reports are rewritten to those published ports. The
scheduler reaches the gateway API through `api_url` (the public proxy, ``/services/dask-gateway/api``).

Example (dask-gateway-server config):
    >>> from af.gateway.limits import limit_per_user
    >>> limit_per_user(ContainerBackend).__name__
    'LimitedContainerBackend'
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dask_gateway_server.backends.db_base import DBBackendBase
from traitlets import Dict, Float, Integer, List, Unicode

from af.gateway.local_backend import FailDeadClustersOnSetup
from hub_config.container_names import FACILITY_LABEL, USER_LABEL, container_name

NETWORK = "slirp4netns:allow_host_loopback=true"
CLUSTER_LABEL = "af.cluster"
# the scheduler's ports inside its pod: dask's TLS port, the dashboard, dask-gateway's scheduler API
SCHEDULER_PORTS = {"scheduler": 8786, "dashboard": 8787, "api": 8788}
CERTS_IN_CONTAINER = "/run/dask-gateway"


class PodmanError(RuntimeError):
    """A podman command failed; the message names it and podman's error."""


def with_option(command: Sequence[str], flag: str, value: str) -> list[str]:
    """`command` with the value after `flag` replaced (dask-gateway's commands bind port 0).

    Example:
        >>> with_option(["dask", "scheduler", "--port", "0"], "--port", "8786")
        ['dask', 'scheduler', '--port', '8786']
    """
    out = list(command)
    index = out.index(flag)
    out[index + 1] = value
    return out


def published_address(address: str, published: Mapping[int, int], host: str) -> str:
    """A scheduler's self-reported `address` (its pod's address) as the gateway reaches it: `host` and the port
    its pod publishes for that port.

    Example:
        >>> published_address("tls://10.0.2.100:8786", {8786: 40001}, "127.0.0.2")
        'tls://127.0.0.2:40001'
        >>> published_address("", {8786: 40001}, "127.0.0.2")
        ''
    """
    if not address:
        return address
    parts = urlsplit(address)
    port = published.get(parts.port or 0)
    if port is None:
        return address
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def env_file_text(env: Mapping[str, str]) -> str:
    """An ``--env-file`` for podman (secrets such as the cluster token never appear on a command line)."""
    for name, value in env.items():
        if "\n" in value:
            raise ValueError(f"environment variable {name} holds a newline, which an env file cannot carry")
    return "".join(f"{name}={value}\n" for name, value in env.items())


class ContainerBackend(FailDeadClustersOnSetup, DBBackendBase):
    """dask-gateway clusters as podman pods of notebook-image containers (see the module docstring)."""

    image = Unicode(help="The notebook image schedulers and workers run.", config=True)
    uid = Integer(1000, help="The uid schedulers and workers run as.", config=True)
    facility_id = Unicode("", help="Label value `af down` removes the facility's containers by.", config=True)
    network = Unicode(NETWORK, help="The pods' network (podman --network).", config=True)
    publish_ip = Unicode(
        "127.0.0.2", help="Host address the pods publish the scheduler's ports on.", config=True
    )
    clusters_directory = Unicode(
        help="Where each cluster's TLS credentials and env files are kept.", config=True
    )
    environment = Dict(help="Variables every scheduler and worker gets (e.g. AF_EXAMPLE_DATA).", config=True)
    data_folders = List(Unicode(), help="Host folders mounted read-only at the same path.", config=True)
    stop_timeout = Integer(5, help="Seconds a container has to stop before it is killed.", config=True)
    podman = List(Unicode(), ["podman"], help="The podman command.", config=True)
    memory_headroom = Float(
        1.0, help="Container memory limit as a multiple of the cluster option.", config=True
    )

    # ---- podman ------------------------------------------------------------------------------------------
    async def run_podman(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *self.podman,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise PodmanError(f"podman {' '.join(args[:2])} failed: {err.decode(errors='replace').strip()}")
        return out.decode()

    async def running_containers(self) -> set[str]:
        out = await self.run_podman(
            "ps", "--filter", f"label={FACILITY_LABEL}={self.facility_id}", "--format", "{{.Names}}"
        )
        return set(out.split())

    def pod_name(self, cluster: Any) -> str:
        return container_name(self.facility_id, "dask", cluster.name)

    def workdir(self, cluster: Any) -> Path:
        return Path(self.clusters_directory) / cluster.name

    def labels(self, cluster: Any) -> list[str]:
        pairs = {FACILITY_LABEL: self.facility_id, CLUSTER_LABEL: cluster.name, USER_LABEL: cluster.username}
        return [arg for name, value in pairs.items() for arg in ("--label", f"{name}={value}")]

    async def run_container(
        self, cluster: Any, name: str, command: list[str], env: Mapping[str, str], cores: float, memory: int
    ) -> None:
        workdir = self.workdir(cluster)
        env_file = workdir / f"{name}.env"
        env_file.write_text(env_file_text({**self.environment, **env}))
        env_file.chmod(0o600)
        mounts = [f"{workdir / 'certs'}:{CERTS_IN_CONTAINER}:ro"] + [f"{d}:{d}:ro" for d in self.data_folders]
        await self.run_podman(
            "run",
            "--detach",
            "--rm",
            "--pod",
            self.pod_name(cluster),
            "--name",
            name,
            *self.labels(cluster),
            "--user",
            f"{self.uid}:{self.uid}",
            "--memory",
            str(int(memory * self.memory_headroom)),
            "--cpus",
            f"{cores:g}",
            "--env-file",
            str(env_file),
            *(arg for mount in mounts for arg in ("--volume", mount)),
            self.image,
            *command,
        )

    # ---- dask-gateway's hooks ------------------------------------------------------------------------------
    def get_tls_paths(self, cluster: Any) -> tuple[str, str]:
        return f"{CERTS_IN_CONTAINER}/dask.crt", f"{CERTS_IN_CONTAINER}/dask.pem"

    def get_scheduler_command(self, cluster: Any) -> list[str]:
        command = super().get_scheduler_command(cluster)
        command = with_option(command, "--port", str(SCHEDULER_PORTS["scheduler"]))
        command = with_option(command, "--dashboard-address", f"0.0.0.0:{SCHEDULER_PORTS['dashboard']}")
        return with_option(command, "--dg-api-address", f"0.0.0.0:{SCHEDULER_PORTS['api']}")

    def write_credentials(self, cluster: Any) -> None:
        certs = self.workdir(cluster) / "certs"
        certs.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, data in (("dask.crt", cluster.tls_cert), ("dask.pem", cluster.tls_key)):
            path = certs / name
            path.write_bytes(data)
            path.chmod(0o600)
            os.chown(path, self.uid, self.uid)
        os.chown(certs, self.uid, self.uid)

    async def do_start_cluster(self, cluster: Any) -> AsyncIterator[dict[str, Any]]:
        pod = self.pod_name(cluster)
        self.write_credentials(cluster)
        yield {"pod": pod}
        published = [arg for port in SCHEDULER_PORTS.values() for arg in ("-p", f"{self.publish_ip}::{port}")]
        await self.run_podman(
            "pod", "create", "--name", pod, *self.labels(cluster), "--network", self.network, *published
        )
        inspected = json.loads(await self.run_podman("pod", "inspect", pod))
        bindings = inspected.get("InfraConfig", {}).get("PortBindings", {})
        ports = {str(port): int(bindings[f"{port}/tcp"][0]["HostPort"]) for port in SCHEDULER_PORTS.values()}
        # saved before the scheduler starts: its first heartbeat's addresses are rewritten with them
        yield {"pod": pod, "ports": ports}
        config = cluster.config
        await self.run_container(
            cluster,
            f"{pod}-scheduler",
            self.get_scheduler_command(cluster),
            self.get_scheduler_env(cluster),
            float(config.scheduler_cores),
            int(config.scheduler_memory),
        )
        yield {"pod": pod, "ports": ports, "scheduler": f"{pod}-scheduler"}

    async def on_cluster_heartbeat(self, cluster_name: str, msg: dict[str, Any]) -> None:
        cluster = self.db.get_cluster(cluster_name)
        ports = cluster.state.get("ports") if cluster is not None else None
        if ports:
            published = {int(inner): outer for inner, outer in ports.items()}
            msg = {
                **msg,
                **{
                    key: published_address(msg[key], published, self.publish_ip)
                    for key in ("scheduler_address", "dashboard_address", "api_address")
                    if key in msg
                },
            }
        await super().on_cluster_heartbeat(cluster_name, msg)

    async def do_stop_cluster(self, cluster: Any) -> None:
        pod = cluster.state.get("pod")
        if pod:
            try:
                await self.run_podman("pod", "rm", "--force", "--time", str(self.stop_timeout), pod)
            except PodmanError as err:
                self.log.warning("%s", err)
        shutil.rmtree(self.workdir(cluster), ignore_errors=True)

    async def do_check_clusters(self, clusters: list[Any]) -> list[bool]:
        running = await self.running_containers()
        return [cluster.state.get("scheduler") in running for cluster in clusters]

    def worker_container(self, worker: Any) -> str:
        return f"{self.pod_name(worker.cluster)}-worker-{worker.name}"

    async def do_start_worker(self, worker: Any) -> AsyncIterator[dict[str, Any]]:
        cluster = worker.cluster
        name = self.worker_container(worker)
        # the scheduler on the pod's loopback (the address it reports is its pod's, rewritten for the gateway)
        scheduler = f"tls://127.0.0.1:{SCHEDULER_PORTS['scheduler']}"
        await self.run_container(
            cluster,
            name,
            self.get_worker_command(cluster, worker.name, scheduler_address=scheduler),
            self.get_worker_env(cluster),
            float(cluster.config.worker_cores),
            int(cluster.config.worker_memory),
        )
        yield {"container": name}

    async def do_stop_worker(self, worker: Any) -> None:
        name = worker.state.get("container")
        if name:
            try:
                await self.run_podman("rm", "--force", "--time", str(self.stop_timeout), name)
            except PodmanError as err:
                self.log.warning("%s", err)

    async def do_check_workers(self, workers: list[Any]) -> list[bool]:
        running = await self.running_containers()
        return [worker.state.get("container") in running for worker in workers]
