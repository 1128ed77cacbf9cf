"""Fixtures of the event-model tests: the lazy events of each release's file and the raw reader."""

from __future__ import annotations

import pytest

import physlite
import physlite.events


@pytest.fixture
def events(physlite_path):
    return physlite.events.events(physlite_path)


@pytest.fixture
def raw(physlite_path):
    """The reader alone, to check the event model against raw branches."""
    with physlite.open(physlite_path) as f:
        yield f
