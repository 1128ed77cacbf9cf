"""The PHYSLITE event model: collections with physics names, resolved ElementLinks, four-vectors.

``physlite.events(source, mode=...)`` is the one entry point (this module is callable):

- ``mode="lazy"`` (default): an awkward array whose branches are read the first time a field is touched;
  touching ``events.Electrons.pt`` reads that one branch (its offsets included) and nothing else.
- ``mode="eager"``: the same array with every branch of the chosen collections read up front.
- ``mode="dask"``: a dask-awkward array, one partition per chunk of ``chunk_size`` entries of each file.

``source`` is a path or URL, or a list of them (read as one sequence of events). Momenta, energies and masses
are in MeV, as ATLAS writes them.

Example:
    >>> import physlite.events
    >>> events = physlite.events("PHYSLITE_example.root")                 # doctest: +SKIP
    >>> events.Electrons.trackParticles.z0                                 # doctest: +SKIP
    >>> events.TruthElectrons.parents.children.pdgId                       # doctest: +SKIP
    >>> (events.Electrons[:, 0] + events.Electrons[:, 1]).mass            # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
import types as _pytypes
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import awkward as ak

from physlite.errors import PhysliteError
from physlite.events.model import EventModel, iterate, open_model

Mode = Literal["lazy", "eager", "dask"]
MODES = ("lazy", "eager", "dask")


def events(
    source: Any,
    mode: Mode = "lazy",
    *,
    collections: Iterable[str] | None = None,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    chunk_size: int = 100_000,
    **options: Any,
) -> Any:
    """The events of ``source`` (one path/URL or several) as an awkward array (``lazy``/``eager``) or a
    dask-awkward array (``dask``, one partition per ``chunk_size`` entries of each file).

    Other ``options`` go to the files' sources in ``lazy``/``eager`` mode (e.g. ``token``, a bearer token for
    https/root:// storage, see :func:`physlite.io.open_source`).

    ``collections`` restricts the model to some collections (physics names, e.g. ``["Electrons", "Jets"]``);
    links to collections left out give None.

    Example:
        >>> events = physlite.events(["a.root", "b.root"], mode="dask", chunk_size=10_000)  # doctest: +SKIP
        >>> events.Muons.pt.npartitions                                                      # doctest: +SKIP
    """
    if mode not in MODES:
        raise PhysliteError(f"unknown mode {mode!r} for physlite.events: use one of {', '.join(MODES)}")
    if mode == "dask":
        from physlite.events.dask import dask_events

        if entry_start is not None or entry_stop is not None:
            raise PhysliteError("physlite.events: entry_start/entry_stop are not supported in dask mode")
        if options:
            raise PhysliteError(
                f"physlite.events: source options ({', '.join(options)}) need lazy or eager mode"
            )
        return dask_events(source, chunk_size=chunk_size, collections=collections)
    model = open_model(source, collections=collections, **options)
    start = 0 if entry_start is None else entry_start
    stop = model.num_entries if entry_stop is None else min(entry_stop, model.num_entries)
    if not 0 <= start <= stop:
        raise PhysliteError(
            f"physlite.events: bad entry range [{entry_start}, {entry_stop}) of {model.where}"
        )
    factory = model.factory(start, stop)
    if mode == "eager":
        factory.prefetch(factory.all_branches())
        return ak.materialize(factory.events())
    return factory.events()


class _CallableModule(_pytypes.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return events(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # pickle (and cloudpickle, which only knows plain modules) sends this module by reference: a function
        # written in a notebook that calls physlite.events(...) can go to dask workers, which import it there
        return importlib.import_module, (self.__name__,)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["MODES", "EventModel", "Iterator", "events", "iterate", "open_model"]
