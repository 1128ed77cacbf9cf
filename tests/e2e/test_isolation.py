"""Users are kept apart: clusters, dashboards and servers of one user are closed to another; bad tokens are
refused with 401/403 (never a 500); profiles and cluster limits are enforced."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import time

import pytest
import requests

from af.tools.remote_kernel import RemoteKernel
from tests.e2e.conftest import ACCESS_TOKEN_TTL, gateway_for, http_login

pytestmark = pytest.mark.e2e


def gateway_api(facility, path: str) -> str:
    return f"{facility.url}/services/dask-gateway/api/v1{path}"


def wait_server(hub, username: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = hub.api("GET", f"/users/{username}").json()["servers"].get("", {})
        if server.get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"server of {username} not ready after {timeout} s")


def start_server(hub, username: str, **options) -> requests.Response:
    """Start the default server of `username` (stopping a running one first) and wait until it is ready."""
    hub.api("POST", "/users", json={"usernames": [username]})
    stop_server(hub, username)
    response = hub.api("POST", f"/users/{username}/server", json=options)
    if response.status_code in (201, 202):
        wait_server(hub, username)
    return response


def stop_server(hub, username: str) -> None:
    hub.api("DELETE", f"/users/{username}/server")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and hub.api("GET", f"/users/{username}").json()["servers"]:
        time.sleep(0.5)


def run(server_url: str, token: str, code: str) -> str:
    async def go() -> str:
        async with RemoteKernel(server_url, token) as kernel:
            return (await kernel.execute(code, timeout=180)).stdout

    # In its own thread: Playwright's sync API keeps an event loop running in the main thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


@pytest.fixture(scope="module")
def alice_cluster(facility, hub):
    gateway = gateway_for(facility, hub.user_token("alice"))
    cluster = gateway.new_cluster()
    yield cluster
    cluster.shutdown()
    gateway.close()


def test_other_user_cannot_list_connect_stop_or_scale_a_cluster(facility, hub, alice_cluster):
    bob_token = hub.user_token("bob")
    bob = {"Authorization": f"jupyterhub {bob_token}"}
    name = alice_cluster.name

    listing = requests.get(gateway_api(facility, "/clusters/"), headers=bob, timeout=30)
    assert listing.status_code == 200 and name not in listing.json()
    assert (
        requests.get(gateway_api(facility, f"/clusters/{name}"), headers=bob, timeout=30).status_code == 403
    )
    scale = requests.post(gateway_api(facility, f"/clusters/{name}/scale"), headers=bob, json={"count": 1})
    assert scale.status_code == 403
    assert (
        requests.delete(gateway_api(facility, f"/clusters/{name}"), headers=bob, timeout=30).status_code
        == 403
    )
    with (
        gateway_for(facility, bob_token) as bob_gateway,
        pytest.raises(Exception, match=r"403|lacks permissions"),
    ):
        bob_gateway.connect(name)
    # Alice's cluster is untouched and still hers.
    alice = {"Authorization": f"jupyterhub {hub.user_token('alice')}"}
    mine = requests.get(gateway_api(facility, f"/clusters/{name}"), headers=alice, timeout=30)
    assert mine.status_code == 200 and mine.json()["status"] == "RUNNING"


def test_dashboard_only_for_owner_and_admins(facility, hub, alice_cluster):
    dashboard = f"{facility.url}/services/dask-gateway/clusters/{alice_cluster.name}/status"
    by_token = {
        user: requests.get(dashboard, headers={"Authorization": f"token {hub.user_token(user)}"}, timeout=30)
        for user in ("alice", "bob")
    }
    assert by_token["alice"].status_code == 200 and "bokeh" in by_token["alice"].text.lower()
    assert by_token["bob"].status_code == 403
    # Browsers: the hub's OAuth cookie of the gateway service, obtained through the login flow.
    for user, expected in (("alice", 200), ("bob", 403), ("ada", 200)):
        session, _ = http_login(facility, user)
        response = session.get(dashboard, timeout=30)
        assert response.status_code == expected, (user, response.url)
    anonymous = requests.get(dashboard, allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302 and "/hub/api/oauth2/authorize" in anonymous.headers["Location"]
    # Escaped or non-canonical spellings of the same path (the gateway's proxy decodes them) are guarded too.
    bob = {"Authorization": f"token {hub.user_token('bob')}"}
    name = alice_cluster.name
    for path in (f"%63lusters/{name}/status", f"clusters%2f{name}/status", f"./clusters/{name}/status"):
        sneaky = http.client.HTTPConnection("127.0.0.1", facility.ports.public, timeout=30)
        sneaky.request("GET", f"/services/dask-gateway/{path}", headers=bob)
        answer = sneaky.getresponse()
        assert answer.status in (400, 403, 404), (path, answer.status)
        sneaky.close()


def test_other_user_cannot_open_a_server(facility, hub):
    assert start_server(hub, "alice").status_code in (201, 202)
    status = f"{facility.url}/user/alice/api/status"
    bob_session, _ = http_login(facility, "bob")
    assert bob_session.get(status, timeout=30).status_code == 403
    bob_token = hub.user_token("bob")
    assert (
        requests.get(status, headers={"Authorization": f"token {bob_token}"}, timeout=30).status_code == 403
    )
    alice_token = hub.user_token("alice")
    assert (
        requests.get(status, headers={"Authorization": f"token {alice_token}"}, timeout=30).status_code == 200
    )


def test_bad_tokens_get_401_or_403(facility, hub, alice_cluster):
    if not hub.api("GET", "/users/alice").json()["servers"]:
        assert start_server(hub, "alice").status_code in (201, 202)
    garbage = {"Authorization": "token not-a-token"}
    urls = {
        "hub API": f"{facility.url}/hub/api/user",
        "gateway API": gateway_api(facility, "/clusters/"),
        "dashboard": f"{facility.url}/services/dask-gateway/clusters/{alice_cluster.name}/status",
        "user server": f"{facility.url}/user/alice/api/status",
    }
    for header in (garbage, {"Authorization": "jupyterhub not-a-token"}, {"Authorization": "Bearer"}):
        for what, url in urls.items():
            status = requests.get(url, headers=header, allow_redirects=False, timeout=30).status_code
            assert status in (401, 403), (what, header, status)


def test_gateway_refuses_tokens_without_gateway_scope(facility, hub):
    narrow = hub.api(
        "POST", "/users/alice/tokens", json={"note": "no gateway", "scopes": ["read:users:name!user"]}
    ).json()["token"]
    response = requests.get(
        gateway_api(facility, "/clusters/"), headers={"Authorization": f"jupyterhub {narrow}"}, timeout=30
    )
    assert response.status_code == 401


def test_cluster_limit_per_user(facility, hub):
    token = hub.user_token("bob")
    with gateway_for(facility, token) as gateway:
        clusters = [gateway.new_cluster(), gateway.new_cluster()]
        try:
            with pytest.raises(Exception, match="max_clusters"):
                gateway.new_cluster()
        finally:
            for cluster in clusters:
                cluster.shutdown()


def test_clusters_stop_with_their_owners_server(facility, hub):
    assert start_server(hub, "bob").status_code in (201, 202)
    token = hub.user_token("bob")
    with gateway_for(facility, token) as gateway:
        name = gateway.new_cluster(shutdown_on_close=False).name
        stop_server(hub, "bob")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and gateway.list_clusters():
            time.sleep(0.5)
        assert gateway.list_clusters() == [], f"cluster {name} outlived the server of its owner"


def test_profiles_limited_by_group_and_enforced(facility, hub):
    refused = start_server(hub, "bob", profile="large")
    assert refused.status_code >= 400 and "not available" in refused.text, refused.text
    assert hub.api("GET", "/users/bob").json()["servers"] == {}
    started = start_server(hub, "bob", profile="standard")
    assert started.status_code in (201, 202)
    # the kernel's own cgroup (the server's container): 1 core as a CPU quota, 2 GB as the memory limit
    out = run(
        f"{facility.url}/user/bob",
        hub.user_token("bob"),
        "import os, json; read = lambda p: int(open('/sys/fs/cgroup/' + p).read()); "
        "print(json.dumps([read('cpu/cpu.cfs_quota_us') / read('cpu/cpu.cfs_period_us'), "
        "read('memory/memory.limit_in_bytes'), os.environ['AF_PROFILE']]))",
    )
    cores, memory, profile = json.loads(out)
    assert (cores, memory, profile) == (1.0, 2 * 2**30, "standard")
    stop_server(hub, "bob")


def test_server_reads_the_current_access_token_from_the_hub(facility, hub):
    _, response = http_login(facility, "alice")
    assert response.status_code == 200
    assert start_server(hub, "alice").status_code in (201, 202)
    read_token = "from af.user_server.access_token import current_access_token; print(current_access_token())"
    server, token = f"{facility.url}/user/alice", hub.user_token("alice")
    first = run(server, token, read_token).strip()
    time.sleep(ACCESS_TOKEN_TTL + 3)
    second = run(server, token, read_token).strip()

    def userinfo(access_token: str) -> requests.Response:
        return requests.get(
            f"{facility.issuer}/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=30
        )

    assert userinfo(first).status_code == 401, "the first access token should have expired"
    assert second != first
    fresh = userinfo(second)
    assert fresh.status_code == 200 and fresh.json()["sub"] == "alice"
