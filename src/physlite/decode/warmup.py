"""Compile every decode kernel into numba's on-disk cache, at install or image build time.

Run by ``make venv`` and by the image builds (``python -m physlite.decode.warmup``). Each kernel is called once
with empty inputs of the exact types the reader uses, which compiles it and stores the machine code next to the
module (``__pycache__``). Set ``NUMBA_CPU_NAME=generic`` both when warming and when running to get code that any
x86-64 CPU can load (the images do); without it the cache is specific to this machine's CPU.

``--check`` makes the same calls in a fresh process and fails unless every kernel was loaded from the cache, none
compiled: the image build runs it as the user (uid 1000) after warming up as root, since numba silently compiles
into ``~/.cache/numba`` whatever it cannot load (see :mod:`physlite.decode.prebuilt_cache`).

Example:
    $ NUMBA_CPU_NAME=generic python -m physlite.decode.warmup
    physlite: 9 kernels compiled or loaded in 41.2 s (cpu: generic)
    $ NUMBA_CPU_NAME=generic python -m physlite.decode.warmup --check
    physlite: 9 kernels loaded from numba's cache, none compiled, in 1.1 s (cpu: generic)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
from numba.core import caching, config

from physlite.decode import branch, kernels
from physlite.decode.baskets import TABLE_COLUMNS, read_basket_table
from physlite.decode.layouts import Kind, Layout

WARM_LAYOUTS = [
    Layout(Kind.FIXED, np.dtype("f4")),
    Layout(Kind.FIXED, np.dtype([("a", "u4"), ("b", "u4")])),
    Layout(Kind.VECTOR, np.dtype("f4"), header=10),
    Layout(Kind.NESTED, np.dtype("f4"), depth=2),
    Layout(Kind.STRINGS, counted=True),
    Layout(Kind.LINK_NESTED, np.dtype("u4")),
    Layout(Kind.LINK_VECTOR, np.dtype("u4")),
    Layout(Kind.LINK_SCALAR, np.dtype("u4")),
]


DISPATCHERS = (
    read_basket_table,
    kernels.decode_fixed,
    kernels.decode_vector,
    kernels.decode_nested,
    kernels.decode_strings,
    kernels.decode_link_nested,
    kernels.decode_link_vector,
    kernels.decode_link_scalar,
    kernels.swap_bytes,
)


def compile_all() -> int:
    """Compile (or load from the cache) every kernel, for read-only and writable input; return the kernel count."""
    writable = np.zeros(0, np.uint8)
    readonly = np.zeros(0, np.uint8)
    readonly.setflags(write=False)  # memory-mapped local files are read-only arrays: a distinct numba type
    table = np.zeros((0, TABLE_COLUMNS), np.int64)
    for raw in (writable, readonly):
        for layout in WARM_LAYOUTS:
            branch.decode(raw, table, layout)
        read_basket_table(raw, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 0, table)
    return sum(1 for d in DISPATCHERS if d.signatures)


def compiled_not_loaded() -> list[str]:
    """After :func:`compile_all`: each kernel that numba compiled instead of loading it from its cache.

    Example:
        >>> compile_all(); compiled_not_loaded()  # doctest: +SKIP
        []
    """
    return [
        f"{d.py_func.__module__}.{d.__name__}: {misses} compiled, {len(d.stats.cache_hits)} loaded "
        f"(cache folder {d._cache.cache_path})"
        for d in DISPATCHERS
        if (misses := sum(d.stats.cache_misses.values()))
    ]


def _drop_stale_cache() -> None:
    """numba keys a kernel's cache on its own file only, so a kernel compiled against an older version of a module it
    calls (e.g. compression.py) would be reused. Drop the cache when any source of the package changed."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(package.glob("*.py")))).hexdigest()
    cache = package / "__pycache__"
    if config.CACHE_DIR:  # numba's layout there: one folder per source folder
        cache = Path(config.CACHE_DIR) / caching._CacheLocator.get_suitable_cache_subpath(kernels.__file__)
    stamp = cache / "physlite-kernels.sha256"
    if stamp.is_file() and stamp.read_text() == digest:
        return
    for path in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
        path.unlink()
    cache.mkdir(exist_ok=True)
    stamp.write_text(digest)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m physlite.decode.warmup [--check]``; exit status 1 when ``--check`` fails."""
    parser = argparse.ArgumentParser(
        prog="python -m physlite.decode.warmup", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail unless every kernel loads from the cache (nothing compiles)",
    )
    check = parser.parse_args(argv).check
    start = time.perf_counter()
    if not check:
        with contextlib.suppress(OSError):  # a read-only install keeps what it has
            _drop_stale_cache()
    ready = compile_all()
    cpu = os.environ.get("NUMBA_CPU_NAME", "this machine's")
    seconds = time.perf_counter() - start
    if not check:
        print(f"physlite: {ready} kernels compiled or loaded in {seconds:.1f} s (cpu: {cpu})")
        return 0
    compiled = compiled_not_loaded()
    if compiled:
        print(
            f"physlite: kernels compiled instead of loaded from numba's cache (cpu: {cpu}, uid {os.getuid()}):",
            *compiled,
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    print(
        f"physlite: {ready} kernels loaded from numba's cache, none compiled, in {seconds:.1f} s (cpu: {cpu})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
