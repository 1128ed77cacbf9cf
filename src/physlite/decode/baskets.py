"""Basket framing: where a basket's key header, payload, entries and entry offsets are.

A basket on disk is a TKey header (``keylen`` bytes, uncompressed, ending with the TBasket fields) followed by the
payload, compressed or not. Uncompressed, the payload holds the entries' bytes up to ``border``, then (for branches
with variable-size entries) the entry offsets: an int32 count and one big-endian int32 per entry, counted from the
start of the key.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from physlite.decode.compression import OK, decompress_into

# Columns of the per-basket table built by read_basket_table.
POS, NBYTES, KEYLEN, OBJLEN, BORDER, NEVBUF, NEVBUFSIZE, FIRST_ENTRY = range(8)
TABLE_COLUMNS = 8

# Status codes of the kernels (0 = success), after those of decompression (1-4).
TRUNCATED = 10
BAD_KEY = 11
BAD_OFFSETS = 12
BAD_ENTRY = 13
STATUS_MESSAGES = {
    TRUNCATED: "basket lies beyond the end of the file (truncated file?)",
    BAD_KEY: "basket key header is inconsistent",
    BAD_OFFSETS: "entry offsets of the basket are inconsistent",
    BAD_ENTRY: "an entry does not match the layout of the branch type",
}

_TBASKET_FIELDS = 19  # version(2) bufsize(4) nevbufsize(4) nevbuf(4) last(4) flag(1), at the end of the key


@njit(nogil=True, cache=True, inline="always")
def be_u32(buf, pos):
    """Big-endian uint32 at buf[pos] as int64."""
    return (
        (np.int64(buf[pos]) << 24)
        | (np.int64(buf[pos + 1]) << 16)
        | (np.int64(buf[pos + 2]) << 8)
        | np.int64(buf[pos + 3])
    )


@njit(nogil=True, cache=True, inline="always")
def be_u16(buf, pos):
    """Big-endian uint16 at buf[pos] as int64."""
    return (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])


@njit(nogil=True, cache=True)
def read_basket_table(raw, raw_pos, nbytes, first_entry, file_size, table):
    """Fill ``table`` (one row per basket, columns POS..FIRST_ENTRY) from the key headers; return a status.

    ``raw_pos[i]`` is where basket i starts inside ``raw``; ``nbytes`` its size on disk (fBasketBytes).
    """
    for i in range(raw_pos.shape[0]):
        pos = raw_pos[i]
        if pos < 0 or pos + nbytes[i] > raw.shape[0] or nbytes[i] < 18:
            return TRUNCATED
        key_nbytes = be_u32(raw, pos)
        objlen = be_u32(raw, pos + 6)
        keylen = be_u16(raw, pos + 14)
        if key_nbytes != nbytes[i] or keylen < _TBASKET_FIELDS or keylen > key_nbytes:
            return BAD_KEY
        fields = pos + keylen - _TBASKET_FIELDS
        table[i, POS] = pos
        table[i, NBYTES] = key_nbytes
        table[i, KEYLEN] = keylen
        table[i, OBJLEN] = objlen
        table[i, NEVBUFSIZE] = be_u32(raw, fields + 6)
        table[i, NEVBUF] = be_u32(raw, fields + 10)
        table[i, BORDER] = be_u32(raw, fields + 14) - keylen
        table[i, FIRST_ENTRY] = first_entry[i]
        if table[i, BORDER] < 0 or table[i, BORDER] > objlen:
            return BAD_KEY
    return OK


@njit(nogil=True, cache=True)
def load_basket(raw, table, b, payload, offsets, scratch64):
    """Decompress basket ``b`` into ``payload`` and its entry boundaries into ``offsets[0 : nevbuf + 1]``.

    Entry i occupies payload[offsets[i] : offsets[i + 1]]. Branches with fixed-size entries have no stored offsets;
    their boundaries are computed from the entry size. Returns a status code.
    """
    pos = table[b, POS]
    keylen = table[b, KEYLEN]
    objlen = table[b, OBJLEN]
    stored = table[b, NBYTES] - keylen
    if stored == objlen:
        payload[:objlen] = raw[pos + keylen : pos + keylen + objlen]
    else:
        status = decompress_into(raw, pos + keylen, pos + keylen + stored, payload, objlen, scratch64)
        if status != OK:
            return status
    nevbuf = table[b, NEVBUF]
    border = table[b, BORDER]
    if border == objlen:
        # fixed-size entries: no offset array follows the data
        size = table[b, NEVBUFSIZE]
        if size * nevbuf != border:
            return BAD_OFFSETS
        for i in range(nevbuf + 1):
            offsets[i] = i * size
        return OK
    if border + 4 + 4 * nevbuf > objlen:
        return BAD_OFFSETS
    for i in range(nevbuf):
        offsets[i] = be_u32(payload, border + 4 + 4 * i) - keylen
    offsets[nevbuf] = border
    for i in range(nevbuf):
        if offsets[i] < 0 or offsets[i] > offsets[i + 1]:
            return BAD_OFFSETS
    return OK
