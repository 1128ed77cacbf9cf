"""physlite: read ATLAS DAOD_PHYSLITE files fast, ElementLinks included.

Example:
    >>> import physlite
    >>> with physlite.open("DAOD_PHYSLITE.art.pool.root") as f:  # doctest: +SKIP
    ...     pt = f.arrays(["AnalysisElectronsAuxDyn.pt"])["AnalysisElectronsAuxDyn.pt"]
    >>> events = physlite.events("DAOD_PHYSLITE.art.pool.root")  # doctest: +SKIP
"""

from __future__ import annotations

from physlite import errors
from physlite.reader.file import PhysliteFile, open, read

__all__ = ["PhysliteFile", "analysis", "errors", "events", "open", "read"]
__version__ = "0.1.0"

_LAZY_SUBMODULES = ("events", "analysis")  # heavier imports (vector, hist, dask-awkward), loaded on first use


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"physlite.{name}")
    raise AttributeError(f"module 'physlite' has no attribute {name!r}")
