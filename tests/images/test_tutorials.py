"""Every tutorial in notebooks/ executes inside the notebook image as a user's server runs it (uid 1000, read-only
root, home volume, no network) with the example data mounted read-only and named by AF_EXAMPLE_DATA: nbclient and
the kernel both run in the container; no cell fails and nothing is printed as a traceback.

Tutorials that need servers outside the container are skipped here with the reason: 04 reads over https, root://
and rucio (the test servers of tests/io run on the host's loopback, which a container without network cannot reach;
tests/notebooks runs it), 05 and 07 need the facility's dask-gateway and ServiceX: tests/e2e/
test_tutorials_in_containers.py runs them in a user's server container of this image on the local facility.
"""

from __future__ import annotations

import nbformat
import pytest

from tests.conftest import test_data_dir as example_data
from tests.notebooks.execute import NOTEBOOKS, inject_parameters

from .containers import HOME, home_volume, image, run

NEEDS_SERVERS = {
    "04_remote_data": "needs the https, XRootD and rucio test servers on the host's loopback",
    "05_scaling_out": "needs a dask-gateway: tests/e2e/test_tutorials_in_containers.py runs it in this image",
    "07_servicex": "needs the facility's ServiceX: tests/e2e/test_tutorials_in_containers.py runs it in this image",
}
# fewer repetitions than a user's default, as in tests/notebooks
PARAMETERS = {"02_physlite": {"REPEAT": 2}, "06_coffea": {"CHUNK_SIZE": 50}}
RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
try:
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[3]}}).execute()
finally:
    nbformat.write(notebook, sys.argv[2])
"""


@pytest.mark.parametrize("name", sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
def test_tutorial_runs_in_the_notebook_image(name, tmp_path):
    if name in NEEDS_SERVERS:
        pytest.skip(f"{name} {NEEDS_SERVERS[name]}")
    home = home_volume(tmp_path / "home")
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    inject_parameters(notebook, PARAMETERS.get(name, {}))
    nbformat.write(notebook, home / "tutorial.ipynb")
    done = run(
        image("notebook"),
        ["python", "-c", RUNNER, f"{HOME}/tutorial.ipynb", f"{HOME}/executed.ipynb", HOME],
        home=home,
        data=example_data(),
        timeout=900,
    )
    executed = nbformat.read(home / "executed.ipynb", as_version=4)
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs]
    failures = [
        "\n".join(output.get("traceback", [])) or output.get("text", "")
        for output in outputs
        if output.get("output_type") == "error" or "Traceback" in output.get("text", "")
    ]
    assert failures == [], f"{name} in the image:\n" + "\n".join(failures)[:4000] + done.stderr[-2000:]
    assert outputs, f"{name} printed nothing"
