"""Dask mode: a dask-awkward array of events with one partition per chunk of entries of each file.

Each partition is the lazy events array of its chunk, made on the worker by :class:`PartitionLoader` (which
opens the file there), so a partition reads only the branches its tasks touch. The array's ``meta`` is a
typetracer of the first file's form with the same behaviours; links resolve on it to the conventional target
collection of each link type.

Example:
    >>> events = dask_events(["a.root", "b.root"], chunk_size=50_000)   # doctest: +SKIP
    >>> events.npartitions                                                # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import dask

from physlite.errors import PhysliteError
from physlite.events.model import open_model
from physlite.events.source import source_list

# dask-awkward 2025.3's "layer-chains" graph optimisation fails on dask 2026 ("Cannot fuse tasks with multiple
# outputs"); its column optimisation works. Keep only that one (process-wide, on the client that computes).
dask.config.set({"awkward.optimization.which": ["columns"]})


class PartitionLoader:
    """Makes the lazy events of ``(path, entry_start, entry_stop)`` (picklable, for dask workers)."""

    def __init__(self, collections: list[str] | None):
        self.collections = collections

    def __call__(self, part: tuple[str, int, int]):
        path, start, stop = part
        model = open_model(path, collections=self.collections)
        return model.factory(start, stop).events()


def partitions(
    sources: list[Any], chunk_size: int, collections: list[str] | None
) -> list[tuple[str, int, int]]:
    """``(path, entry_start, entry_stop)`` of every chunk of every file."""
    parts = []
    for source in sources:
        model = open_model(source, collections=collections)
        try:
            path = os.fspath(source)
            for start in range(0, model.num_entries, chunk_size):
                parts.append((path, start, min(start + chunk_size, model.num_entries)))
        finally:
            model.close()
    return parts


def dask_events(source: Any, chunk_size: int = 100_000, collections: Iterable[str] | None = None):
    """Events of ``source`` as a dask-awkward array, one partition per ``chunk_size`` entries of each file."""
    import dask_awkward as dak

    if chunk_size <= 0:
        raise PhysliteError(f"chunk_size must be positive, not {chunk_size}")
    wanted = list(collections) if collections is not None else None
    sources = source_list(source)
    parts = partitions(sources, chunk_size, wanted)
    if not parts:
        raise PhysliteError(f"no entries in {', '.join(os.fspath(s) for s in sources)}")
    model = open_model(sources[0], collections=wanted)
    try:
        meta = model.factory(0, 0, typetracer=True).events()
    finally:
        model.close()
    return dak.from_map(PartitionLoader(wanted), parts, label="physlite-events", meta=meta)
