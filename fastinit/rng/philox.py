"""Philox4x32, exactly as Random123 defines it (Salmon et al., "Parallel random numbers: as
easy as 1, 2, 3", SC'11; DEShawResearch/random123, include/Random123/philox.h).

One round maps a counter (c0, c1, c2, c3) and a key (k0, k1) to

    hi0:lo0 = M0 * c0            (32 x 32 -> 64-bit product)
    hi1:lo1 = M1 * c2
    c' = (hi1 ^ c1 ^ k0,  lo1,  hi0 ^ c3 ^ k1,  lo0)

and the key is bumped by the Weyl constants (k0 += W0, k1 += W1) between rounds.
Philox4x32-10 applies 10 rounds. The known-answer vectors of Random123 (tests/data) pin it.

Three implementations live here, the first two on purpose independent of each other:

- ``philox4x32_block`` (compiled, per element): the one every kernel calls. Its words are
  held in uint64 variables that only ever carry 32-bit values. Written this way, LLVM keeps
  every lane in a 64-bit vector element and vectorizes the round with AVX2 ``vpmuludq``
  (measured here: ~2.7 G words/s on 2 cores, against ~1.1 with uint32 variables, where the
  packing and unpacking of 32-bit lanes costs more than the arithmetic). Numba types
  ``uint32 op uint32`` as uint64 and ``uint64 op int-literal`` as float64, so every constant
  below is a typed uint64 and the masks keep values in 32 bits.
- ``philox4x32`` (NumPy, vectorized over arrays): the public reference, used by the tests to
  check the compiled code at random counters.
- ``philox4x32_rounds_u32(mul_hi_lo)`` (the GPU's form): the same rounds on uint32 words,
  with each 32 x 32 -> 64-bit product taken from ``mul_hi_lo`` as (high, low) halves. On the
  GPU that is libdevice's ``umulhi`` and a 32-bit multiply, which ptxas fuses into one
  ``IMAD.WIDE.U32``: 4 SASS instructions per round (two multiplies, two 3-input XORs), where the
  uint64 form above gives 6 (NVVM keeps the products as 64-bit values and ptxas adds a spare
  32-bit add to each). The tests run it on the CPU too, against the reference.
"""

from __future__ import annotations

import numpy as np
from numba import uint32, uint64
from numpy.typing import ArrayLike, NDArray

from .._jit import pure

__all__ = [
    "philox4x32",
    "philox4x32_block",
    "philox4x32_rounds_u32",
    "mul_hi_lo_u64",
    "PHILOX_M0",
    "PHILOX_M1",
    "PHILOX_W0",
    "PHILOX_W1",
]

# Multipliers and Weyl key increments (Random123, philox.h: PHILOX_M4x32_0/1, PHILOX_W32_0/1;
# W0 is the golden ratio and W1 sqrt(3)-1, as 32-bit fractions).
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
ROUNDS = 10

_M0 = uint64(PHILOX_M0)
_M1 = uint64(PHILOX_M1)
_W0 = uint64(PHILOX_W0)
_W1 = uint64(PHILOX_W1)
_LO32 = uint64(0xFFFFFFFF)
_SHIFT32 = uint64(32)


@pure
def philox4x32_block(c0, c1, c2, c3, k0, k1, rounds):
    """Philox4x32-``rounds`` of one counter block; all arguments are uint64 holding 32 bits.

    Returns the four output words as uint64 values below 2**32.
    """
    for _ in range(rounds):
        p0 = _M0 * (c0 & _LO32)
        p1 = _M1 * (c2 & _LO32)
        c0, c1, c2, c3 = (
            (p1 >> _SHIFT32) ^ c1 ^ k0,
            p1 & _LO32,
            (p0 >> _SHIFT32) ^ c3 ^ k1,
            p0 & _LO32,
        )
        k0 = (k0 + _W0) & _LO32
        k1 = (k1 + _W1) & _LO32
    return c0, c1, c2, c3


@pure
def mul_hi_lo_u64(a, b):
    """(high, low) uint32 halves of the product of the uint32 values a and b, through a uint64
    product: the portable ``mul_hi_lo`` for ``philox4x32_rounds_u32`` (CPU, CUDA simulator).

    >>> [hex(h) for h in mul_hi_lo_u64(np.uint32(0xFFFFFFFF), np.uint32(0xD2511F53))]
    ['0xd2511f52', '0x2daee0ad']
    """
    product = uint64(a) * uint64(b)
    return uint32(product >> _SHIFT32), uint32(product & _LO32)


_M0_U32 = uint32(PHILOX_M0)
_M1_U32 = uint32(PHILOX_M1)


def philox4x32_rounds_u32(mul_hi_lo):
    """Philox4x32 of one counter block on uint32 words, products through ``mul_hi_lo(a, b)``
    -> (high, low) uint32 halves: returns the Python function
    ``philox4x32_block_u32(c0, c1, c2, c3, k0, k1, rounds)`` (all uint32) -> four uint32 words,
    for a target to compile (backends/cuda/device_code.py compiles it with libdevice's umulhi).

    The key sums are taken in uint64 and cut to 32 bits, so the same code also runs as Python
    on NumPy scalars (the CUDA simulator), where uint32 arithmetic would warn on wrap-around.

    >>> import numba
    >>> block = numba.njit(philox4x32_rounds_u32(mul_hi_lo_u64))
    >>> zero = np.uint32(0)
    >>> [hex(w) for w in block(zero, zero, zero, zero, zero, zero, 10)]  # Random123 vector
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    if not callable(mul_hi_lo):
        raise TypeError(f"mul_hi_lo must be a function (a, b) -> (high, low), got {type(mul_hi_lo).__name__}")

    def philox4x32_block_u32(c0, c1, c2, c3, k0, k1, rounds):
        for _ in range(rounds):
            hi0, lo0 = mul_hi_lo(c0, _M0_U32)
            hi1, lo1 = mul_hi_lo(c2, _M1_U32)
            c0, c1, c2, c3 = uint32(hi1 ^ c1 ^ k0), lo1, uint32(hi0 ^ c3 ^ k1), lo0
            k0 = uint32((uint64(k0) + _W0) & _LO32)
            k1 = uint32((uint64(k1) + _W1) & _LO32)
        return c0, c1, c2, c3

    return philox4x32_block_u32


def philox4x32(counter: ArrayLike, key: ArrayLike, rounds: int = 10) -> NDArray[np.uint32]:
    """Philox4x32 of NumPy arrays: ``counter`` uint32 ``(..., 4)``, ``key`` uint32 ``(..., 2)``.

    Broadcasts the leading dimensions and returns uint32 ``(..., 4)``. This is the reference
    implementation (pure NumPy); the compiled kernels are tested against it.

    >>> out = philox4x32(np.zeros(4, np.uint32), np.zeros(2, np.uint32))
    >>> [hex(w) for w in out]  # Random123 known-answer vector, 10 rounds
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    counter = np.asarray(counter)
    key = np.asarray(key)
    if not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool) or rounds < 0:
        raise ValueError(f"rounds={rounds!r} must be a non-negative int")
    for argname, arr, width in (("counter", counter, 4), ("key", key, 2)):
        if arr.dtype != np.uint32:
            raise TypeError(f"{argname} must be a uint32 array, got dtype {arr.dtype}")
        if arr.ndim == 0 or arr.shape[-1] != width:
            raise ValueError(f"{argname} must have shape (..., {width}), got {arr.shape}")
    batch = np.broadcast_shapes(counter.shape[:-1], key.shape[:-1])
    c = [np.broadcast_to(counter[..., i], batch).astype(np.uint64) for i in range(4)]
    k = [np.broadcast_to(key[..., i], batch).astype(np.uint64) for i in range(2)]
    mask = np.uint64(0xFFFFFFFF)
    for _ in range(rounds):
        p0 = np.uint64(PHILOX_M0) * c[0]
        p1 = np.uint64(PHILOX_M1) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k[0], p1 & mask, (p0 >> np.uint64(32)) ^ c[3] ^ k[1], p0 & mask]
        k = [(k[0] + np.uint64(PHILOX_W0)) & mask, (k[1] + np.uint64(PHILOX_W1)) & mask]
    return np.stack(c, axis=-1).astype(np.uint32)
