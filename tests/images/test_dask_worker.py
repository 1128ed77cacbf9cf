"""A dask worker started from the notebook image (as uid 1000, read-only root) joins a scheduler and computes
with the image's physlite: what the dask-gateway backend runs on Kubernetes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import awkward as ak
import uproot
from distributed import Client

import physlite
from tests.conftest import R22_FILE
from tests.conftest import test_data_dir as example_data
from tests.servers.common import free_port, wait_for_port

from .containers import DATA, home_volume, image, remove, run_args

DASK = str(Path(sys.executable).with_name("dask"))


def test_worker_from_the_image_joins_a_scheduler_and_computes(tmp_path):
    port = free_port()
    log = tmp_path / "scheduler.log"
    with log.open("w") as out:
        scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = f"af-test-worker-{uuid.uuid4().hex[:8]}"
    try:
        wait_for_port(port, scheduler, log=log)
        # the host's network namespace: the scheduler listens on the host's loopback (podman adds no firewall rule)
        args = run_args(
            image("notebook"),
            home=home_volume(tmp_path / "home"),
            network="host",
            data=example_data(),
            container=worker,
        )
        args.insert(2, "--detach")
        command = [
            "dask",
            "worker",
            f"tcp://127.0.0.1:{port}",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--name",
            "w1",
        ]
        subprocess.run([*args, *command], check=True, capture_output=True)
        with Client(f"tcp://127.0.0.1:{port}", timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
            assert list(client.run(os.getuid).values()) == [1000]
            path = f"{DATA}/{R22_FILE}"
            got = client.submit(physlite.read, path, ["AnalysisElectronsAuxDyn.pt"]).result(timeout=120)
        expected = uproot.open(example_data() / R22_FILE)["CollectionTree"][
            "AnalysisElectronsAuxDyn.pt"
        ].array()
        assert ak.array_equal(got["AnalysisElectronsAuxDyn.pt"], expected, check_parameters=False)
    finally:
        logs = subprocess.run(["podman", "logs", worker], capture_output=True, text=True).stderr
        remove(worker)
        scheduler.terminate()
        scheduler.wait(10)
    assert "Registered to" in logs, logs[-2000:]
