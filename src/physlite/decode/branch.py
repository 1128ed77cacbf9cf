"""Run one branch's kernel over its baskets and wrap the flat buffers into an awkward layout.

Scratch buffers (decompressed payload, entry offsets) belong to the calling thread and are reused for every basket
and every branch it decodes; outputs are allocated once per branch at an upper bound of their size (pages that are
never written cost nothing) and trimmed by view.
"""

from __future__ import annotations

import threading

import awkward as ak
import numpy as np

from physlite.decode import kernels
from physlite.decode.baskets import NEVBUF, OBJLEN, STATUS_MESSAGES
from physlite.decode.compression import MESSAGES, new_scratch
from physlite.decode.layouts import Kind, Layout

_local = threading.local()


class DecodeFailure(Exception):
    """A kernel reported a bad basket; the caller turns it into a CorruptDataError naming file and branch."""

    def __init__(self, status: int, basket: int):
        super().__init__(status, basket)
        self.status = status
        self.basket = basket

    def describe(self) -> str:
        reason = STATUS_MESSAGES.get(self.status) or MESSAGES.get(self.status) or f"status {self.status}"
        return f"basket {self.basket}: {reason}"


def _scratch(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    need_payload = int(table[:, OBJLEN].max(initial=0))
    need_offsets = int(table[:, NEVBUF].max(initial=0)) + 1
    payload = getattr(_local, "payload", None)
    if payload is None or payload.shape[0] < need_payload:
        payload = _local.payload = np.empty(max(need_payload, 1 << 20), np.uint8)
    offsets = getattr(_local, "offsets", None)
    if offsets is None or offsets.shape[0] < need_offsets:
        offsets = _local.offsets = np.empty(max(need_offsets, 4096), np.int64)
    scratch64 = getattr(_local, "scratch64", None)
    if scratch64 is None:
        scratch64 = _local.scratch64 = new_scratch()  # one per thread, for the thread's life
    return payload, offsets, scratch64


def _offsets(counts: np.ndarray) -> ak.index.Index64:
    offsets = np.empty(counts.shape[0] + 1, np.int64)
    offsets[0] = 0
    np.cumsum(counts, out=offsets[1:])
    return ak.index.Index64(offsets)


def _numbers(
    raw_bytes: np.ndarray, dtype: np.dtype, parameters: dict | None = None
) -> ak.contents.NumpyArray:
    kernels.swap_bytes(raw_bytes, dtype.itemsize)
    return ak.contents.NumpyArray(raw_bytes.view(dtype), parameters=parameters)


def _links(keys: np.ndarray, indices: np.ndarray) -> ak.contents.RecordArray:
    return ak.contents.RecordArray(
        [ak.contents.NumpyArray(keys), ak.contents.NumpyArray(indices)], ["m_persKey", "m_persIndex"]
    )


def _check(state: np.ndarray, entries: int) -> None:
    if state[kernels.STATUS] != 0:
        raise DecodeFailure(int(state[kernels.STATUS]), int(state[kernels.FAILED_BASKET]))
    if state[kernels.ENTRIES] != entries:
        raise DecodeFailure(13, -1)


def decode(raw: np.ndarray, table: np.ndarray, layout: Layout) -> ak.contents.Content:
    """Decode every basket listed in ``table`` (see :mod:`physlite.decode.baskets`) as ``layout``.

    Example (from :class:`physlite.reader.file.PhysliteFile`, which builds ``raw`` and ``table``):
        >>> content = decode(raw, table, Layout(Kind.VECTOR, np.dtype("f4"), header=10))  # doctest: +SKIP
    """
    entries = int(table[:, NEVBUF].sum())
    total = int(table[:, OBJLEN].sum())
    payload, offsets, scratch64 = _scratch(table)
    state = np.zeros(kernels.STATE_SIZE, np.int64)
    common = (raw, table, payload, offsets, scratch64)
    kind = layout.kind

    if kind is Kind.FIXED:
        size = layout.dtype.itemsize
        out = np.empty(entries * size, np.uint8)
        kernels.decode_fixed(*common, size, out, state)
        _check(state, entries)
        if layout.dtype.names is None:
            return _numbers(out, layout.dtype)
        big = out.view(_big_endian(layout.dtype))
        fields = [
            ak.contents.NumpyArray(np.ascontiguousarray(big[name]).astype(layout.dtype[name]))
            for name in big.dtype.names
        ]
        return ak.contents.RecordArray(fields, list(big.dtype.names), length=entries)

    if kind is Kind.VECTOR:
        counts = np.empty(entries, np.int64)
        content = np.empty(total, np.uint8)
        kernels.decode_vector(*common, layout.header, layout.dtype.itemsize, counts, content, state)
        _check(state, entries)
        values = _numbers(content[: state[kernels.CONTENT]], layout.dtype)
        return ak.contents.ListOffsetArray(_offsets(counts), values)

    if kind is Kind.NESTED:
        counts0 = np.empty(entries, np.int64)
        counts1 = np.empty(total // 4 + 1, np.int64)
        counts2 = np.empty(total // 4 + 1 if layout.depth == 3 else 1, np.int64)
        content = np.empty(total, np.uint8)
        kernels.decode_nested(
            *common, layout.depth, layout.dtype.itemsize, counts0, counts1, counts2, content, state
        )
        _check(state, entries)
        inner_parameters = dict(layout.inner_parameters) or None
        node: ak.contents.Content = _numbers(content[: state[kernels.CONTENT]], layout.dtype)
        if layout.depth == 3:
            node = ak.contents.ListOffsetArray(_offsets(counts2[: state[kernels.LEVEL2]]), node)
        node = ak.contents.ListOffsetArray(
            _offsets(counts1[: state[kernels.LEVEL1]]), node, parameters=inner_parameters
        )
        return ak.contents.ListOffsetArray(_offsets(counts0), node)

    if kind is Kind.STRINGS:
        counts = np.empty(entries, np.int64)
        lengths = np.empty(total + 1, np.int64)
        chars = np.empty(total, np.uint8)
        kernels.decode_strings(*common, layout.counted, counts, lengths, chars, state)
        _check(state, entries)
        char_node = ak.contents.NumpyArray(chars[: state[kernels.CONTENT]], parameters={"__array__": "char"})
        strings = ak.contents.ListOffsetArray(
            _offsets(lengths[: state[kernels.LEVEL1]]), char_node, parameters={"__array__": "string"}
        )
        return ak.contents.ListOffsetArray(_offsets(counts), strings)

    if kind is Kind.LINK_NESTED:
        counts0 = np.empty(entries, np.int64)
        counts1 = np.empty(total // 4 + 1, np.int64)
        keys = np.empty(total // 12 + 1, np.uint32)
        indices = np.empty(total // 12 + 1, np.uint32)
        kernels.decode_link_nested(*common, counts0, counts1, keys, indices, state)
        _check(state, entries)
        n = state[kernels.CONTENT]
        inner = ak.contents.ListOffsetArray(
            _offsets(counts1[: state[kernels.LEVEL1]]), _links(keys[:n], indices[:n])
        )
        return ak.contents.ListOffsetArray(_offsets(counts0), inner)

    if kind is Kind.LINK_VECTOR:
        counts = np.empty(entries, np.int64)
        keys = np.empty(total // 8 + 1, np.uint32)
        indices = np.empty(total // 8 + 1, np.uint32)
        kernels.decode_link_vector(*common, counts, keys, indices, state)
        _check(state, entries)
        n = state[kernels.CONTENT]
        return ak.contents.ListOffsetArray(_offsets(counts), _links(keys[:n], indices[:n]))

    if kind is Kind.LINK_SCALAR:
        keys = np.empty(entries, np.uint32)
        indices = np.empty(entries, np.uint32)
        kernels.decode_link_scalar(*common, keys, indices, state)
        _check(state, entries)
        return _links(keys, indices)

    raise ValueError(f"layout {kind} is decoded from its member branches")


def _big_endian(dtype: np.dtype) -> np.dtype:
    return np.dtype([(name, dtype[name].newbyteorder(">")) for name in dtype.names])


def join_split_links(keys: ak.contents.Content, indices: ak.contents.Content) -> ak.contents.Content:
    """Join the decoded ``.m_persKey`` and ``.m_persIndex`` branches of a split ``vector<ElementLink<T>>``."""
    if not np.array_equal(np.asarray(keys.offsets), np.asarray(indices.offsets)):
        raise DecodeFailure(13, -1)
    return ak.contents.ListOffsetArray(keys.offsets, _links(keys.content.data, indices.content.data))
