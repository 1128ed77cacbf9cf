"""Compile every decode kernel into numba's on-disk cache, at install or image build time.

Run by ``make venv`` and by the image builds (``python -m physlite.decode.warmup``). Each kernel is called once
with empty inputs of the exact types the reader uses, which compiles it and stores the machine code next to the
module (``__pycache__``). Set ``NUMBA_CPU_NAME=generic`` both when warming and when running to get code that any
x86-64 CPU can load (the images do); without it the cache is specific to this machine's CPU.

Example:
    $ NUMBA_CPU_NAME=generic python -m physlite.decode.warmup
    physlite: 9 kernels compiled or loaded in 41.2 s (cpu: generic)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path

import numpy as np

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
    dispatchers = [
        read_basket_table,
        kernels.decode_fixed,
        kernels.decode_vector,
        kernels.decode_nested,
        kernels.decode_strings,
        kernels.decode_link_nested,
        kernels.decode_link_vector,
        kernels.decode_link_scalar,
        kernels.swap_bytes,
    ]
    return sum(1 for d in dispatchers if d.signatures)


def _drop_stale_cache() -> None:
    """numba keys a kernel's cache on its own file only, so a kernel compiled against an older version of a module it
    calls (e.g. compression.py) would be reused. Drop the cache when any source of the package changed."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(package.glob("*.py")))).hexdigest()
    cache = package / "__pycache__"
    stamp = cache / "physlite-kernels.sha256"
    if stamp.is_file() and stamp.read_text() == digest:
        return
    for path in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
        path.unlink()
    cache.mkdir(exist_ok=True)
    stamp.write_text(digest)


def main() -> None:
    """Entry point of ``python -m physlite.decode.warmup``."""
    start = time.perf_counter()
    with contextlib.suppress(OSError):  # a read-only install keeps what it has
        _drop_stale_cache()
    ready = compile_all()
    cpu = os.environ.get("NUMBA_CPU_NAME", "this machine's")
    print(f"physlite: {ready} kernels compiled or loaded in {time.perf_counter() - start:.1f} s (cpu: {cpu})")


if __name__ == "__main__":
    main()
