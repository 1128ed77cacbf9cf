"""A PHYSLITE file: its branches, their types and sizes, and reading them into awkward arrays.

The file's metadata comes from :mod:`physlite.reader.catalogue`; the baskets are read and decoded by physlite's own
kernels, several branches at a time on all cores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import awkward as ak
import numpy as np

from physlite.decode import branch as branch_decoder
from physlite.decode.baskets import NEVBUF, STATUS_MESSAGES, TABLE_COLUMNS, read_basket_table
from physlite.errors import BranchNotFoundError, CorruptDataError, PhysliteError, UnsupportedTypeError
from physlite.io import LocalSource, open_source
from physlite.reader.catalogue import BranchInfo, load_catalogue
from physlite.reader.event_format import event_format_bytes

DEFAULT_TREE = "CollectionTree"


def default_threads() -> int:
    """Decoding threads: ``PHYSLITE_THREADS`` if set, else the cores this process may use."""
    setting = os.environ.get("PHYSLITE_THREADS")
    if setting:
        try:
            return max(1, int(setting))
        except ValueError:
            raise PhysliteError(f"PHYSLITE_THREADS={setting!r} is not a number of threads") from None
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class PhysliteFile:
    """An open PHYSLITE file; use :func:`physlite.open`.

    Example:
        >>> with physlite.open("DAOD_PHYSLITE.root") as f:  # doctest: +SKIP
        ...     arrays = f.arrays(["AnalysisElectronsAuxDyn.pt", "AnalysisElectronsAuxDyn.trackParticleLinks"])
    """

    def __init__(
        self, location: str | os.PathLike, tree: str = DEFAULT_TREE, threads: int | None = None, **options
    ):
        self.location = str(location)
        self.threads = threads or default_threads()
        self._source = open_source(location, **options)
        self.location = self._source.location
        try:
            catalogue = load_catalogue(self._source, tree)
        except PhysliteError:
            self._source.close()
            raise
        self.tree_name = tree
        self.num_entries = catalogue.num_entries
        self.compression = catalogue.compression
        self._branches = catalogue.branches
        self._by_path = catalogue.by_path
        self.branches_read: set[str] = set()
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- metadata
    def keys(self, full_paths: bool = False) -> list[str]:
        """Names of all branches: leaves, and split ElementLink vectors under their parent's name; with
        ``full_paths``, as uproot's ``keys()`` spells them (``parent/leaf`` for sub-branches of split objects).
        Every method that takes a branch name takes either form.

        Example:
            >>> f.keys()[:1], f.keys(full_paths=True)[:1]  # doctest: +SKIP
            (['EventInfoAux.runNumber'], ['EventInfoAux./EventInfoAux.runNumber'])
        """
        if full_paths:
            return [info.path or name for name, info in self._branches.items()]
        return list(self._branches)

    def __contains__(self, name: str) -> bool:
        return name in self._branches or name in self._by_path

    def info(self, name: str) -> BranchInfo:
        """Metadata of branch ``name`` (a leaf name or uproot's ``parent/leaf`` key): type, layout, baskets, sizes."""
        try:
            return self._branches[self._by_path.get(name, name)]
        except KeyError:
            raise BranchNotFoundError(f"{self.location}: no branch {name!r} in {self.tree_name}") from None

    def typename(self, name: str) -> str:
        """The C++ type of branch ``name``."""
        return self.info(name).typename

    def event_format_bytes(self) -> bytes | None:
        """The raw bytes of the file's EventFormat metadata (ElementLink hash -> container), or None when the
        file has none; parsed by :func:`physlite.events.eventformat.parse_event_format`.

        Example:
            >>> with physlite.open("DAOD_PHYSLITE_21.2.108.0.art.pool.root") as f:  # doctest: +SKIP
            ...     parse_event_format(f.event_format_bytes())[0x1D3890DB]
            ('InDetTrackParticles', 'DataVector<xAOD::TrackParticle_v1>')
        """
        return event_format_bytes(self._source)

    def show(self, file=None) -> None:
        """Print every branch with its C++ type, decoder layout and uncompressed size."""
        width = max((len(n) for n in self._branches), default=10)
        for name, info in self._branches.items():
            layout = (
                info.layout.kind.value if info.layout else "no data" if info.holds_no_data else "unsupported"
            )
            print(
                f"{name:<{width}}  {info.typename:<60}  {layout:<12}  {info.uncompressed_bytes:>12,d} B",
                file=file,
            )

    # ----------------------------------------------------------------- reading
    def arrays(
        self, names: Iterable[str] | str, entry_start: int | None = None, entry_stop: int | None = None
    ) -> dict[str, ak.Array]:
        """Read branches ``names`` for entries [entry_start, entry_stop) into awkward arrays, in parallel.

        ElementLinks come back as records ``{m_persKey, m_persIndex}``. Names are leaf names or uproot's full
        ``parent/leaf`` keys; the result is keyed by the names as given.

        Example:
            >>> f.arrays(["AnalysisElectronsAuxDyn.pt"], entry_stop=10)["AnalysisElectronsAuxDyn.pt"]  # doctest: +SKIP
            <Array [[1.03e+05, 3.4e+04], [], ..., []] type='10 * var * float32'>
        """
        names = [names] if isinstance(names, str) else list(dict.fromkeys(names))
        start, stop = self._entry_range(entry_start, entry_stop)
        infos = [self.info(name) for name in names]
        for info in infos:
            if info.layout is None:
                raise UnsupportedTypeError(f"{self.location}: branch {info.name}: {info.unsupported_reason}")
        jobs = self._plan(list({info.name: info for info in infos}.values()), start, stop)  # a branch once
        # every job's byte ranges are requested up front: remote sources download while the first jobs decode
        work = list(zip(jobs, [self._request(job) for job in jobs], strict=True))
        if self.threads > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(min(self.threads, len(jobs))) as pool:
                parts = list(pool.map(lambda item: self._decode(item[0], item[1].result()), work))
        else:
            parts = [self._decode(job, fetched.result()) for job, fetched in work]
        pieces: dict[str, list[tuple[int, ak.contents.Content]]] = {}
        for job, part in zip(jobs, parts, strict=True):
            pieces.setdefault(job.member.name, []).append((job.first_entry, part))
        by_member = {}
        for name, found in pieces.items():
            found.sort(key=lambda piece: piece[0])
            base = found[0][0]
            by_member[name] = _concatenate([part for _, part in found])[start - base : stop - base]
        result = {}
        for name, info in zip(names, infos, strict=True):
            if info.members:
                keys, indices = (by_member[m.name] for m in info.members)
                try:
                    content = branch_decoder.join_split_links(keys, indices)
                except branch_decoder.DecodeFailure:
                    raise CorruptDataError(
                        f"{self.location}: branch {info.name}: .m_persKey and .m_persIndex disagree in length"
                    ) from None
            else:
                content = by_member[info.name]
            result[name] = ak.Array(content)
        with self._lock:
            self.branches_read.update(info.name for info in infos)
        return result

    def array(self, name: str, entry_start: int | None = None, entry_stop: int | None = None) -> ak.Array:
        """Read one branch; see :meth:`arrays`."""
        return self.arrays([name], entry_start, entry_stop)[name]

    def _entry_range(self, entry_start: int | None, entry_stop: int | None) -> tuple[int, int]:
        n = self.num_entries
        start = 0 if entry_start is None else (entry_start + n if entry_start < 0 else entry_start)
        stop = n if entry_stop is None else (entry_stop + n if entry_stop < 0 else entry_stop)
        start, stop = min(max(start, 0), n), min(max(stop, 0), n)
        return start, max(start, stop)

    def _plan(self, infos: list[BranchInfo], start: int, stop: int) -> list[_Job]:
        """One job per branch (or member branch) and entry range; big branches split so every thread has work."""
        jobs = []
        for info in infos:
            for member in info.members or (info,):
                first = member.first_entries
                chosen = np.nonzero((first[:-1] < stop) & (first[1:] > start))[0]
                if chosen.size == 0:
                    chosen = np.arange(min(1, first.size - 1))
                jobs.append(_Job(info, member, chosen))
        if self.threads > 1 and len(jobs) < self.threads:
            jobs = [piece for job in jobs for piece in job.split(self.threads)]
        return sorted(jobs, key=lambda job: -int(job.nbytes.sum()))

    def _request(self, job: _Job) -> Future:
        if isinstance(self._source, LocalSource):  # zero-copy: no background thread needed
            done: Future = Future()
            done.set_result(self._source.fetch(job.seeks, job.seeks + job.nbytes))
            return done
        return self._source.prefetch(job.seeks, job.seeks + job.nbytes)

    def _decode(self, job: _Job, fetched: tuple[np.ndarray, np.ndarray]) -> ak.contents.Content:
        info, member, chosen = job.info, job.member, job.baskets
        buffer, positions = fetched
        first = member.first_entries
        table = np.empty((chosen.size, TABLE_COLUMNS), np.int64)
        status = read_basket_table(buffer, positions, job.nbytes, first[chosen], self._source.size, table)
        if status != 0:
            raise CorruptDataError(f"{self.location}: branch {info.name}: {STATUS_MESSAGES[status]}")
        if not np.array_equal(table[:, NEVBUF], first[chosen + 1] - first[chosen]):
            raise CorruptDataError(
                f"{self.location}: branch {info.name}: basket entry counts disagree with the TTree"
            )
        try:
            return branch_decoder.decode(buffer, table, member.layout)
        except branch_decoder.DecodeFailure as failure:
            raise CorruptDataError(f"{self.location}: branch {info.name}: {failure.describe()}") from None

    # ----------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Release the file (memory map, connections)."""
        self._source.close()

    def __enter__(self) -> PhysliteFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<physlite file {self.location}: {self.num_entries} entries, {len(self._branches)} branches>"


@dataclass(frozen=True)
class _Job:
    """Decode ``baskets`` (indices) of ``member``, a branch or a member branch of ``info``."""

    info: BranchInfo
    member: BranchInfo
    baskets: np.ndarray

    @property
    def seeks(self) -> np.ndarray:
        return self.member.seeks[self.baskets]

    @property
    def nbytes(self) -> np.ndarray:
        return self.member.nbytes[self.baskets]

    @property
    def first_entry(self) -> int:
        return int(self.member.first_entries[self.baskets[0]]) if self.baskets.size else 0

    def split(self, parts: int) -> list[_Job]:
        """Contiguous pieces of about equal bytes (at least 4 baskets each), in entry order."""
        pieces = min(parts, self.baskets.size // 4)
        if pieces < 2:
            return [self]
        cumulative = np.cumsum(self.nbytes)
        cuts = np.searchsorted(cumulative, cumulative[-1] * np.arange(1, pieces) / pieces)
        return [_Job(self.info, self.member, chunk) for chunk in np.split(self.baskets, cuts) if chunk.size]


def _concatenate(pieces: list[ak.contents.Content]) -> ak.contents.Content:
    if len(pieces) == 1:
        return pieces[0]
    return ak.concatenate([ak.Array(piece) for piece in pieces], highlevel=False)


def open(
    location: str | os.PathLike, tree: str = DEFAULT_TREE, threads: int | None = None, **options
) -> PhysliteFile:
    """Open a PHYSLITE file (a local path; see :mod:`physlite.io` for URLs) and its ``CollectionTree``.

    Example:
        >>> import physlite
        >>> f = physlite.open("DAOD_PHYSLITE.art.pool.root")  # doctest: +SKIP
        >>> f.num_entries, len(f.keys())  # doctest: +SKIP
        (40, 1542)
    """
    return PhysliteFile(location, tree=tree, threads=threads, **options)


def read(location: str | os.PathLike, names: Sequence[str], **kwargs) -> dict[str, ak.Array]:
    """Open, read ``names`` and close: ``physlite.read(path, ["EventInfoAuxDyn.eventNumber"])``."""
    with open(location) as f:
        return f.arrays(names, **kwargs)
