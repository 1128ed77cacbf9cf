"""The ``physlite`` command: inspect files and read branches from the shell.

Example:
    $ physlite inspect DAOD_PHYSLITE.art.pool.root
    $ physlite read DAOD_PHYSLITE.art.pool.root AnalysisElectronsAuxDyn.pt --entry-stop 100
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence

import awkward as ak
import numpy as np

import physlite
from physlite.errors import PhysliteError
from physlite.reader.interfaces import collection_of


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def inspect(path: str, out=None) -> None:
    """Print entries, compression, branch counts and sizes per collection."""
    out = out or sys.stdout
    with physlite.open(path) as f:
        infos = [f.info(name) for name in f.keys()]
        readable = sum(info.layout is not None for info in infos)
        links = sum(info.layout is not None and info.layout.is_link for info in infos)
        zipped = sum(info.compressed_bytes for info in infos)
        total = sum(info.uncompressed_bytes for info in infos)
        print(f"file         {f.location}", file=out)
        print(f"tree         {f.tree_name}, {f.num_entries} entries", file=out)
        print(f"compression  {f.compression}", file=out)
        empty = [info for info in infos if info.holds_no_data]
        unreadable = [info for info in infos if info.layout is None and not info.holds_no_data]
        print(
            f"branches     {len(infos)} ({readable} readable, {links} ElementLink, {len(empty)} hold no data, "
            f"{len(unreadable)} unreadable)",
            file=out,
        )
        _print_not_read(empty, unreadable, out)
        ratio = total / zipped if zipped else 0.0
        print(
            f"size         {_size(zipped)} on disk, {_size(total)} uncompressed (ratio {ratio:.2f})", file=out
        )
        groups: dict[str, list] = defaultdict(list)
        for info in infos:
            groups[collection_of(info.name)].append(info)
        print(f"\n{'collection':<48} {'branches':>8} {'links':>6} {'on disk':>10} {'uncompr.':>10}", file=out)
        for name, members in sorted(
            groups.items(), key=lambda item: -sum(i.compressed_bytes for i in item[1])
        ):
            n_links = sum(i.layout is not None and i.layout.is_link for i in members)
            on_disk = sum(i.compressed_bytes for i in members)
            raw = sum(i.uncompressed_bytes for i in members)
            print(
                f"{name:<48} {len(members):>8} {n_links:>6} {_size(on_disk):>10} {_size(raw):>10}", file=out
            )


def _print_not_read(empty: list, unreadable: list, out) -> None:
    """What the branches physlite does not read are: no data (and why), or types it cannot decode."""
    kinds: dict[str, int] = defaultdict(int)
    for info in empty:
        kinds[info.unsupported_reason.removeprefix("holds no data: ").split(": ")[0]] += 1
    for kind, count in sorted(kinds.items(), key=lambda item: -item[1]):
        print(f"no data      {count:>4} x {kind}", file=out)
    if kinds:
        print(
            "             (bookkeeping only: the values are in the Aux./AuxDyn. variable branches)", file=out
        )
    for info in unreadable:
        print(f"unreadable   {info.name}: {info.unsupported_reason}", file=out)


def _summary(array: ak.Array) -> str:
    flat = ak.flatten(array, axis=None)
    if isinstance(ak.type(flat).content, ak.types.NumpyType) and len(flat) > 0:
        values = np.asarray(flat)
        if values.dtype.kind in "iufb":
            values = values.astype(np.float64)
            return f"{len(values)} values, min {values.min():.6g}, mean {values.mean():.6g}, max {values.max():.6g}"
    return f"{len(flat)} values"


def read(
    path: str, branches: Sequence[str], entry_start: int | None, entry_stop: int | None, out=None
) -> None:
    """Print type, length, a value summary and the first entries of each branch."""
    out = out or sys.stdout
    with physlite.open(path) as f:
        arrays = f.arrays(branches, entry_start, entry_stop)
        for name, array in arrays.items():
            print(f"{name}  ({f.typename(name)})", file=out)
            print(f"  type    {array.type}", file=out)
            print(f"  values  {_summary(array)}", file=out)
            print(f"  first   {array[:3].to_list()!s:.300}", file=out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="physlite", description="Read ATLAS DAOD_PHYSLITE files.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect_cmd = commands.add_parser(
        "inspect", help="collections, entries, branch counts, sizes, compression"
    )
    inspect_cmd.add_argument("file")
    read_cmd = commands.add_parser("read", help="read branches and summarise their values")
    read_cmd.add_argument("file")
    read_cmd.add_argument("branches", nargs="+", metavar="BRANCH")
    read_cmd.add_argument("--entry-start", type=int, default=None)
    read_cmd.add_argument("--entry-stop", type=int, default=None)
    run_cmd = commands.add_parser("run", help="run a reference analysis (physlite.analysis) over files")
    run_cmd.add_argument("analysis", choices=["analysis"], help="which analysis: the SUSY-style reference")
    run_cmd.add_argument("files", nargs="+", metavar="FILE")
    run_cmd.add_argument("--mode", choices=["lazy", "eager", "dask"], default="lazy")
    run_cmd.add_argument("--chunk-size", type=int, default=100_000, help="entries per chunk (dask partition)")
    run_cmd.add_argument("--output", default=None, metavar="JSON", help="also write the counts as JSON")
    run_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``physlite`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "inspect":
            inspect(args.file)
        elif args.command == "read":
            read(args.file, args.branches, args.entry_start, args.entry_stop)
        elif args.command == "run":
            from physlite.analysis import cli_run

            return cli_run(
                args.files,
                mode=args.mode,
                chunk_size=args.chunk_size,
                output=args.output,
                progress=not args.no_progress,
            )
    except PhysliteError as error:
        print(f"physlite: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
