"""`python -m af.servicex` started as the facility runs it (its own process, secrets from the environment), on
loopback, for the tests and the benchmark; restartable with the same state.

Example:
    >>> service = start_service(run, hub, seaweedfs, "tcp://127.0.0.1:8786")  # doctest: +SKIP
    >>> config = write_user_config(folder, service.url, hub.user_token("alice"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from servers.common import free_port, stop

from hub_config.servicex import servicex_yaml

SERVICE = "servicex"  # the hub service's name (the minimal hub registers it)


@dataclass
class ServiceProcess:
    """The service's process; `log` collects its output across restarts."""

    url: str
    command: list[str]
    environment: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/servicex", timeout=2).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the ServiceX service did not start: {self.log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.2)

    def kill(self) -> None:
        """Ends the process abruptly (SIGKILL), as a crash or an evicted pod would."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        stop(self.process)


def start_service(
    run: Path, hub, seaweedfs, scheduler: str | None, *options: str, environment: dict[str, str] | None = None
) -> ServiceProcess:
    """The service on a free loopback port, with its state in `run`; `options` are extra command-line
    options (e.g. ``--retries 3``; without a `scheduler`, ``--gateway ...``); a None in `environment` removes
    that variable."""
    run.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "JUPYTERHUB_API_URL": hub.api_url,
        "AF_SERVICEX_SECRET": "test-secret-" + "x" * 20,
        "AF_SERVICEX_S3_ACCESS_KEY": seaweedfs.access_key,
        "AF_SERVICEX_S3_SECRET_KEY": seaweedfs.secret_key,
        **(environment or {}),
    }
    env = {name: value for name, value in env.items() if value is not None}
    command = [
        sys.executable, "-m", "af.servicex", "--listen", f"127.0.0.1:{port}", "--state", str(run / "state"),
        *(["--scheduler", scheduler] if scheduler else []), "--s3-endpoint", seaweedfs.endpoint,
        "--service-name", SERVICE, *options,
    ]  # fmt: skip
    service = ServiceProcess(f"http://127.0.0.1:{port}", command, env, run / "service.log")
    service.start()
    return service


def write_user_config(folder: Path, url: str, token: str) -> Path:
    """A user's ``servicex.yaml`` (as the facility writes it) with a cache folder of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "servicex.yaml"
    config.write_text(servicex_yaml(url, token) + f"cache_path: {folder / 'cache'}\n")
    return config
