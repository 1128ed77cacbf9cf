"""Fixtures of the image tests: the chart rendered offline (what the hub and gateway containers are given)."""

from __future__ import annotations

import pytest

from af.tools.check.chart import render, standalone_copy
from af.tools.check.repo import Repo

from .containers import REPO


@pytest.fixture(scope="module")
def rendered():
    """The chart's default values rendered offline, as `make check` renders them."""
    repo = Repo.discover(REPO)
    with standalone_copy(repo) as chart_dir:
        result, findings = render(repo, chart_dir, None)
    assert result is not None, [str(f) for f in findings]
    return result
