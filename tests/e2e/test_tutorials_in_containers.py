"""The tutorials that need the facility's servers, as a user runs them: the copy in the user's home, executed cell
by cell in the user's own server (a container of the notebook image), on the facility's dask-gateway (workers in
containers of the same image) and its ServiceX. Their results equal direct reads of the same example file.

tests/images runs the other tutorials in the bare image; tutorial 4 reads from the https, XRootD and rucio test
servers, which listen on the host's loopback for tests/io and are not part of the facility (tests/notebooks runs it).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import awkward as ak
import nbformat
import pytest
import uproot

import physlite
from af.tools.remote_kernel import RemoteKernel
from physlite.analysis import run as run_reference
from tests.e2e.test_isolation import start_server
from tests.notebooks.execute import CHECKS_MARKER, inject_parameters
from tests.notebooks.test_07_servicex import CHECKS as SERVICEX_CHECKS
from tests.notebooks.test_07_servicex import COLUMNS

pytestmark = pytest.mark.e2e
USER = "alice"
EXAMPLE = "PHYSLITE_example.root"
COPIES = 4
# what the tutorial computed (tests/notebooks checks the figures too, with helpers the image does not carry)
SCALING_OUT_CHECKS = (
    "{'n_events': total.n_events, 'counts': total.counts, 'workers': len(on_workers), "
    "'versions': worker_versions, 'tasks': sum(chunks_per_worker.values()), "
    "'workers_used': sorted(chunks_per_worker), 'cluster_workers': sorted(on_workers), 'running': running, "
    "'jet_pt_sum': float(total.histograms['jet_pt'].sum(flow=True))}"
)


def example_file() -> Path:
    return Path(os.environ.get("PHYSLITE_TEST_DATA") or os.environ["AF_EXAMPLE_DATA"]) / EXAMPLE


def run_tutorial(facility, hub, name: str, parameters: dict, checks: str) -> dict:
    """Run the user's copy of tutorial `name` in the user's server; the values of the `checks` expression."""
    copy = facility.state_dir / "homes" / USER / "tutorials" / f"{name}.ipynb"
    notebook = nbformat.read(copy, as_version=4)
    return run_in_server(f"{facility.url}/user/{USER}", hub.user_token(USER), notebook, parameters, checks)


def run_in_server(server_url: str, token: str, notebook, parameters: dict, checks: str) -> dict:
    """Run `notebook`'s code cells (with `parameters` injected) in a kernel of the server at `server_url`, in the
    tutorials folder; the values of the `checks` expression evaluated after the last cell."""
    inject_parameters(notebook, parameters)
    cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    cells.append(f"import json\nprint({CHECKS_MARKER!r} + json.dumps({checks}))")

    async def go() -> list:
        # the kernel's working folder is the tutorial's, as when the user opens it in JupyterLab
        async with RemoteKernel(server_url, token, timeout=600) as kernel:
            await kernel.execute("import os; os.chdir(os.path.expanduser('~/tutorials'))")
            return [await kernel.execute(code, timeout=600) for code in cells]

    results = asyncio.run(go())
    line = next(line for line in results[-1].stdout.splitlines() if line.startswith(CHECKS_MARKER))
    return json.loads(line[len(CHECKS_MARKER) :])


@pytest.fixture(scope="module")
def server(facility, hub):
    assert start_server(hub, USER).status_code in (201, 202)


def test_scaling_out_on_the_gateway_from_a_users_container(facility, hub, server):
    checks = run_tutorial(
        facility,
        hub,
        "05_scaling_out",
        {"FILE_NAME": EXAMPLE, "COPIES": COPIES, "CHUNK_SIZE": 50, "WORKERS": 2},
        SCALING_OUT_CHECKS,
    )
    local = run_reference([example_file()] * COPIES)
    assert checks["n_events"] == local.n_events == 100 * COPIES
    assert checks["counts"] == local.counts
    assert checks["jet_pt_sum"] == local.histograms["jet_pt"].sum(flow=True) > 0
    assert checks["tasks"] == 2 * COPIES
    assert set(checks["workers_used"]) <= set(checks["cluster_workers"]) and checks["workers"] == 2
    assert checks["versions"] == [physlite.__version__]  # the workers' image carries this physlite
    assert checks["running"] == [], "the tutorial leaves no cluster running"


def test_servicex_from_a_users_container(facility, hub, server):
    checks = run_tutorial(facility, hub, "07_servicex", {"FILE_NAME": EXAMPLE}, SERVICEX_CHECKS)
    with uproot.open(example_file()) as f:
        direct = f["CollectionTree"].arrays(COLUMNS, library="ak")
    direct = direct[ak.num(direct[COLUMNS[0]]) >= 1]
    assert checks["n_events"] == len(direct) > 0
    assert checks["n_electrons"] == int(ak.sum(ak.num(direct[COLUMNS[0]])))
    assert checks["pt_sum"] == pytest.approx(float(ak.sum(direct[COLUMNS[0]])) / 1000.0, rel=1e-6)  # GeV
