"""Run the reference analysis over files: locally chunk by chunk (lazy or eager) or on dask, with a progress bar.

Example:
    >>> result = run(["a.root", "b.root"], mode="dask", chunk_size=10_000)   # doctest: +SKIP
    >>> cli_run(["a.root"])                                                  # doctest: +SKIP
    0
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from physlite.analysis.reference import COLLECTIONS, FLAGS, NEEDED_COLLECTIONS, AnalysisResult, run_chunk
from physlite.errors import PhysliteError
from physlite.events import MODES
from physlite.events.model import open_model
from physlite.events.source import source_list


def run(
    sources: Any,
    mode: str = "lazy",
    *,
    chunk_size: int = 100_000,
    progress: bool = False,
    scheduler: Any = None,
    compiled: bool = True,
) -> AnalysisResult:
    """The reference analysis over ``sources`` (path/URL or list), in ``mode`` ``lazy``, ``eager`` or ``dask``.

    Lazy and eager modes go through each file in chunks of ``chunk_size`` entries; dask mode makes one task
    per chunk (open, read, select: only the result leaves the worker) and computes them with ``scheduler``:
    dask's default when None, a scheduler name such as ``"processes"``, or a ``distributed.Client`` (e.g. of a
    dask-gateway cluster; results are added up as they arrive). ``compiled=False`` uses the awkward version of
    the selection (same counts, slower).

    Example:
        >>> client = gateway.new_cluster().get_client()                                  # doctest: +SKIP
        >>> result = run(files, mode="dask", chunk_size=50_000, scheduler=client, progress=True)  # doctest: +SKIP
    """
    if mode not in MODES:
        raise PhysliteError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if chunk_size <= 0:
        raise PhysliteError(f"chunk size must be positive, not {chunk_size}")
    files = source_list(sources)
    if mode == "dask":
        return _run_dask(files, chunk_size, scheduler, progress, compiled)
    total = AnalysisResult()
    bar = _progress_bar(progress)
    try:
        for path in files:
            model = open_model(path, collections=NEEDED_COLLECTIONS)
            try:
                if bar is not None:
                    bar.total = (bar.total or 0) + model.num_entries
                    bar.refresh()
                for start in range(0, model.num_entries, chunk_size):
                    stop = min(start + chunk_size, model.num_entries)
                    factory = model.factory(start, stop)
                    if mode == "eager":
                        factory.prefetch(factory.all_branches())
                    total = total + run_chunk(factory.events(), compiled=compiled)
                    if bar is not None:
                        bar.update(stop - start)
            finally:
                model.close()
    finally:
        if bar is not None:
            bar.close()
    return total


def _progress_bar(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=0, unit="events", unit_scale=True, desc="physlite analysis", file=sys.stderr)


def analyse_partition(part: tuple[str, int, int], compiled: bool = True) -> AnalysisResult:
    """The reference analysis of one partition ``(location, entry_start, entry_stop)`` of dask mode.

    Opening the file, reading and selecting happen in one task, so only the small result leaves the worker:
    a lazy events array is never a task's output (distributed cannot size or move one).

    Example:
        >>> analyse_partition(("PHYSLITE_example.root", 0, 50)).n_events   # doctest: +SKIP
        50
    """
    location, start, stop = part
    model = open_model(location, collections=NEEDED_COLLECTIONS)
    try:
        return run_chunk(model.factory(start, stop).events(), compiled=compiled)
    finally:
        model.close()


def _run_dask(files: list, chunk_size: int, scheduler: Any, progress: bool, compiled: bool) -> AnalysisResult:
    import dask

    from physlite.events.dask import partitions

    parts = partitions(files, chunk_size, NEEDED_COLLECTIONS)
    if not parts:
        raise PhysliteError(f"no entries in {', '.join(str(f) for f in files)}")
    if _is_distributed(scheduler):
        return _run_on_cluster(scheduler, parts, progress, compiled)
    # pure=False: every chunk is a task of its own, also when a file is listed twice
    tasks = [dask.delayed(analyse_partition, pure=False)(part, compiled) for part in parts]
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            results = dask.compute(*tasks, scheduler=scheduler)
    else:
        results = dask.compute(*tasks, scheduler=scheduler)
    total = AnalysisResult()
    for result in results:
        total = total + result
    return total


def _is_distributed(scheduler: Any) -> bool:
    return type(scheduler).__module__.startswith("distributed")


def _run_on_cluster(client: Any, parts: list, progress: bool, compiled: bool) -> AnalysisResult:
    """One future per chunk on a distributed (e.g. dask-gateway) client; results added as they arrive, with a
    progress bar in events (a widget in a notebook)."""
    from distributed import as_completed

    futures = client.map(analyse_partition, parts, compiled=compiled, pure=False)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(stop - start for _, start, stop in parts), unit="events", unit_scale=True)
        bar.set_description("physlite analysis")
    total = AnalysisResult()
    try:
        for future in as_completed(futures):
            result = future.result()
            total = total + result
            if bar is not None:
                bar.update(result.n_events)
    finally:
        client.cancel([f for f in futures if not f.done()])
        if bar is not None:
            bar.close()
    return total


def format_result(result: AnalysisResult, seconds: float) -> str:
    """A small table of the counts, for the command line."""
    lines = [f"{result.n_events} events in {seconds:.2f} s ({result.n_events / max(seconds, 1e-9):,.0f} Hz)"]
    lines.append(f"{'':12}" + "".join(f"{flag:>10}" for flag in FLAGS))
    for collection in COLLECTIONS:
        lines.append(f"{collection:12}" + "".join(f"{result.counts[collection][f]:>10}" for f in FLAGS))
    return "\n".join(lines)


def cli_run(
    paths: Sequence[str],
    *,
    mode: str = "lazy",
    chunk_size: int = 100_000,
    output: str | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
) -> int:
    """What ``physlite run analysis FILE...`` does: run, print the counts, optionally write them as JSON.

    Returns the exit code (0 on success, 2 on bad input, with the error printed to stderr).
    """
    out = stream or sys.stdout
    start = time.perf_counter()
    try:
        result = run(list(paths), mode=mode, chunk_size=chunk_size, progress=progress)
    except PhysliteError as error:
        print(f"physlite run analysis: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    print(format_result(result, seconds), file=out)
    if output:
        document = {**result.to_dict(), "seconds": seconds, "mode": mode, "files": list(paths)}
        with open(output, "w") as handle:
            json.dump(document, handle, indent=2)
    return 0
