"""Tutorial 1 as a user meets it: the copy in a user's home, run cell by cell in that user's own server, spawned
by the local facility's hub with the standard profile (1 core, 2 GB), through the hub's proxy."""

from __future__ import annotations

import asyncio
import json
import time

import nbformat

from af.tools.remote_kernel import RemoteKernel

from .conftest import hub_api, user_token
from .execute import CHECKS_MARKER

USER = "bob"


def wait_ready(facility, username: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = hub_api(facility, "GET", f"/users/{username}").json()["servers"].get("")
        if server and server.get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"server of {username} not ready after {timeout} s")


async def run_cells(server_url: str, token: str, cells: list[str]) -> list:
    async with RemoteKernel(server_url, token, timeout=300) as kernel:
        return [await kernel.execute(code, timeout=300) for code in cells]


def test_welcome_runs_in_a_user_server(local_facility, r21_path, r22_path):
    token = user_token(local_facility, USER)
    response = hub_api(local_facility, "POST", f"/users/{USER}/server", json={"profile": "standard"})
    assert response.status_code in (201, 202), response.text
    try:
        wait_ready(local_facility, USER)
        copy = local_facility.state_dir / "homes" / USER / "tutorials" / "01_welcome.ipynb"
        notebook = nbformat.read(copy, as_version=4)
        cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
        checks = (
            "{'entries': entries, 'cores': cores, 'memory': memory, 'user': os.environ['JUPYTERHUB_USER']}"
        )
        cells.append(f"import json\nprint({CHECKS_MARKER!r} + json.dumps({checks}))")
        results = asyncio.run(run_cells(f"{local_facility.url}/user/{USER}", token, cells))
    finally:
        hub_api(local_facility, "DELETE", f"/users/{USER}/server")
    line = next(line for line in results[-1].stdout.splitlines() if line.startswith(CHECKS_MARKER))
    reported = json.loads(line[len(CHECKS_MARKER) :])
    assert reported["user"] == USER
    assert reported["entries"] == {r21_path.name: 40, r22_path.name: 100}
    # the standard profile's limits, as the notebook sees them
    assert reported["cores"] == 1
    assert reported["memory"] == 2 * 1024**3
    printed = "".join(result.stdout for result in results)
    assert "tree         CollectionTree, 100 entries" in printed  # `!physlite inspect` found the command
    figures = [text for result in results for text in result.results if text.startswith("<Figure size")]
    assert len(figures) == 1
