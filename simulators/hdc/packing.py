"""Binary hypervectors packed into 64-bit words; Hamming distance by XOR and popcount.

A binary (BSC) hypervector of ``D`` bits is stored as ``ceil(D / 64)`` unsigned 64-bit
words, bit ``i`` of the vector in bit ``i % 64`` of word ``i // 64`` (little-endian
within a word). When ``D`` is not a multiple of 64 the last word is padded with zero
bits, *only* when the caller asks for it (``pad=True``): a padded bit is 0 in every
vector, so it XORs to 0 and adds nothing to any distance, and the distances are exact.

The Hamming distance between a query and every class vector is
``popcount(q XOR c)`` summed over the words. On the CPU the popcount is NumPy's
``bitwise_count`` ufunc; :func:`popcount64` is the same count written with plain
integer tensor ops (the SWAR reduction of Warren, *Hacker's Delight*, 2nd ed.,
section 5-1), so the identical path runs on a GPU with nothing but PyTorch.

Memory: one class vector takes ``8 * ceil(D / 64)`` bytes packed against ``D`` bytes
as a ``bool`` / ``uint8`` tensor (torchhd's BSC storage) or ``4 D`` bytes as float32:
a reduction of ``D / (8 ceil(D / 64))`` (8x for bool at a multiple of 64) and
``4 D / (8 ceil(D / 64))`` (32x for float32), see :func:`memory_bytes`.
"""

from __future__ import annotations

import numpy as np
import torch

from nonvon.errors import ConfigError

__all__ = [
    "WORD_BITS",
    "MAX_DIMENSIONS",
    "n_words",
    "check_packable",
    "pack_bits",
    "unpack_bits",
    "popcount64",
    "hamming_packed",
    "nearest_packed",
    "memory_bytes",
]

WORD_BITS = 64
# The packing limit: a Hamming distance reaches D and the arg-min over classes is counted as
# int32 compares (cmp_int32), so D must fit an int32.
MAX_DIMENSIONS = 2 ** 31 - 1

_M1 = 0x5555555555555555
_M2 = 0x3333333333333333
_M4 = 0x0F0F0F0F0F0F0F0F
_H01 = 0x0101010101010101


def n_words(dimensions: int) -> int:
    """Number of 64-bit words that hold ``dimensions`` bits (the last one padded)."""
    return -(-dimensions // WORD_BITS)


def check_packable(dimensions: int, pad: bool) -> None:
    """Raise :class:`ConfigError` unless ``dimensions`` bits can be packed.

    Args:
        dimensions: hypervector length ``D``.
        pad: whether zero-padding the last word is allowed.
    """
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
        raise ConfigError(f"dimensions={dimensions!r} must be a positive integer",
                          "e.g. dimensions=10_000")
    if dimensions > MAX_DIMENSIONS:
        raise ConfigError(
            f"dimensions={dimensions:,} exceeds the packing limit of {MAX_DIMENSIONS:,} bits (the "
            "Hamming distances are compared as 32-bit integers)",
            f"use dimensions <= {MAX_DIMENSIONS:,}; low-dimensional HDC needs tens to thousands")
    if dimensions % WORD_BITS and not pad:
        lo = max(WORD_BITS, dimensions - dimensions % WORD_BITS)
        raise ConfigError(
            f"dimensions={dimensions} is not a multiple of the {WORD_BITS}-bit packing word",
            f"use a multiple of {WORD_BITS} (e.g. {lo} or {lo + WORD_BITS}), or pad=True to "
            f"zero-pad the last word (exact: padded bits XOR to 0)")


def pack_bits(bits: torch.Tensor | np.ndarray, *, pad: bool = False) -> np.ndarray:
    """Pack binary hypervectors into uint64 words.

    Args:
        bits: ``(..., D)`` array of 0/1 (bool or integer).
        pad: allow ``D`` that is not a multiple of 64 (the last word is zero-padded).

    Returns:
        ``(..., ceil(D / 64))`` uint64 array.

    Raises:
        ConfigError: if ``D`` is not a multiple of 64 and ``pad`` is false, or the
            values are not all 0 or 1.

    Example:
        >>> pack_bits(np.array([[1, 0, 1] + [0] * 61]))
        array([[5]], dtype=uint64)
    """
    b = bits.detach().cpu().numpy() if isinstance(bits, torch.Tensor) else np.asarray(bits)
    d = b.shape[-1]
    check_packable(d, pad)
    if b.dtype != np.bool_:
        if not np.isin(b, (0, 1)).all():
            raise ConfigError("pack_bits takes 0/1 values only",
                              "threshold the hypervector first (e.g. bits = x > 0)")
        b = b.astype(np.bool_)
    w = n_words(d)
    if w * WORD_BITS != d:
        b = np.concatenate([b, np.zeros(b.shape[:-1] + (w * WORD_BITS - d,), np.bool_)], axis=-1)
    by = np.packbits(b, axis=-1, bitorder="little")  # byte k holds bits 8k..8k+7
    return np.ascontiguousarray(by).view("<u8").reshape(b.shape[:-1] + (w,))


def unpack_bits(words: np.ndarray, dimensions: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``(..., W)`` uint64 -> ``(..., dimensions)`` bool."""
    words = np.ascontiguousarray(words, dtype="<u8")
    by = words.view(np.uint8).reshape(words.shape[:-1] + (words.shape[-1] * 8,))
    return np.unpackbits(by, axis=-1, bitorder="little")[..., :dimensions].astype(np.bool_)


def popcount64(x: torch.Tensor) -> torch.Tensor:
    """Number of set bits in each 64-bit word of an int64 tensor (any device).

    Plain tensor ops only (SWAR: Warren, *Hacker's Delight*, 2nd ed., section 5-1), so it
    runs wherever PyTorch does. int64 shifts are arithmetic, but every shift is followed
    by a mask that clears the copied sign bits, and the final multiply wraps modulo 2**64
    as the algorithm requires.
    """
    if x.dtype != torch.int64:
        raise TypeError(f"popcount64 takes int64 words, got {x.dtype}")
    x = x - ((x >> 1) & _M1)
    x = (x & _M2) + ((x >> 2) & _M2)
    x = (x + (x >> 4)) & _M4
    return (x * _H01) >> 56


def hamming_packed(queries: np.ndarray | torch.Tensor, classes: np.ndarray | torch.Tensor,
                   *, chunk: int = 1024) -> np.ndarray | torch.Tensor:
    """Hamming distance of every packed query to every packed class vector.

    Args:
        queries: ``(N, W)`` packed words (uint64 NumPy array, or int64 tensor on any device).
        classes: ``(C, W)`` packed words, same kind as ``queries``.
        chunk: queries per block (bounds the ``chunk x C x W`` XOR temporary).

    Returns:
        ``(N, C)`` distances: int64 NumPy array, or int64 tensor on the queries' device.
    """
    if queries.shape[-1] != classes.shape[-1]:
        raise ConfigError(f"queries have {queries.shape[-1]} words, class vectors "
                          f"{classes.shape[-1]}", "pack both with the same dimensions")
    n = queries.shape[0]
    if isinstance(queries, torch.Tensor):
        out = torch.empty((n, classes.shape[0]), dtype=torch.int64, device=queries.device)
        for i in range(0, n, chunk):
            x = queries[i:i + chunk, None, :] ^ classes[None, :, :]
            out[i:i + chunk] = popcount64(x).sum(-1)
        return out
    out = np.empty((n, classes.shape[0]), dtype=np.int64)
    for i in range(0, n, chunk):
        x = np.bitwise_xor(queries[i:i + chunk, None, :], classes[None, :, :])
        out[i:i + chunk] = np.bitwise_count(x).sum(-1, dtype=np.int64)
    return out


def nearest_packed(queries, classes, *, chunk: int = 1024):
    """Index of the class vector at the smallest Hamming distance (first on ties)."""
    return hamming_packed(queries, classes, chunk=chunk).argmin(1)


def memory_bytes(dimensions: int) -> dict[str, int]:
    """Bytes to hold one class hypervector in each representation."""
    return {"packed_uint64": 8 * n_words(dimensions), "bool": dimensions,
            "float32": 4 * dimensions}
