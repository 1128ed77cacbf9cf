"""Shared test fixtures: where the real PHYSLITE files are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_SETTING = "PHYSLITE_TEST_DATA"
REPO = Path(__file__).resolve().parent.parent
R21_FILE = "DAOD_PHYSLITE_21.2.108.0.art.pool.root"
R22_FILE = "PHYSLITE_example.root"


def test_data_dir() -> Path:
    """The folder with the real PHYSLITE files (setting PHYSLITE_TEST_DATA, default ../shared/data)."""
    return Path(os.environ.get(DATA_SETTING, REPO.parent / "shared" / "data")).resolve()


# Facilities started by the tests hand this folder to users' servers as their example data.
os.environ.setdefault("AF_EXAMPLE_DATA", str(test_data_dir()))


def require_data_file(name: str) -> Path:
    """Path of a real PHYSLITE test file; fail with a clear message naming the setting when it is absent."""
    path = test_data_dir() / name
    if not path.is_file():
        pytest.fail(
            f"missing test file {path}: set {DATA_SETTING} to the folder holding {R21_FILE} and {R22_FILE}",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def r21_path() -> Path:
    return require_data_file(R21_FILE)


@pytest.fixture(scope="session")
def r22_path() -> Path:
    return require_data_file(R22_FILE)


@pytest.fixture(scope="session", params=[R21_FILE, R22_FILE], ids=["r21", "r22"])
def physlite_path(request) -> Path:
    return require_data_file(request.param)
