"""The Dask sidebar (dask-labextension's REST API in the user's server) lists the user's own gateway clusters,
wherever they were created, with dashboards that pass the facility's guard; "+ NEW" starts a gateway cluster."""

from __future__ import annotations

import time

import pytest
import requests
from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from af.user_server.dask_sidebar import prepend_handlers, worker_summary
from tests.e2e.test_browser import LAB_READY, sign_in
from tests.e2e.test_isolation import run, start_server, stop_server

OWNER, OTHER = "user27", "user28"
# Made in a notebook as users do; the kernel ends, the cluster stays (the sidebar must still list it).
NEW_CLUSTER_IN_KERNEL = """\
from dask_gateway import Gateway
cluster = Gateway().new_cluster(shutdown_on_close=False)
print(cluster.name)
"""


class Server:
    """A user's Jupyter server reached through the hub's proxy with one of the user's hub tokens."""

    def __init__(self, facility, hub, username: str):
        self.url = f"{facility.url}/user/{username}"
        self.token = hub.user_token(username)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"

    def clusters(self) -> list[dict]:
        response = self.session.get(f"{self.url}/dask/clusters", timeout=60)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def servers(facility, hub):
    for username in (OWNER, OTHER):
        assert start_server(hub, username).status_code in (201, 202)
    yield Server(facility, hub, OWNER), Server(facility, hub, OTHER)
    for username in (OWNER, OTHER):  # the hub's post-stop hook stops their clusters too
        stop_server(hub, username)


def wait_for(condition, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.mark.e2e
def test_sidebar_lists_a_cluster_made_in_a_notebook_with_its_dashboard(facility, servers):
    owner, other = servers
    assert owner.clusters() == []
    name = run(owner.url, owner.token, NEW_CLUSTER_IN_KERNEL).strip()
    listed = {c["id"]: c for c in owner.clusters()}
    assert list(listed) == [name]
    model = listed[name]
    assert model["name"] == name
    # the address the server's kernels connect to: the host's 127.0.0.1 as its container reaches it
    assert model["scheduler_address"] == f"gateway://10.0.2.2:{facility.ports.gateway_tcp}/{name}"
    assert model["dashboard_link"] == f"{facility.url}/services/dask-gateway/clusters/{name}/status"

    # The sidebar shows the dashboard's plots from <server>/dask/dashboard/<id>/ (dask-labextension's route),
    # which this server fetches from the guard with its own token.
    plots = owner.session.get(f"{owner.url}/dask/dashboard/{name}/individual-plots.json", timeout=60)
    assert plots.status_code == 200, plots.text
    assert "Individual Task Stream" in plots.json()
    status = owner.session.get(f"{owner.url}/dask/dashboard/{name}/status", timeout=60)
    assert status.status_code == 200 and "bokeh" in status.text.lower()
    # The dashboard_link itself passes the guard for the owner's token, as it would with the browser's cookie.
    direct = requests.get(
        model["dashboard_link"], headers={"Authorization": f"token {owner.token}"}, timeout=60
    )
    assert direct.status_code == 200

    # Scaled from the sidebar: the gateway adds the worker and the model counts it.
    scaled = owner.session.patch(f"{owner.url}/dask/clusters/{name}", json={"workers": 1}, timeout=60)
    assert scaled.status_code == 200, scaled.text
    counted = wait_for(
        lambda: next((c for c in owner.clusters() if c["id"] == name and c["workers"] == 1), None),
        "one worker in the sidebar's model",
    )
    assert counted["cores"] == 1 and counted["memory"] == "1.00 GiB"
    for body in ('{"nonsense": 1}', "not json", '{"workers": "many"}'):
        refused = owner.session.patch(f"{owner.url}/dask/clusters/{name}", data=body, timeout=60)
        assert refused.status_code == 400, (body, refused.status_code, refused.text)

    # Another user sees none of it: not in their list, not by id, not the dashboard, not the owner's server.
    assert other.clusters() == []
    assert other.session.get(f"{other.url}/dask/clusters/{name}", timeout=60).status_code == 404
    peek = other.session.get(f"{other.url}/dask/dashboard/{name}/individual-plots.json", timeout=60)
    assert peek.status_code == 403  # the guard asks the gateway with the other user's token: not theirs
    intrude = other.session.get(f"{owner.url}/dask/clusters", timeout=60, allow_redirects=False)
    assert intrude.status_code in (302, 403) and name not in intrude.text
    assert other.session.delete(f"{other.url}/dask/clusters/{name}", timeout=60).status_code == 404
    assert [c["id"] for c in owner.clusters()] == [name]


@pytest.mark.e2e
def test_sidebar_in_the_browser_shows_the_cluster_and_its_plots(browser, facility, servers, screenshots):
    owner, _ = servers
    (name,) = [c["id"] for c in owner.clusters()]  # made in a notebook by the test above
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, facility, OWNER)
        page.wait_for_selector(LAB_READY, timeout=120_000)
        page.click('.jp-SideBar [data-id="dask-dashboard-launcher"]')
        item = page.locator(".dask-ClusterListingItem").filter(has_text=name)
        item.wait_for(timeout=60_000)
        item.click()  # selects the cluster: the sidebar checks its dashboard and enables the plot buttons
        task_stream = page.locator(".dask-DashboardListing-item button", has_text="Task Stream").first
        page.wait_for_function("b => !b.disabled", arg=task_stream.element_handle(), timeout=60_000)
        page.screenshot(path=screenshots / "09-dask-sidebar.png")
        task_stream.click()
        frame = page.frame_locator(".dask-DaskDashboard-widget iframe").first
        frame.locator(".bk-Canvas, canvas, .bk-Figure").first.wait_for(timeout=60_000)
        page.screenshot(path=screenshots / "10-dask-sidebar-task-stream.png")
    finally:
        context.close()


@pytest.mark.e2e
def test_new_button_starts_and_stops_a_gateway_cluster(facility, hub, servers):
    owner, _ = servers
    before = {c["id"] for c in owner.clusters()}
    created = owner.session.put(f"{owner.url}/dask/clusters", timeout=300)
    assert created.status_code == 200, created.text
    model = created.json()
    name = model["id"]
    assert name not in before
    assert model["scheduler_address"].endswith(f"/{name}")
    gateway_api = f"{facility.url}/services/dask-gateway/api/v1/clusters/"
    owned = requests.get(gateway_api, headers={"Authorization": f"jupyterhub {owner.token}"}, timeout=30)
    assert name in owned.json()
    assert {c["id"] for c in owner.clusters()} == before | {name}

    stopped = owner.session.delete(f"{owner.url}/dask/clusters/{name}", timeout=120)
    assert stopped.status_code == 204
    assert {c["id"] for c in owner.clusters()} == before
    assert owner.session.get(f"{owner.url}/dask/clusters/{name}", timeout=60).status_code == 404


def test_worker_summary_counts_workers_cores_and_memory():
    identity = {
        "workers": {
            "tls://a:1": {"nthreads": 2, "memory_limit": 2 * 2**30},
            "tls://b:2": {"nthreads": 1, "memory_limit": 2**30},
        }
    }
    assert worker_summary(identity) == {"workers": 2, "cores": 3, "memory": "3.00 GiB"}
    assert worker_summary(None) == {"workers": 0, "cores": 0, "memory": "0 B"}


class Named(web.RequestHandler):
    def initialize(self, name: str) -> None:
        self.name = name


def test_prepended_handlers_win_over_earlier_ones():
    app = web.Application([(r"/dask/clusters/?", Named, {"name": "first"})])
    app.add_handlers(".*$", [(r"/dask/clusters/?", Named, {"name": "labextension"})])
    prepend_handlers(app, [(r"/dask/clusters/?", Named, {"name": "ours"})])
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/dask/clusters", "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "127.0.0.1"}),
    )
    delegate = app.find_handler(request)
    assert delegate.handler_kwargs == {"name": "ours"}
