"""Dask mode: a dask-awkward array of events with one partition per chunk of entries of each file.

Each partition is the lazy events array of its chunk, made on the worker by :class:`PartitionLoader` (which
opens the file there), so a partition reads only the branches its tasks touch. The array's ``meta`` is a
typetracer of the first file's form with the same behaviours; links resolve on it to the conventional target
collection of each link type.

Known limits of the locked dask-awkward 2025.3 with dask 2026.8 (dask-awkward 2026.2.1 requires dask < 2025.4,
so it cannot be installed next to dask 2026; checked with ``uv lock``):

- its "layer-chains" graph optimisation fails on every graph ("Cannot fuse tasks with multiple outputs"). There is
  no per-array switch: dask-awkward takes its optimiser from the global dask config (``awkward_array_optimize``)
  when a collection is computed. :func:`dask_events` sets that hook, in the process that makes dask-mode
  events and only if the user has not set it, to :func:`optimize_without_layer_chains`: dask-awkward's own
  optimisations minus that one. The function travels with the graph, so it also applies where distributed
  optimises graphs (the scheduler, with its own settings). ``awkward.optimization.which`` is left alone.
  :func:`working_optimizations` gives the same as a scoped ``with`` block (e.g. for coffea's dask mode).
- whole-array reductions (``dak.sum(x, axis=None)``, ``axis=0`` of a flat array) fail when the graph is built
  ("scalar conversion/promotion is disabled", awkward 2.14 type tracers): reduce per event and finish on the
  computed result, e.g. ``dak.num(events.Electrons, axis=1).compute()`` then ``ak.sum``.
- ``physlite.analysis.run(mode="dask")`` does not go through dask-awkward at all (one task per partition).

On a distributed cluster a partition is a lazy array: when several results use it, it stays on its worker
(sized by what it has read, see :func:`_register_sizeof`). It cannot be pickled (its buffers are read on
demand), so a graph that must move it to another worker, or a worker that spills it to disk, fails with a
pickling error; keep per-partition work on the events of that partition, or use ``run``-style tasks that return
small results. Column projection at load time (dask-awkward's projection protocol) would lift this; not done.

Example:
    >>> events = dask_events(["a.root", "b.root"], chunk_size=50_000)   # doctest: +SKIP
    >>> events.npartitions                                                # doctest: +SKIP
"""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Iterable
from typing import Any

import dask

from physlite.errors import PhysliteError
from physlite.events.behavior import FACTORY_ATTR
from physlite.events.model import open_model
from physlite.events.source import source_list

BROKEN_OPTIMIZATION = "layer-chains"
OPTIMIZATIONS_KEY = "awkward.optimization.which"
# dask-awkward's hooks (dask "globalmethod" keys) naming the graph optimiser of its arrays and scalars
OPTIMIZER_KEYS = ("awkward_array_optimize", "awkward_scalar_optimize")


def _without_broken(which: Iterable[str]) -> list[str]:
    return [name for name in which if name != BROKEN_OPTIMIZATION]


def optimize_without_layer_chains(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    """dask-awkward's graph optimisations minus "layer-chains", whatever the dask settings of the process that
    runs it: with distributed, the scheduler (its own process on a dask-gateway cluster) materialises and
    optimises graphs with its own settings, so a setting made on the client would not reach it.

    Example:
        >>> with dask.config.set(awkward_array_optimize=optimize_without_layer_chains):  # doctest: +SKIP
        ...     counts = dak.num(events.Electrons, axis=1).compute()
    """
    from dask_awkward.lib.optimize import all_optimizations

    which = _without_broken(dask.config.get(OPTIMIZATIONS_KEY, ["columns"]))
    with dask.config.set({OPTIMIZATIONS_KEY: which}):
        return all_optimizations(dsk, keys, **kwargs)


def working_optimizations() -> Any:
    """dask-awkward's optimisations without the one that fails on dask 2026, for a ``with`` block only.

    Example:
        >>> with working_optimizations():                                        # doctest: +SKIP
        ...     counts = dak.num(coffea_events.Electrons, axis=1).compute()
    """
    return dask.config.set({key: optimize_without_layer_chains for key in OPTIMIZER_KEYS})


def use_working_optimizations() -> None:
    """Make :func:`optimize_without_layer_chains` the optimiser of dask-awkward collections computed from this
    process, unless the user chose an optimiser (see the module's notes). Called by :func:`dask_events`."""
    import dask_awkward  # noqa: F401  (its defaults enter the dask config on import)

    for key in OPTIMIZER_KEYS:
        if dask.config.get(key, None) is None:
            dask.config.set({key: optimize_without_layer_chains})


def _sizeof_awkward(array: Any) -> int:
    nbytes = array.nbytes
    if isinstance(nbytes, numbers.Integral):
        return int(nbytes)
    # a lazy array (virtual buffers: length unknown until read): what its factory has read so far
    factory = array.attrs.get(FACTORY_ATTR) if array.attrs else None
    cache = getattr(factory, "_cache", {})
    return sum(int(b.nbytes) for buffers in cache.values() for b in buffers.values()) + sys.getsizeof(array)


def _register_sizeof() -> None:
    """dask-awkward sizes awkward arrays by ``nbytes``, which a lazy array (a dask-mode partition kept on a
    worker) does not know: distributed then fails with "cannot order unknown lengths". Same sizes for every
    other array; registered after dask-awkward's own (lazy) registration so that it takes its place."""
    import awkward as ak
    from dask.sizeof import sizeof

    sizeof.dispatch(ak.Array)  # runs dask-awkward's lazy registration first
    sizeof.register(ak.Array)(_sizeof_awkward)


_register_sizeof()


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

    use_working_optimizations()
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
