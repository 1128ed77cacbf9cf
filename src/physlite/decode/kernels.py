"""Compiled kernels, one per on-disk layout: they stream a branch's baskets through reused buffers.

Every kernel takes the raw file bytes (``raw``), the basket table (see :mod:`physlite.decode.baskets`), two reused
scratch buffers (``payload`` for the decompressed basket, ``offsets`` for its entry boundaries), the output arrays
(sized by the caller to upper bounds) and ``state``, an int64 array where it reports
``[status, entries, level-1 items, level-2 items, content bytes or items, failing basket]``.
Contents are copied as raw big-endian bytes; :func:`swap_bytes` turns them native afterwards.
ROOT object headers are ``[bytecount | 0x40000000 : 4][version : 2]``; the 0x4000 bit of the version marks
member-wise streaming.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from physlite.decode.baskets import BAD_ENTRY, be_u16, be_u32, load_basket

STATUS, ENTRIES, LEVEL1, LEVEL2, CONTENT, FAILED_BASKET = range(6)
STATE_SIZE = 6
_BYTECOUNT_FLAG = 0x40000000
_MEMBERWISE = 0x4000
_U64_32 = np.uint64(32)
_U64_16 = np.uint64(16)
_U64_8 = np.uint64(8)
_U64_LOW32 = np.uint64(0xFFFFFFFF)
_U64_M16 = np.uint64(0x0000FFFF0000FFFF)
_U64_M8 = np.uint64(0x00FF00FF00FF00FF)


@njit(nogil=True, cache=True, inline="always")
def _copy(source, start, target, at, size):
    """Copy bytes; a plain loop beats a memmove call for the few bytes of a typical entry."""
    for k in range(size):
        target[at + k] = source[start + k]


@njit(nogil=True, cache=True)
def _fail(state, status, basket):
    state[STATUS] = status
    state[FAILED_BASKET] = basket


@njit(nogil=True, cache=True)
def decode_fixed(raw, table, payload, offsets, scratch64, entry_size, out, state):
    """Fixed-size entries (numbers, fixed structs): copy ``entry_size`` bytes per entry into ``out``."""
    e = state[ENTRIES]
    for b in range(table.shape[0]):
        status = load_basket(raw, table, b, payload, offsets, scratch64)
        if status != 0:
            _fail(state, status, b)
            return
        for i in range(table[b, 5]):
            start = offsets[i]
            if offsets[i + 1] - start != entry_size:
                _fail(state, BAD_ENTRY, b)
                return
            out[e * entry_size : (e + 1) * entry_size] = payload[start : start + entry_size]
            e += 1
    state[ENTRIES] = e


@njit(nogil=True, cache=True)
def decode_vector(raw, table, payload, offsets, scratch64, header, itemsize, counts, content, state):
    """``vector<T>`` (``header`` = 10 bytes) or a split member array ``T[]`` (``header`` = 0)."""
    e = state[ENTRIES]
    c = state[CONTENT]
    for b in range(table.shape[0]):
        status = load_basket(raw, table, b, payload, offsets, scratch64)
        if status != 0:
            _fail(state, status, b)
            return
        for i in range(table[b, 5]):
            start = offsets[i] + header
            size = offsets[i + 1] - start
            if size < 0 or size % itemsize != 0:
                _fail(state, BAD_ENTRY, b)
                return
            counts[e] = size // itemsize
            _copy(payload, start, content, c, size)
            c += size
            e += 1
    state[ENTRIES] = e
    state[CONTENT] = c


@njit(nogil=True, cache=True)
def decode_nested(
    raw, table, payload, offsets, scratch64, depth, itemsize, counts0, counts1, counts2, content, state
):
    """``vector<vector<T>>`` (depth 2; also ``vector<set<T>>``) and ``vector<vector<vector<T>>>`` (depth 3)."""
    e = state[ENTRIES]
    n1 = state[LEVEL1]
    n2 = state[LEVEL2]
    c = state[CONTENT]
    for b in range(table.shape[0]):
        status = load_basket(raw, table, b, payload, offsets, scratch64)
        if status != 0:
            _fail(state, status, b)
            return
        for i in range(table[b, 5]):
            pos = offsets[i] + 6
            stop = offsets[i + 1]
            if pos + 4 > stop:
                _fail(state, BAD_ENTRY, b)
                return
            outer = be_u32(payload, pos)
            pos += 4
            counts0[e] = outer
            for _ in range(outer):
                if pos + 4 > stop:
                    _fail(state, BAD_ENTRY, b)
                    return
                middle = be_u32(payload, pos)
                pos += 4
                counts1[n1] = middle
                n1 += 1
                if depth == 2:
                    size = middle * itemsize
                    if pos + size > stop:
                        _fail(state, BAD_ENTRY, b)
                        return
                    content[c : c + size] = payload[pos : pos + size]
                    c += size
                    pos += size
                else:
                    for _ in range(middle):
                        if pos + 4 > stop:
                            _fail(state, BAD_ENTRY, b)
                            return
                        inner = be_u32(payload, pos)
                        pos += 4
                        counts2[n2] = inner
                        n2 += 1
                        size = inner * itemsize
                        if pos + size > stop:
                            _fail(state, BAD_ENTRY, b)
                            return
                        content[c : c + size] = payload[pos : pos + size]
                        c += size
                        pos += size
            if pos != stop:
                _fail(state, BAD_ENTRY, b)
                return
            e += 1
    state[ENTRIES] = e
    state[LEVEL1] = n1
    state[LEVEL2] = n2
    state[CONTENT] = c


@njit(nogil=True, cache=True)
def decode_strings(raw, table, payload, offsets, scratch64, counted, counts, lengths, chars, state):
    """``vector<string>`` (``counted``: a count follows the 6-byte header) or a split ``string[]`` (until entry end)."""
    e = state[ENTRIES]
    n1 = state[LEVEL1]
    c = state[CONTENT]
    for b in range(table.shape[0]):
        status = load_basket(raw, table, b, payload, offsets, scratch64)
        if status != 0:
            _fail(state, status, b)
            return
        for i in range(table[b, 5]):
            pos = offsets[i] + 6
            stop = offsets[i + 1]
            expected = -1
            if counted:
                if pos + 4 > stop:
                    _fail(state, BAD_ENTRY, b)
                    return
                expected = be_u32(payload, pos)
                pos += 4
            n = 0
            while pos < stop and n != expected:
                size = np.int64(payload[pos])
                pos += 1
                if size == 255:
                    size = be_u32(payload, pos)
                    pos += 4
                if pos + size > stop:
                    _fail(state, BAD_ENTRY, b)
                    return
                chars[c : c + size] = payload[pos : pos + size]
                c += size
                pos += size
                lengths[n1] = size
                n1 += 1
                n += 1
            if pos != stop or (counted and n != expected):
                _fail(state, BAD_ENTRY, b)
                return
            counts[e] = n
            e += 1
    state[ENTRIES] = e
    state[LEVEL1] = n1
    state[CONTENT] = c


@njit(nogil=True, cache=True, inline="always")
def _link_at(payload, pos, stop):
    """End of the ElementLink object starting at ``pos`` (key and index are its last 8 bytes); -1 if malformed."""
    if pos + 4 > stop:
        return -1
    bytecount = be_u32(payload, pos)
    if bytecount & _BYTECOUNT_FLAG == 0:
        return -1
    end = pos + 4 + (bytecount & ~_BYTECOUNT_FLAG)
    if end > stop or end - pos < 12:
        return -1
    return end


@njit(nogil=True, cache=True)
def decode_link_nested(raw, table, payload, offsets, scratch64, counts0, counts1, keys, indices, state):
    """``vector<vector<ElementLink<T>>>``: per entry, per outer element, a vector of 18- or 28-byte links."""
    e = state[ENTRIES]
    n1 = state[LEVEL1]
    c = state[CONTENT]
    for b in range(table.shape[0]):
        status = load_basket(raw, table, b, payload, offsets, scratch64)
        if status != 0:
            _fail(state, status, b)
            return
        for i in range(table[b, 5]):
            pos = offsets[i] + 6
            stop = offsets[i + 1]
            if pos + 4 > stop:
                _fail(state, BAD_ENTRY, b)
                return
            outer = be_u32(payload, pos)
            pos += 4
            counts0[e] = outer
            for _ in range(outer):
                if pos + 4 > stop:
                    _fail(state, BAD_ENTRY, b)
                    return
                inner = be_u32(payload, pos)
                pos += 4
                counts1[n1] = inner
                n1 += 1
                for _ in range(inner):
                    end = _link_at(payload, pos, stop)
                    if end < 0:
                        _fail(state, BAD_ENTRY, b)
                        return
                    keys[c] = be_u32(payload, end - 8)
                    indices[c] = be_u32(payload, end - 4)
                    c += 1
                    pos = end
            if pos != stop:
                _fail(state, BAD_ENTRY, b)
                return
            e += 1
    state[ENTRIES] = e
    state[LEVEL1] = n1
    state[CONTENT] = c


@njit(nogil=True, cache=True)
def decode_link_vector(raw, table, payload, offsets, scratch64, counts, keys, indices, state):
    """``vector<ElementLink<T>>`` streamed whole: object-wise (links one after the other) or member-wise
    (version with the 0x4000 bit, then the element class version and checksum, the count, all keys, all indices).
    """
    e = state[ENTRIES]
    c = state[CONTENT]
    for b in range(table.shape[0]):
        status = load_basket(raw, table, b, payload, offsets, scratch64)
        if status != 0:
            _fail(state, status, b)
            return
        for i in range(table[b, 5]):
            pos = offsets[i]
            stop = offsets[i + 1]
            if pos + 10 > stop:
                _fail(state, BAD_ENTRY, b)
                return
            version = be_u16(payload, pos + 4)
            pos += 6
            if version & _MEMBERWISE:
                element_version = be_u16(payload, pos)
                pos += 2
                if element_version <= 1:
                    pos += 4  # checksum of the element class
                if pos + 4 > stop:
                    _fail(state, BAD_ENTRY, b)
                    return
                n = be_u32(payload, pos)
                pos += 4
                if pos + 8 * n != stop:
                    _fail(state, BAD_ENTRY, b)
                    return
                for k in range(n):
                    keys[c + k] = be_u32(payload, pos + 4 * k)
                    indices[c + k] = be_u32(payload, pos + 4 * (n + k))
                c += n
                pos = stop
            else:
                n = be_u32(payload, pos)
                pos += 4
                for _ in range(n):
                    end = _link_at(payload, pos, stop)
                    if end < 0:
                        _fail(state, BAD_ENTRY, b)
                        return
                    keys[c] = be_u32(payload, end - 8)
                    indices[c] = be_u32(payload, end - 4)
                    c += 1
                    pos = end
            if pos != stop:
                _fail(state, BAD_ENTRY, b)
                return
            counts[e] = n
            e += 1
    state[ENTRIES] = e
    state[CONTENT] = c


@njit(nogil=True, cache=True)
def decode_link_scalar(raw, table, payload, offsets, scratch64, keys, indices, state):
    """A single ``ElementLink<T>`` per entry (e.g. ``EventInfoAuxDyn.hardScatterVertexLink``)."""
    e = state[ENTRIES]
    for b in range(table.shape[0]):
        status = load_basket(raw, table, b, payload, offsets, scratch64)
        if status != 0:
            _fail(state, status, b)
            return
        for i in range(table[b, 5]):
            end = _link_at(payload, offsets[i], offsets[i + 1])
            if end != offsets[i + 1]:
                _fail(state, BAD_ENTRY, b)
                return
            keys[e] = be_u32(payload, end - 8)
            indices[e] = be_u32(payload, end - 4)
            e += 1
    state[ENTRIES] = e


@njit(nogil=True, cache=True)
def swap_bytes(content, itemsize):
    """Turn big-endian items of ``itemsize`` bytes into native (little-endian) order, in place."""
    if itemsize == 2:
        v2 = content.view(np.uint16)
        for i in range(v2.shape[0]):
            x = v2[i]
            v2[i] = (x >> 8) | (x << 8)
    elif itemsize == 4:
        v4 = content.view(np.uint32)
        for i in range(v4.shape[0]):
            x = v4[i]
            v4[i] = ((x >> 24) & 0xFF) | ((x >> 8) & 0xFF00) | ((x << 8) & 0xFF0000) | (x << 24)
    elif itemsize == 8:
        v8 = content.view(np.uint64)
        for i in range(v8.shape[0]):
            x = v8[i]
            # uint64 constants keep numba from promoting to float64
            x = ((x >> _U64_32) & _U64_LOW32) | (x << _U64_32)
            x = ((x >> _U64_16) & _U64_M16) | ((x & _U64_M16) << _U64_16)
            v8[i] = ((x >> _U64_8) & _U64_M8) | ((x & _U64_M8) << _U64_8)
