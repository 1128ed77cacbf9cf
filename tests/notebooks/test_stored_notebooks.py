"""The tutorials as stored in git: valid, without outputs, parametrisable, and every one executed by a test."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from .execute import NOTEBOOKS

STORED = sorted(NOTEBOOKS.glob("*.ipynb"))
TESTS = Path(__file__).resolve().parent


def test_there_are_seven_tutorials():
    assert [path.stem.split("_")[0] for path in STORED] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", STORED, ids=[path.stem for path in STORED])
def test_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code), (
        f"{path.name} has outputs"
    )
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    assert not any("%run" in cell.source for cell in code), f"{path.name}: no %run workarounds"


@pytest.mark.parametrize("path", STORED, ids=[path.stem for path in STORED])
def test_every_tutorial_is_executed_by_a_test(path):
    executed = "".join(test.read_text() for test in TESTS.glob("test_0*.py"))
    assert f'"{path.stem}"' in executed, f"no test executes {path.name}"
