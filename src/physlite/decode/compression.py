"""Decompression of ROOT basket payloads inside compiled kernels, without the GIL.

ROOT compresses a basket as a sequence of blocks, each with a 9-byte header: a two-letter algorithm tag
(``ZL`` zlib, ``ZS`` ZSTD, ``L4`` LZ4, ``XZ`` LZMA), a method byte, then the compressed and uncompressed block
sizes as 3-byte little-endian integers. The kernels call the system's libz, libzstd, liblz4 and liblzma directly
(bound by symbol name, so numba can cache the compiled kernels on disk), decompressing straight into a buffer
that is reused for every basket.
"""

from __future__ import annotations

import ctypes.util

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types

_LIBRARIES = {"z": "zlib", "zstd": "ZSTD", "lz4": "LZ4", "lzma": "LZMA"}


def _load_libraries() -> None:
    # Symbols must be resolvable before a cached kernel is linked; loading is idempotent.
    for name, label in _LIBRARIES.items():
        path = ctypes.util.find_library(name)
        if path is None:
            raise ImportError(
                f"physlite needs the system library {label} (lib{name}.so) to decompress ROOT data"
            )
        llvm.load_library_permanently(path)


_load_libraries()

# Pointers are passed as integers (uintp): the x86-64 and aarch64 ABIs pass both in the same registers.
_ptr = types.uintp
_zlib_uncompress = types.ExternalFunction("uncompress", types.intc(_ptr, _ptr, _ptr, types.uint64))
_zstd_decompress = types.ExternalFunction(
    "ZSTD_decompress", types.uintp(_ptr, types.uintp, _ptr, types.uintp)
)
_zstd_decompress_dctx = types.ExternalFunction(
    "ZSTD_decompressDCtx", types.uintp(types.uintp, _ptr, types.uintp, _ptr, types.uintp)
)
_zstd_is_error = types.ExternalFunction("ZSTD_isError", types.uintc(types.uintp))
_lz4_decompress = types.ExternalFunction(
    "LZ4_decompress_safe", types.intc(_ptr, _ptr, types.intc, types.intc)
)
_lzma_decode = types.ExternalFunction(
    "lzma_stream_buffer_decode",
    types.intc(_ptr, types.uint32, _ptr, _ptr, _ptr, types.uintp, _ptr, _ptr, types.uintp),
)

BLOCK_HEADER = 9
SCRATCH_SIZE = 4
ZSTD_CONTEXT = 3  # where a thread's scratch64 keeps its ZSTD_DCtx pointer (0: none)
LZ4_CHECKSUM = 8

# Status codes returned by decompress_into (0 = success); messages live in MESSAGES.
OK = 0
BAD_HEADER = 1
UNKNOWN_ALGORITHM = 2
FAILED = 3
SIZE_MISMATCH = 4
MESSAGES = {
    BAD_HEADER: "compressed block header is truncated or inconsistent",
    UNKNOWN_ALGORITHM: "unknown compression algorithm (expected ZL, ZS, L4 or XZ)",
    FAILED: "decompression failed (corrupt or truncated data)",
    SIZE_MISMATCH: "decompressed size differs from the basket header",
}


_libzstd = ctypes.CDLL(ctypes.util.find_library("zstd"))
_libzstd.ZSTD_createDCtx.restype = ctypes.c_void_p
_libzstd.ZSTD_freeDCtx.argtypes = [ctypes.c_void_p]


def new_scratch() -> np.ndarray:
    """A thread's scratch array for :func:`decompress_into`, with its own ZSTD decompression context."""
    scratch64 = np.zeros(SCRATCH_SIZE, np.int64)
    scratch64[ZSTD_CONTEXT] = _libzstd.ZSTD_createDCtx() or 0
    return scratch64


@njit(nogil=True, cache=True)
def decompress_into(src, src_start, src_stop, dst, dst_size, scratch64):
    """Decompress ROOT blocks src[src_start:src_stop] into dst[0:dst_size]; return a status code.

    ``scratch64`` (from :func:`new_scratch`) holds the size arguments that the C libraries take by pointer and
    the thread's ZSTD context.
    """
    pos = src_start
    out = 0
    src_base = src.ctypes.data
    dst_base = dst.ctypes.data
    while out < dst_size:
        if pos + BLOCK_HEADER > src_stop:
            return BAD_HEADER
        c_size = np.int64(src[pos + 3]) | (np.int64(src[pos + 4]) << 8) | (np.int64(src[pos + 5]) << 16)
        u_size = np.int64(src[pos + 6]) | (np.int64(src[pos + 7]) << 8) | (np.int64(src[pos + 8]) << 16)
        body = pos + BLOCK_HEADER
        if body + c_size > src_stop or out + u_size > dst_size:
            return BAD_HEADER
        tag0 = src[pos]
        tag1 = src[pos + 1]
        if tag0 == 90 and tag1 == 83:  # "ZS"
            if scratch64[ZSTD_CONTEXT] != 0:  # the thread's reused context: no allocation per basket
                got = _zstd_decompress_dctx(
                    scratch64[ZSTD_CONTEXT], dst_base + out, u_size, src_base + body, c_size
                )
            else:
                got = _zstd_decompress(dst_base + out, u_size, src_base + body, c_size)
            if _zstd_is_error(got) != 0 or got != u_size:
                return FAILED
        elif tag0 == 90 and tag1 == 76:  # "ZL"
            scratch64[0] = u_size
            status = _zlib_uncompress(dst_base + out, scratch64.ctypes.data, src_base + body, c_size)
            if status != 0 or scratch64[0] != u_size:
                return FAILED
        elif tag0 == 76 and tag1 == 52:  # "L4": an xxhash64 checksum precedes the LZ4 block
            got = _lz4_decompress(
                src_base + body + LZ4_CHECKSUM, dst_base + out, c_size - LZ4_CHECKSUM, u_size
            )
            if got != u_size:
                return FAILED
        elif tag0 == 88 and tag1 == 90:  # "XZ"
            scratch64[0] = -1  # memory limit: unlimited (UINT64_MAX)
            scratch64[1] = 0  # input position
            scratch64[2] = 0  # output position
            base64 = scratch64.ctypes.data
            status = _lzma_decode(
                base64, 0, 0, src_base + body, base64 + 8, c_size, dst_base + out, base64 + 16, u_size
            )
            if status != 0 or scratch64[2] != u_size:
                return FAILED
        else:
            return UNKNOWN_ALGORITHM
        pos = body + c_size
        out += u_size
    if out != dst_size:
        return SIZE_MISMATCH
    return OK
