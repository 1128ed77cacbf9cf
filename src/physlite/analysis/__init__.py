"""Reference analyses on the PHYSLITE event model, filling ``hist`` histograms.

Example:
    >>> from physlite.analysis import run
    >>> result = run(["PHYSLITE_example.root"], mode="lazy")   # doctest: +SKIP
    >>> result.counts["Muons"]["signal"]                       # doctest: +SKIP
"""

from physlite.analysis.reference import AnalysisResult, run_chunk
from physlite.analysis.runner import cli_run, run

__all__ = ["AnalysisResult", "cli_run", "run", "run_chunk"]
