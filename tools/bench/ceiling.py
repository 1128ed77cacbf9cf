"""The practical ceiling of a reader: only decompress the baskets and copy the bytes out, on all threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

import physlite
from physlite.decode.baskets import NEVBUF, OBJLEN, TABLE_COLUMNS, load_basket, read_basket_table


@njit(nogil=True)
def _decompress_and_copy(raw, table, payload, offsets, scratch64, out):
    written = 0
    for b in range(table.shape[0]):
        status = load_basket(raw, table, b, payload, offsets, scratch64)
        if status != 0:
            return -1
        size = table[b, OBJLEN]
        out[written : written + size] = payload[:size]
        written += size
    return written


def _one_branch(f: physlite.PhysliteFile, name: str) -> int:
    total = 0
    info = f.info(name)
    for member in info.members or (info,):
        buffer, positions = f._source.fetch(member.seeks, member.seeks + member.nbytes)
        table = np.empty((member.seeks.size, TABLE_COLUMNS), np.int64)
        read_basket_table(buffer, positions, member.nbytes, member.first_entries[:-1], f._source.size, table)
        payload = np.empty(int(table[:, OBJLEN].max(initial=1)), np.uint8)
        offsets = np.empty(int(table[:, NEVBUF].max(initial=1)) + 1, np.int64)
        out = np.empty(int(table[:, OBJLEN].sum()), np.uint8)
        total += _decompress_and_copy(buffer, table, payload, offsets, np.zeros(4, np.int64), out)
    return total


def decompress_and_copy(f: physlite.PhysliteFile, names: list[str], threads: int) -> int:
    """Decompress every basket of ``names`` and copy it out, branch by branch on ``threads`` threads."""
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(lambda name: _one_branch(f, name), names))
