"""Execute a tutorial notebook with nbclient, papermill style: parameters injected after the cell tagged
``parameters``, a final cell that reports values from the kernel as JSON, the executed copy and its run time
saved under ``build/notebooks/`` (outputs are never written back to ``notebooks/``).

The kernel's stderr is kept too (``Executed.stderr``, ``build/notebooks/<label>.stderr``): Python prints
exceptions raised in ``__del__`` there or in a cell's stderr. The check cell can call ``figure_checks``.

Example:
    >>> run = execute("02_physlite", parameters={"REPEAT": 2}, checks="{'n': f.num_entries}")  # doctest: +SKIP
    >>> run.checks["n"], run.images, run.seconds                                              # doctest: +SKIP
    (100, 1, 14.2)
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
BUILD = REPO / "build" / "notebooks"
CHECKS_MARKER = "NOTEBOOK-CHECKS "
# The settings the kernel must get from the test (what the facility sets), never from the environment of pytest.
DATA_SETTINGS = ("AF_EXAMPLE_DATA", "PHYSLITE_TEST_DATA")
# A decimal number with 6 or more digits after the point: float32 or binary-fraction noise, not a measurement.
FLOAT_NOISE = re.compile(r"\d\.\d{6,}")


@dataclass
class Executed:
    """An executed notebook, the values its check cell reported, and how long it ran (kernel start included)."""

    name: str
    notebook: nbformat.NotebookNode
    seconds: float
    checks: dict[str, Any]
    stderr: str = ""

    def outputs(self) -> list[dict]:
        return [output for cell in self.notebook.cells if cell.cell_type == "code" for output in cell.outputs]

    @property
    def images(self) -> int:
        """How many PNG figures the notebook displayed."""
        return sum("image/png" in output.get("data", {}) for output in self.outputs())

    def text(self) -> str:
        """All printed text and plain-text results, in order (stdout, stderr and ``text/plain``)."""
        parts = []
        for output in self.outputs():
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            elif "text/plain" in output.get("data", {}):
                parts.append(output["data"]["text/plain"])
        return "\n".join(parts)

    def errors(self) -> str:
        """The kernel's stderr and every stderr stream or error output of the cells."""
        parts = [self.stderr]
        for output in self.outputs():
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                parts.append(output["text"])
            elif output.get("output_type") == "error":
                parts.append("\n".join(output["traceback"]))
        return "\n".join(parts)

    def float_noise(self) -> list[str]:
        """Numbers printed with more digits than any measurement has (``33.79999923706055``)."""
        return FLOAT_NOISE.findall(self.text())


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict[str, Any]) -> None:
    """Insert ``NAME = value`` assignments after the cell tagged ``parameters`` (as papermill does)."""
    if not parameters:
        return
    positions = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    if not positions:
        raise ValueError(f"{notebook.metadata.get('title', 'notebook')}: no cell tagged 'parameters'")
    source = "# parameters injected by the tests\n" + "".join(f"{k} = {v!r}\n" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(positions[0] + 1, cell)


def kernel_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: this one, with this virtual environment's scripts first on PATH (as in a
    user's server, where the `physlite` command is on PATH), plus ``extra``."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("MPLBACKEND", None)  # the kernel's inline backend makes the PNG outputs
    for name in DATA_SETTINGS:  # only what the test passes in ``extra``
        env.pop(name, None)
    env.update(extra or {})
    return env


def execute(
    name: str,
    *,
    parameters: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    checks: str = "{}",
    workdir: Path | None = None,
    timeout: int = 300,
    label: str | None = None,
    runs: int = 1,
) -> Executed:
    """Run ``notebooks/<name>.ipynb`` top to bottom, ``runs`` times in the same kernel; ``checks`` is a Python
    expression (a dict of JSON-able values) evaluated in the kernel after the last cell; ``label`` names the
    run in the timings (default: ``name``). Raises CellExecutionError naming the failing cell."""
    path = NOTEBOOKS / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    inject_parameters(notebook, parameters or {})
    once = notebook.cells
    notebook.cells = [*once, *(_copy(cell) for _ in range(runs - 1) for cell in once)]
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            f"import json as _json\nimport sys as _sys\n_sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"import figure_checks\nprint({CHECKS_MARKER!r} + _json.dumps({checks}))"
        )
    )
    workdir = workdir or BUILD / "work" / name
    workdir.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    BUILD.mkdir(parents=True, exist_ok=True)
    stderr_path = BUILD / f"{label or name}.stderr"
    started = time.perf_counter()
    try:
        with stderr_path.open("w") as stderr:
            client.execute(env=kernel_environment(env), stderr=stderr)
    finally:
        seconds = time.perf_counter() - started
        save(label or name, notebook, seconds)
    reported = [line for line in _stdout(notebook.cells[-1]).splitlines() if line.startswith(CHECKS_MARKER)]
    if not reported:
        raise CellExecutionError(f"{name}: the check cell printed nothing", "", "")
    notebook.cells.pop()
    checks = json.loads(reported[0][len(CHECKS_MARKER) :])
    return Executed(name, notebook, seconds, checks, stderr_path.read_text())


def _copy(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The same cell again, under a new id (ids are unique within a notebook)."""
    if cell.cell_type == "code":
        return nbformat.v4.new_code_cell(cell.source, metadata=cell.metadata)
    return nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(o["text"] for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def save(name: str, notebook: nbformat.NotebookNode, seconds: float) -> None:
    """Keep the executed copy (for reading failures in CI) and record the run time."""
    BUILD.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, BUILD / f"{name}.executed.ipynb")
    timings_path = BUILD / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    timings[name] = round(seconds, 1)
    timings_path.write_text(json.dumps(dict(sorted(timings.items())), indent=1) + "\n")
