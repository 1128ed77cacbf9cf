"""Load and faults: many users at once; hub and gateway restarts; a worker's or a scheduler's container killed
mid-computation."""

from __future__ import annotations

import os
import time

import dask
import pytest
import requests

from af.tools.local.load import run_load
from tests.e2e.conftest import LOAD_USERS, gateway_for, podman, save_json

pytestmark = pytest.mark.e2e


def server_container(hub, username: str) -> str:
    """The id of the container running `username`'s server (the spawner's state, which the hub keeps)."""
    server = hub.api("GET", f"/users/{username}").json()["servers"].get("", {})
    assert server.get("ready"), server
    return server["state"]["object_id"]  # DockerSpawner's state: the container's id


def cluster_containers(cluster_name: str, role: str) -> list[str]:
    """The names of a gateway cluster's running scheduler or worker containers."""
    listed = podman("ps", "--filter", f"label=af.cluster={cluster_name}", "--format", "{{.Names}}").stdout
    return [name for name in listed.split() if f"-{role}" in name]


def test_users_log_in_and_start_servers_at_once(facility):
    report = run_load(facility, LOAD_USERS, timeout=600)
    save_json("load.json", report)
    print(
        f"{LOAD_USERS} users: login -> JupyterLab p50 {report['login_to_ready_s']['p50']} s, "
        f"p95 {report['login_to_ready_s']['p95']} s"
    )
    assert report["failed"] == []
    assert report["succeeded"] == LOAD_USERS


def test_hub_restart_keeps_servers_and_clusters(facility, hub):
    hub.api("POST", "/users", json={"usernames": ["alice"]})
    if not hub.api("GET", "/users/alice").json()["servers"]:
        assert hub.api("POST", "/users/alice/server").status_code in (201, 202)
    deadline = time.monotonic() + 120
    while not hub.api("GET", "/users/alice").json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline, "alice's server did not start"
        time.sleep(0.5)
    container_before = server_container(hub, "alice")
    token = hub.user_token("alice")
    with gateway_for(facility, token) as gateway:
        cluster = gateway.new_cluster(shutdown_on_close=False)
        cluster.scale(1)
        name = cluster.name
        cluster.close()

        facility.stop_component("hub")
        facility.start_component("hub")

        status = requests.get(
            f"{facility.url}/user/alice/api/status", headers={"Authorization": f"token {token}"}, timeout=60
        )
        assert status.status_code == 200
        assert server_container(hub, "alice") == container_before
        assert [c.name for c in gateway.list_clusters()] == [name]
        with gateway.connect(name) as same, same.get_client() as client:
            client.wait_for_workers(1, timeout=120)
            assert client.submit(lambda x: x + 1, 41).result() == 42
            same.shutdown()


def test_gateway_restart_recovers_clusters(facility, hub):
    token = hub.user_token("bob")
    with gateway_for(facility, token) as gateway:
        cluster = gateway.new_cluster(shutdown_on_close=False)
        cluster.scale(1)
        with cluster.get_client() as client:
            client.wait_for_workers(1, timeout=120)
            scheduler_pids_before = client.run_on_scheduler(os.getpid)
        name = cluster.name
        cluster.close()

        facility.stop_component("gateway")
        facility.start_component("gateway")

        assert [c.name for c in gateway.list_clusters()] == [name]
        with gateway.connect(name) as same, same.get_client() as client:
            client.wait_for_workers(1, timeout=120)
            assert client.run_on_scheduler(os.getpid) == scheduler_pids_before
            assert client.submit(sum, range(100)).result() == 4950
            same.shutdown()


def test_killing_a_worker_mid_computation_keeps_the_result_right(facility, hub):
    def slow_square(x: int) -> int:  # local, so that it is pickled by value (workers cannot import the tests)
        time.sleep(0.3)
        return x * x

    token = hub.user_token("bob")
    with gateway_for(facility, token) as gateway, gateway.new_cluster() as cluster:
        cluster.scale(2)
        with cluster.get_client() as client:
            client.wait_for_workers(2, timeout=120)
            graph = dask.delayed(sum)([dask.delayed(slow_square)(i) for i in range(60)])
            total = client.compute(graph)
            # Kill once part of the work is done, so that finished pieces are lost with the worker.
            while len(client.who_has()) < 10 and not total.done():
                time.sleep(0.05)
            # the gateway starts each worker with `--name <its worker name>`, which names its container too
            names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
            victim_address, victim_name = sorted(names.items())[0]
            [victim] = [
                c for c in cluster_containers(cluster.name, "worker") if c.endswith(f"-{victim_name}")
            ]
            assert not total.done(), "the computation finished before a worker could be killed"
            podman("kill", "--signal", "KILL", victim)
            assert total.result(timeout=300) == sum(x * x for x in range(60))
            assert victim_address not in client.scheduler_info()["workers"]


def test_gateway_restart_forgets_clusters_that_died_meanwhile(facility, hub):
    token = hub.user_token("bob")
    with gateway_for(facility, token) as gateway:
        cluster = gateway.new_cluster(shutdown_on_close=False)
        [scheduler] = cluster_containers(cluster.name, "scheduler")
        cluster.close()
        facility.stop_component("gateway")
        podman("kill", "--signal", "KILL", scheduler)
        facility.start_component("gateway")
        deadline = time.monotonic() + 10  # well below the heartbeat timeout (30 s and more)
        while gateway.list_clusters() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert gateway.list_clusters() == []
