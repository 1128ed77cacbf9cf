"""Fixtures of the notebook tests: the kernel environment pointing at the real test data."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_env(r21_path: Path, r22_path: Path) -> dict[str, str]:
    """What the facility sets in a user's server: where the PHYSLITE files are."""
    return {"PHYSLITE_TEST_DATA": str(r22_path.parent)}
