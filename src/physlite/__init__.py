"""physlite: read ATLAS DAOD_PHYSLITE files fast, ElementLinks included.

Example:
    >>> import physlite
    >>> with physlite.open("DAOD_PHYSLITE.art.pool.root") as f:  # doctest: +SKIP
    ...     pt = f.arrays(["AnalysisElectronsAuxDyn.pt"])["AnalysisElectronsAuxDyn.pt"]
"""

from __future__ import annotations

from physlite import errors
from physlite.file import PhysliteFile, open, read

__all__ = ["PhysliteFile", "errors", "open", "read"]
__version__ = "0.1.0"
