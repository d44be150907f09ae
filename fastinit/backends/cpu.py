"""CPU fill kernels: ``prange`` over tiles of the element layout (rng/layout.py).

A tile is 16 Philox blocks; the loop over its 16 lanes has no branches, so LLVM vectorizes it
(the uint64 form of rng/philox.py: 4 lanes per AVX2 instruction, 8 per AVX-512 one). The
distribution is chosen once per tile, outside that loop. Full tiles are written straight into
the output by the sampling loop itself, in the output's storage type, picked at compile time
(``_put``): float32, bfloat16 bits in a uint16 array, float16 bits in an int16 array, each
16-bit value rounded once to nearest even inside the loop. Partial tiles (the ends of a run) go
through a 64-value float32 scratch tile and a converting copy.

Two tile loops compute their values with CPU-only formulations that give the same bits as the
shared per-element functions (which the CUDA kernels and the per-element paths here use):
float32 truncated normal (central) by ``truncnorm_central_f32_k``, and float64 truncated normal
by a vectorized pass over the quantile's central fits with the general function redoing the
rare values in its tail region (``_fill_tiles_truncnorm_central_f64``).

Kernels are explicit top-level functions, each cached across processes by Numba (``cache=True``).

Entry point: ``fill(out, plan, dist, params, key)``; ``plan`` (a ``FillPlan``) says which
flat indices of the tensor go to which elements of ``out``.
"""

from __future__ import annotations

import os
import threading

import numba
import numpy as np
from numba import float32, int16, int64, prange, types, uint8, uint64
from numba.core.extending import overload

from .._jit import KERNEL, KERNEL_NOCACHE, USER_FUNCTION, loop, pure
from ..distributions import NORMAL, TRUNCNORM, TRUNCNORM_CENTRAL, TRUNCNORM_TAIL, UNIFORM
from ..distributions.normal import normal_pair_f32, normal_pair_f64
from ..distributions.rounding import bfloat16_bits, float16_bits
from ..distributions.truncnormal import (
    truncnorm_central_f32_k,
    truncnorm_central_f64,
    truncnorm_central_k_left,
)
from ..distributions.uniform import uniform_f32, uniform_f64
from ..rng.layout import TILE_LANES
from ..rng.philox import ROUNDS, philox4x32_block
from .plan import FillPlan
from .values import clamp, f32_params, tail_f32_at, tail_f64_at, truncnorm_f32_at, truncnorm_f64_at

__all__ = ["fill", "round_to_storage", "elementwise_kernel", "launch", "launches_serialized"]

_L = TILE_LANES
_TILE32 = 4 * TILE_LANES  # elements per tile, one word each
_TILE64 = 2 * TILE_LANES  # elements per tile, two words each
_CHUNK_TILES = 128  # tiles per prange iteration: 8,192 float32 values, 32 KiB
_CONVERT_TILES = (
    128  # tiles per conversion pass: fewer calls scale better over threads than a smaller, L1-sized scratch
)
_LO32 = uint64(0xFFFFFFFF)
_U32 = uint64(32)


@pure
def _counter(tile):
    """Counter words (lo, hi) of lane 0 of ``tile``; lanes add 0..15 to lo without carry."""
    base = uint64(tile) * uint64(_L)
    return base & _LO32, base >> _U32


# ---- runs of tiles ----------------------------------------------------------------------------
# ``_fill_tiles_*(dst, t0, ntiles, p, key)`` writes tiles t0 .. t0 + ntiles - 1 into dst, tile
# by tile. One function per distribution, so each lane loop is small and branch-free, and one
# call per run of tiles (not per tile), so the constant set-up before the vectorized loop is paid once. Stores go
# through a per-tile slice: indices from 0 with a known bound, which LLVM turns into vector
# stores (an index of unknown sign would keep Numba's negative-index wraparound in the loop).


def _put(tile, k, x):
    """tile[k] = x (a float32) converted to tile's storage: float32 as is, bfloat16 bits
    (uint16 tile) or float16 bits (int16 tile). Chosen at compile time from tile's type (see
    the overload), so each conversion loop is specialized and branch-free."""
    raise NotImplementedError  # only callable from compiled code


@overload(_put, inline="always")
def _put_overload(tile, k, x):
    if tile.dtype == types.uint16:

        def put_bfloat16(tile, k, x):
            tile[k] = bfloat16_bits(x)

        return put_bfloat16
    if tile.dtype == types.int16:

        def put_float16(tile, k, x):
            tile[k] = int16(float16_bits(x))

        return put_float16

    def put(tile, k, x):
        tile[k] = x

    return put


@loop
def _fill_tiles_uniform_f32(dst, t0, ntiles, p, key):
    k0, k1, c2, c3 = key[0], key[1], key[2], key[3]
    low, scale, lo, hi = float32(p[0]), float32(p[1]), float32(p[2]), float32(p[3])
    for t in range(ntiles):
        c0, c1 = _counter(t0 + t)
        tile = dst[t * _TILE32 : (t + 1) * _TILE32]
        for j in range(_L):
            w0, w1, w2, w3 = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
            _put(tile, j, uniform_f32(w0, low, scale, lo, hi))
            _put(tile, _L + j, uniform_f32(w1, low, scale, lo, hi))
            _put(tile, 2 * _L + j, uniform_f32(w2, low, scale, lo, hi))
            _put(tile, 3 * _L + j, uniform_f32(w3, low, scale, lo, hi))


@loop
def _fill_tiles_normal_f32(dst, t0, ntiles, p, key):
    k0, k1, c2, c3 = key[0], key[1], key[2], key[3]
    mean, std, lo, hi = float32(p[0]), float32(p[1]), float32(p[2]), float32(p[3])
    for t in range(ntiles):
        c0, c1 = _counter(t0 + t)
        tile = dst[t * _TILE32 : (t + 1) * _TILE32]
        for j in range(_L):
            w0, w1, w2, w3 = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
            x0, x1 = normal_pair_f32(w0, w1, mean, std)
            x2, x3 = normal_pair_f32(w2, w3, mean, std)
            _put(tile, j, clamp(x0, lo, hi))
            _put(tile, _L + j, clamp(x1, lo, hi))
            _put(tile, 2 * _L + j, clamp(x2, lo, hi))
            _put(tile, 3 * _L + j, clamp(x3, lo, hi))


@loop
def _fill_tiles_truncnorm_f32(dst, t0, ntiles, p, key):
    k0, k1, c2, c3 = key[0], key[1], key[2], key[3]
    q = f32_params(p)
    for t in range(ntiles):
        c0, c1 = _counter(t0 + t)
        tile = dst[t * _TILE32 : (t + 1) * _TILE32]
        for j in range(_L):
            w0, w1, w2, w3 = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
            _put(tile, j, truncnorm_f32_at(w0, q))
            _put(tile, _L + j, truncnorm_f32_at(w1, q))
            _put(tile, 2 * _L + j, truncnorm_f32_at(w2, q))
            _put(tile, 3 * _L + j, truncnorm_f32_at(w3, q))


@loop
def _fill_tiles_truncnorm_central_f32(dst, t0, ntiles, p, key):
    # the same values as truncnorm_central_f32_at, by truncnorm_central_f32_k
    k0, k1, c2, c3 = key[0], key[1], key[2], key[3]
    mean, std, lo, hi, p_left, q_right, mass_left, total = f32_params(p)
    k_left = truncnorm_central_k_left(mass_left, total)
    for t in range(ntiles):
        c0, c1 = _counter(t0 + t)
        tile = dst[t * _TILE32 : (t + 1) * _TILE32]
        for j in range(_L):
            w0, w1, w2, w3 = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
            x0 = truncnorm_central_f32_k(w0, mean, std, p_left, q_right, k_left, total)
            x1 = truncnorm_central_f32_k(w1, mean, std, p_left, q_right, k_left, total)
            x2 = truncnorm_central_f32_k(w2, mean, std, p_left, q_right, k_left, total)
            x3 = truncnorm_central_f32_k(w3, mean, std, p_left, q_right, k_left, total)
            _put(tile, j, clamp(x0, lo, hi))
            _put(tile, _L + j, clamp(x1, lo, hi))
            _put(tile, 2 * _L + j, clamp(x2, lo, hi))
            _put(tile, 3 * _L + j, clamp(x3, lo, hi))


@loop
def _fill_tiles_tail_f32(dst, t0, ntiles, p, key):
    # rare (intervals beyond ~11 sigma) and scalar anyway: plain calls keep compile time low
    k0, k1, c2, c3 = key[0], key[1], key[2], key[3]
    for t in range(ntiles):
        c0, c1 = _counter(t0 + t)
        tile = dst[t * _TILE32 : (t + 1) * _TILE32]
        for j in range(_L):
            w = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
            for k in range(4):
                _put(tile, k * _L + j, tail_f32_at(w[k], p))


@loop
def _fill_tiles_f32(dst, t0, ntiles, dist, p, key):
    """Tiles t0 .. t0 + ntiles - 1 into dst (float32; uint16: bfloat16 bits; int16: float16 bits)."""
    if dist == UNIFORM:
        _fill_tiles_uniform_f32(dst, t0, ntiles, p, key)
    elif dist == NORMAL:
        _fill_tiles_normal_f32(dst, t0, ntiles, p, key)
    elif dist == TRUNCNORM_CENTRAL:
        _fill_tiles_truncnorm_central_f32(dst, t0, ntiles, p, key)
    elif dist == TRUNCNORM:
        _fill_tiles_truncnorm_f32(dst, t0, ntiles, p, key)
    else:
        _fill_tiles_tail_f32(dst, t0, ntiles, p, key)


@loop
def _fill_tiles_uniform_f64(dst, t0, ntiles, p, key):
    k0, k1, c2, c3 = key[0], key[1], key[2], key[3]
    low, scale, lo, hi = p[0], p[1], p[2], p[3]
    for t in range(ntiles):
        c0, c1 = _counter(t0 + t)
        tile = dst[t * _TILE64 : (t + 1) * _TILE64]
        for j in range(_L):
            w0, w1, w2, w3 = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
            tile[j] = uniform_f64(w0, w1, low, scale, lo, hi)
            tile[_L + j] = uniform_f64(w2, w3, low, scale, lo, hi)


@loop
def _fill_tiles_normal_f64(dst, t0, ntiles, p, key):
    k0, k1, c2, c3 = key[0], key[1], key[2], key[3]
    mean, std, lo, hi = p[0], p[1], p[2], p[3]
    for t in range(ntiles):
        c0, c1 = _counter(t0 + t)
        tile = dst[t * _TILE64 : (t + 1) * _TILE64]
        for j in range(_L):
            w0, w1, w2, w3 = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
            x0, x1 = normal_pair_f64(w0, w1, w2, w3, mean, std)
            tile[j] = clamp(x0, lo, hi)
            tile[_L + j] = clamp(x1, lo, hi)


@loop
def _fill_tiles_truncnorm_f64(dst, t0, ntiles, p, key, tail):
    # float64 quantiles branch on their region, so this loop is scalar either way
    k0, k1, c2, c3 = key[0], key[1], key[2], key[3]
    for t in range(ntiles):
        c0, c1 = _counter(t0 + t)
        for j in range(_L):
            w0, w1, w2, w3 = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
            o = t * _TILE64 + j
            if tail:
                dst[o] = tail_f64_at(w0, w1, p)
                dst[o + _L] = tail_f64_at(w2, w3, p)
            else:
                dst[o] = truncnorm_f64_at(w0, w1, p)
                dst[o + _L] = truncnorm_f64_at(w2, w3, p)


@pure
def _truncnorm_central_f64_at(wa, wb, q):
    """q: the 8 parameters as a tuple (loaded before the loop: loads from p inside it would
    have to be repeated, as stores to dst might alias p, and the loop would not vectorize)."""
    v, central = truncnorm_central_f64(wa, wb, q[0], q[1], q[4], q[5], q[6], q[7])
    return clamp(v, q[2], q[3]), central


_U8_0 = uint8(0)
_U8_1 = uint8(1)


@loop
def _fill_tiles_truncnorm_central_f64(dst, t0, ntiles, p, key):
    """As _fill_tiles_truncnorm_f64 (not tail), in two passes per tile: a branch-free vectorized pass
    over the quantile's central fits, then the general scalar function for the values whose p
    fell in its tail region (flagged by the first pass). The same bits, every value."""
    k0, k1, c2, c3 = key[0], key[1], key[2], key[3]
    q = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])
    far = np.zeros(_TILE64, np.uint8)
    for t in range(ntiles):
        c0, c1 = _counter(t0 + t)
        tile = dst[t * _TILE64 : (t + 1) * _TILE64]
        nfar = 0
        for j in range(_L):
            w0, w1, w2, w3 = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
            x0, in0 = _truncnorm_central_f64_at(w0, w1, q)
            x1, in1 = _truncnorm_central_f64_at(w2, w3, q)
            tile[j] = x0
            tile[_L + j] = x1
            f0 = _U8_0 if in0 else _U8_1
            f1 = _U8_0 if in1 else _U8_1
            far[j] = f0
            far[_L + j] = f1
            nfar += int64(f0 | f1)
        if nfar != 0:
            for j in range(_L):
                if far[j] != 0 or far[_L + j] != 0:
                    w0, w1, w2, w3 = philox4x32_block(c0 + uint64(j), c1, c2, c3, k0, k1, ROUNDS)
                    if far[j] != 0:
                        tile[j] = truncnorm_f64_at(w0, w1, p)
                    if far[_L + j] != 0:
                        tile[_L + j] = truncnorm_f64_at(w2, w3, p)


# p below which ndtri_central_f64 is not central (w = -log(4 p (1 - p)) = 6.25), rounded up
_CENTRAL_MIN_P_F64 = 0.000483


@pure
def _tail_share_f64(p):
    """An estimate of the share of values whose p falls in the quantile's tail region, from the
    parameters (p_left, q_right, mass_left, total): only a choice of speed, never of values."""
    p_left, q_right, mass_left, total = p[4], p[5], p[6], p[7]
    mass_right = total - mass_left
    near_left = max(0.0, min(_CENTRAL_MIN_P_F64, p_left + mass_left) - p_left) if mass_left > 0 else 0.0
    near_right = max(0.0, min(_CENTRAL_MIN_P_F64, q_right + mass_right) - q_right) if mass_right > 0 else 0.0
    return (near_left + near_right) / total if total > 0 else 1.0


@loop
def _fill_tiles_f64(dst, t0, ntiles, dist, p, key):
    if dist == UNIFORM:
        _fill_tiles_uniform_f64(dst, t0, ntiles, p, key)
    elif dist == NORMAL:
        _fill_tiles_normal_f64(dst, t0, ntiles, p, key)
    elif dist != TRUNCNORM_TAIL and _tail_share_f64(p) < 0.25:
        _fill_tiles_truncnorm_central_f64(dst, t0, ntiles, p, key)
    else:
        _fill_tiles_truncnorm_f64(dst, t0, ntiles, p, key, dist == TRUNCNORM_TAIL)


@loop
def _store32(out, o, src, s, m):
    """out[o + e] = src[s + e] for e < m, converted to out's storage.

    Offsets rather than slices: a slice of ``out`` updates its reference count atomically, and
    with every thread slicing the same array that cache line ping-pongs between cores. The
    indices are unsigned so Numba adds no negative-index wraparound and the loop vectorizes.
    """
    uo, us = uint64(o), uint64(s)
    for e in range(m):
        _put(out, uo + uint64(e), src[us + uint64(e)])


@loop
def _converted_tiles32(out, start, t_lo, t_hi, scratch, dist, p, key):
    """Tiles [t_lo, t_hi) through the scratch tiles and a converting copy of the part inside
    out, _CONVERT_TILES at a time (measured: one pass per chunk beats L1-sized passes, whose
    extra calls cost more with two threads than the L2 round trip)."""
    n = out.size
    for s_lo in range(t_lo, t_hi, _CONVERT_TILES):
        s_hi = min(t_hi, s_lo + _CONVERT_TILES)
        _fill_tiles_f32(scratch, s_lo, s_hi - s_lo, dist, p, key)
        o = s_lo * _TILE32 - start
        skip = max(0, -o)
        stop = min((s_hi - s_lo) * _TILE32, n - o)
        if stop > skip:
            _store32(out, o + skip, scratch, skip, stop - skip)


@loop
def _tiles32(out, start, t_lo, t_hi, scratch, dist, p, key):
    """Tiles [t_lo, t_hi) (at most _CHUNK_TILES) of the run whose out[0] is flat index start.

    Straight into a float32 out when they all fall inside it; otherwise (the ends of a run,
    and 16-bit outputs) through the scratch (``_converted_tiles32``).
    """
    o_lo = t_lo * _TILE32 - start
    o_hi = t_hi * _TILE32 - start
    if o_lo >= 0 and o_hi <= out.size:
        _fill_tiles_f32(out[o_lo:o_hi], t_lo, t_hi - t_lo, dist, p, key)
    else:
        _converted_tiles32(out, start, t_lo, t_hi, scratch, dist, p, key)


@loop
def _tiles64(out, start, t_lo, t_hi, scratch, dist, p, key):
    n = out.size
    o_lo = t_lo * _TILE64 - start
    o_hi = t_hi * _TILE64 - start
    if o_lo >= 0 and o_hi <= n:
        _fill_tiles_f64(out[o_lo:o_hi], t_lo, t_hi - t_lo, dist, p, key)
    else:
        _fill_tiles_f64(scratch, t_lo, t_hi - t_lo, dist, p, key)
        skip = max(0, -o_lo)
        stop = min(o_hi, n) - o_lo
        out[o_lo + skip : o_lo + stop] = scratch[skip:stop]


@loop
def _run32(out, start, scratch, dist, p, key):
    """Serially fill the contiguous out with flat indices start, start + 1, ..."""
    t_end = (start + out.size - 1) // _TILE32 + 1
    for t_lo in range(start // _TILE32, t_end, _CHUNK_TILES):
        _tiles32(out, start, t_lo, min(t_end, t_lo + _CHUNK_TILES), scratch, dist, p, key)


@loop
def _run64(out, start, scratch, dist, p, key):
    t_end = (start + out.size - 1) // _TILE64 + 1
    for t_lo in range(start // _TILE64, t_end, _CHUNK_TILES):
        _tiles64(out, start, t_lo, min(t_end, t_lo + _CHUNK_TILES), scratch, dist, p, key)


# fill_run_32 and fill_run_64 (and _tiles32 / _tiles64) have the same shape on purpose: tile
# size, scratch dtype and tile functions are compile-time facts of each, so each prange body is
# one monomorphic loop that Numba vectorizes; a shared generic body would dispatch per chunk.
@numba.njit(**KERNEL)
def fill_run_32(out, start, dist, params, key):
    """out[e] = value of flat index start + e, for a contiguous 1-D out (float32, or uint16 /
    int16 holding bfloat16 / float16 bits)."""
    n = out.size
    if n == 0:
        return
    first = start // _TILE32
    ntiles = (start + n - 1) // _TILE32 - first + 1
    nchunks = (ntiles + _CHUNK_TILES - 1) // _CHUNK_TILES
    for c in prange(nchunks):
        scratch = np.empty(_CONVERT_TILES * _TILE32, np.float32)
        t_lo = first + c * _CHUNK_TILES
        t_hi = min(first + ntiles, t_lo + _CHUNK_TILES)
        _tiles32(out, start, t_lo, t_hi, scratch, dist, params, key)


@numba.njit(**KERNEL)
def fill_run_64(out, start, dist, params, key):
    n = out.size
    if n == 0:
        return
    first = start // _TILE64
    ntiles = (start + n - 1) // _TILE64 - first + 1
    nchunks = (ntiles + _CHUNK_TILES - 1) // _CHUNK_TILES
    for c in prange(nchunks):
        scratch = np.empty(_CHUNK_TILES * _TILE64, np.float64)
        t_lo = first + c * _CHUNK_TILES
        t_hi = min(first + ntiles, t_lo + _CHUNK_TILES)
        _tiles64(out, start, t_lo, t_hi, scratch, dist, params, key)


@pure
def _block_of(i, tile_size):
    """(counter lo, counter hi, slot) of flat index i in the layout (rng/layout.py)."""
    tile, r = i // tile_size, i % tile_size
    slot, lane = r // _L, r % _L
    block = uint64(tile) * uint64(_L) + uint64(lane)
    return block & _LO32, block >> _U32, slot


@loop
def _value_f32(i, dist, p, key):
    """The float32 value of flat index i, alone (the per-element form of _tile_f32)."""
    c0, c1, slot = _block_of(i, _TILE32)
    w = philox4x32_block(c0, c1, key[2], key[3], key[0], key[1], ROUNDS)
    if dist == UNIFORM:
        return uniform_f32(w[slot], float32(p[0]), float32(p[1]), float32(p[2]), float32(p[3]))
    if dist == NORMAL:
        pair = normal_pair_f32(w[slot & -2], w[slot | 1], float32(p[0]), float32(p[1]))
        return clamp(pair[slot & 1], float32(p[2]), float32(p[3]))
    if dist == TRUNCNORM or dist == TRUNCNORM_CENTRAL:  # same values (see truncnormal.py)
        return truncnorm_f32_at(w[slot], f32_params(p))
    return tail_f32_at(w[slot], p)


@loop
def _value_f64(i, dist, p, key):
    c0, c1, slot = _block_of(i, _TILE64)
    w = philox4x32_block(c0, c1, key[2], key[3], key[0], key[1], ROUNDS)
    if dist == NORMAL:
        return clamp(normal_pair_f64(w[0], w[1], w[2], w[3], p[0], p[1])[slot], p[2], p[3])
    wa, wb = w[2 * slot], w[2 * slot + 1]
    if dist == UNIFORM:
        return uniform_f64(wa, wb, p[0], p[1], p[2], p[3])
    if dist == TRUNCNORM_TAIL:
        return tail_f64_at(wa, wb, p)
    return truncnorm_f64_at(wa, wb, p)


@loop
def _run_offsets(o, shape, sstride, dstride, sbase, dbase):
    # prange indices can be uint64, and uint64 op int64 is float64 in Numba: cast first
    s, d, rem = sbase, dbase, int64(o)
    for j in range(shape.size - 1, -1, -1):
        q = rem % shape[j]
        rem //= shape[j]
        s += q * sstride[j]
        d += q * dstride[j]
    return s, d


@numba.njit(**KERNEL)
def fill_strided_32(out, shape, sstride, dstride, sbase, dbase, n, sstep, dstep, dist, params, key):
    """For every outer multi-index: a run of n elements, source step sstep, destination dstep.

    out is the flat storage (as fill_run_32); offsets are in elements.
    """
    n_outer = 1
    for j in range(shape.size):
        n_outer *= shape[j]
    for o in prange(n_outer):
        s, d = _run_offsets(o, shape, sstride, dstride, sbase, dbase)
        if sstep == 1 and dstep == 1:
            scratch = np.empty(_CONVERT_TILES * _TILE32, np.float32)
            _run32(out[d : d + n], s, scratch, dist, params, key)
        else:
            for e in range(n):
                _put(out, d + e * dstep, _value_f32(s + e * sstep, dist, params, key))


@numba.njit(**KERNEL)
def fill_strided_64(out, shape, sstride, dstride, sbase, dbase, n, sstep, dstep, dist, params, key):
    n_outer = 1
    for j in range(shape.size):
        n_outer *= shape[j]
    for o in prange(n_outer):
        s, d = _run_offsets(o, shape, sstride, dstride, sbase, dbase)
        if sstep == 1 and dstep == 1:
            scratch = np.empty(_CHUNK_TILES * _TILE64, np.float64)
            _run64(out[d : d + n], s, scratch, dist, params, key)
        else:
            for e in range(n):
                out[d + e * dstep] = _value_f64(s + e * sstep, dist, params, key)


@numba.njit(**KERNEL)
def round_to_storage_32(out, src):
    """out[i] = src[i] (float32) rounded to out's storage: bfloat16 bits (uint16), float16 bits
    (int16) or float32. For values computed on the host (orthogonal, eye, ...)."""
    n = src.size
    nchunks = (n + _CHUNK_TILES * _TILE32 - 1) // (_CHUNK_TILES * _TILE32)
    for c in prange(nchunks):
        lo = c * _CHUNK_TILES * _TILE32
        _store32(out, lo, src, lo, min(n, lo + _CHUNK_TILES * _TILE32) - lo)


def round_to_storage(values: np.ndarray, storage_dtype) -> np.ndarray:
    """Round a float32/float64 array once to the storage dtype (float16 / bfloat16 bits as uint16)."""
    values = np.asarray(values)
    if storage_dtype in (np.float32, np.float64):
        return values.astype(storage_dtype, copy=False)
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)  # (ascontiguousarray makes 0-d 1-d)
    out = np.empty(flat.size, np.int16 if storage_dtype == np.float16 else np.uint16)
    launch(round_to_storage_32, out, flat)
    return out.view(storage_dtype).reshape(values.shape)


# Numba's workqueue threading layer (the one it falls back to without OpenMP or TBB, or when
# NUMBA_THREADING_LAYER names it) aborts the process when two threads run parallel kernels at
# once; omp and tbb are thread-safe. The layer is known only after the process's first parallel
# run, so launches are serialized until then, and from then on only under workqueue.
_LAUNCH_LOCK = threading.Lock()
_layer_is_thread_safe: bool | None = None  # None: no parallel kernel has run yet


def _new_launch_lock() -> None:
    # a fork copies the lock as another thread held it, and no thread of the child releases it
    global _LAUNCH_LOCK
    _LAUNCH_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_new_launch_lock)


def _thread_safe_layer() -> bool | None:
    try:
        return numba.threading_layer() != "workqueue"
    except ValueError:  # no parallel kernel has run in this process yet
        return None


def launches_serialized() -> bool:
    """Whether parallel kernels run one at a time (workqueue layer, or none has run yet)."""
    return not _layer_is_thread_safe


def launch(kernel, *args):
    """Run a parallel kernel; safe to call from several Python threads under every layer.

    >>> import numpy as np
    >>> out = launch(round_to_storage_32, np.empty(2, np.uint16), np.array([1.0, -2.0], np.float32))
    >>> launches_serialized() == (numba.threading_layer() == "workqueue")
    True
    """
    global _layer_is_thread_safe
    if _layer_is_thread_safe:
        return kernel(*args)
    with _LAUNCH_LOCK:
        try:
            return kernel(*args)
        finally:
            if _layer_is_thread_safe is None:
                _layer_is_thread_safe = _thread_safe_layer()


_ELEMENTWISE: dict = {}


def elementwise_kernel(fn):
    """A parallel kernel x[i] = fn(x[i]) over a 1-D float array, fn compiled by Numba with
    Python's semantics (a division by zero raises ZeroDivisionError).

    An exception fn raises is raised again, its message prefixed by fn's name; x is then
    partly overwritten. Built once per fn in a process (a closure over the user's function
    cannot be cached on disk, so the first call compiles: about a second).
    """
    kernel = _ELEMENTWISE.get(fn)
    if kernel is None:
        compiled = fn if isinstance(fn, numba.core.dispatcher.Dispatcher) else numba.njit(**USER_FUNCTION)(fn)

        # An exception cannot leave a parallel loop (Numba drops it under workqueue and garbles
        # it into a SystemError under omp): it is caught per element, the loop reports the
        # first failing index, and a serial call on that element raises it for real.
        @numba.njit(**USER_FUNCTION)
        def failed_at(x, i):
            try:
                x[i] = compiled(x[i])
                return False
            except Exception:
                return True

        @numba.njit(**KERNEL_NOCACHE)
        def apply(x):
            first_failure = x.size
            for i in prange(x.size):
                if failed_at(x, i):
                    first_failure = min(first_failure, i)
            return first_failure

        def kernel(x):
            first_failure = launch(apply, x)
            if first_failure < x.size:
                _raise_from(fn, compiled, x[first_failure])

        _ELEMENTWISE[fn] = kernel
    return kernel


def _raise_from(fn, compiled, value):
    """Raise what compiled(value) raises, as the same exception type naming fn."""
    name = getattr(getattr(fn, "py_func", fn), "__qualname__", type(fn).__name__)
    try:
        compiled(value)
    except Exception as error:
        message = f"custom function {name!r} raised {type(error).__name__}: {error}".splitlines()[0]
        try:
            named = type(error)(message)
        except Exception:  # an exception type whose constructor takes other arguments
            named = RuntimeError(message)
        raise named from None
    raise RuntimeError(f"custom function {name!r} failed in a parallel run but not when called again")


def fill(out, plan: FillPlan, dist, params, key):
    """Fill the flat storage array ``out`` following ``plan``.

    out: float32, float64, float16 or uint16 (bfloat16 bits), 1-D.
    """
    if plan.size == 0:
        return
    params = np.ascontiguousarray(params, dtype=np.float64)
    key = np.ascontiguousarray(key, dtype=np.uint64)
    if out.dtype == np.float16:  # Numba has no float16: the kernels write its bits as int16
        out = out.view(np.int16)
    wide = out.dtype == np.float64
    contiguous = plan.src_step == 1 and plan.dst_step == 1
    n_outer = plan.size // plan.n
    # Few long runs: parallelize inside each run. Many runs: parallelize over runs.
    if contiguous and n_outer <= 4 * numba.get_num_threads() and plan.n >= 4096:
        for k in np.ndindex(*plan.outer):
            s = plan.src_base + sum(a * b for a, b in zip(k, plan.src_strides, strict=False))
            d = plan.dst_base + sum(a * b for a, b in zip(k, plan.dst_strides, strict=False))
            run = out[d : d + plan.n]
            launch(fill_run_64 if wide else fill_run_32, run, s, dist, params, key)
        return
    # (Python ints reach the kernels as int64; numba's own scalar casts cost ~7 us each here)
    arrays = [np.asarray(a, dtype=np.int64) for a in (plan.outer, plan.src_strides, plan.dst_strides)]
    scalars = (plan.src_base, plan.dst_base, plan.n, plan.src_step, plan.dst_step)
    launch(fill_strided_64 if wide else fill_strided_32, out, *arrays, *scalars, dist, params, key)
