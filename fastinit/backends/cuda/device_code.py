"""The CUDA backend's device code: per-value device functions, the kernels (plain Python that
compiler.py compiles on first use) and ``bind``, which compiles the device functions the
kernels call and points the kernels' globals at them.

Values: ``_pair32`` / ``_pair64`` compute a pair of values of a block with the very functions
the CPU kernels call (distributions/*, through backends/values.py), so both targets run the
same operations in the same order. The Philox words come from rng/philox.py's uint32 form of
the rounds (``philox4x32_rounds_u32`` with libdevice's umulhi: 4 SASS per round, where the
CPU's uint64 form compiles to 6 here), the same words by definition; every store goes through
``_store``, which indexes with uint64 (a signed index costs each store Numba's wrap-around
check and its own address).

Kernels: ``fill32`` / ``fill64`` take any plan; plans of contiguous runs go to
``fill32_dense_*`` / ``fill64_dense_*``, one per distribution and store kind, which skip the
general per-element index arithmetic; ``scatter`` stores values computed elsewhere.
"""

from __future__ import annotations

import numba
from numba import float32, float64, uint32, uint64

from ..._jit import SIMULATED_DEVICE_FUNCTION, loop
from ...cuda_runtime import is_simulator
from ...distributions import NORMAL, TRUNCNORM, TRUNCNORM_CENTRAL, TRUNCNORM_TAIL, UNIFORM
from ...distributions.normal import normal_pair_f32, normal_pair_f64
from ...distributions.rounding import bfloat16_bits, float16_bits
from ...distributions.uniform import uniform_f32, uniform_f64
from ...rng.layout import TILE_LANES
from ...rng.philox import ROUNDS, mul_hi_lo_u64, philox4x32_rounds_u32
from ..values import (
    clamp,
    f32_params,
    tail_f32_at,
    tail_f64_at,
    truncnorm_central_f32_at,
    truncnorm_f32_at,
    truncnorm_f64_at,
)

__all__ = ["bind", "cuda", "dense_name", "PY_KERNELS", "STORE_SAME", "STORE_BF16", "STORE_F16"]

# Integer literals are typed (uint64(...)): Numba types ``uint64 op int-literal`` as float64,
# and the simulator runs this code as Python on NumPy scalars, where the same rule holds.
_L = TILE_LANES
_TILE32 = 4 * TILE_LANES
_TILE64 = 2 * TILE_LANES
_LO32 = uint64(0xFFFFFFFF)
_U32 = uint64(32)

# How a kernel stores a value: as is (the output's own dtype), or a float32 rounded to
# bfloat16 / float16 bits (into a uint16 view of the output).
STORE_SAME = 0
STORE_BF16 = 1
STORE_F16 = 2

cuda = None  # numba.cuda, set by bind(); the kernels refer to it by this global name


# ---- per-value functions (device functions in the kernels; plain njit in the simulator) ------
# Non-inlined njit functions: called from a kernel, numba-cuda compiles each once as a device
# function (NVVM then inlines it), instead of inlining its whole call tree into every kernel at
# the Numba IR level, which multiplies the compile time of every kernel.


def _block_words(block, key):
    """The four Philox words (uint64 holding 32 bits) of block ``block`` (uint64) of the
    stream ``key`` = (key0, key1, counter2, counter3): rng/philox.py's uint32 form of the
    rounds (4 SASS per round on the GPU, against 6 for the CPU's uint64 form)."""
    w0, w1, w2, w3 = _philox_dev(
        uint32(block & _LO32), uint32(block >> _U32), uint32(key[2]), uint32(key[3]), uint32(key[0]),
        uint32(key[1]), ROUNDS,
    )  # fmt: skip
    return uint64(w0), uint64(w1), uint64(w2), uint64(w3)


def _mul_hi_lo_umulhi(a, b):
    """(high, low) halves of the uint32 product a * b: libdevice's umulhi and a 32-bit
    multiply, which ptxas fuses into one IMAD.WIDE.U32. (libdevice declares __nv_umulhi on
    int32: the same bits.)"""
    return uint32(_libdevice.umulhi(a, b)), uint32(a * b)


@loop
def _pair32(wa, wb, dist, p, only):
    """Values of the two words (wa, wb) of a block (slots 2h, 2h + 1), float32, as the CPU's
    tiles compute them. only = 0 or 1: compute only that one (the other is 0)."""
    if dist == NORMAL:
        x0, x1 = normal_pair_f32(wa, wb, float32(p[0]), float32(p[1]))
        lo, hi = float32(p[2]), float32(p[3])
        return clamp(x0, lo, hi), clamp(x1, lo, hi)
    q = f32_params(p)
    a = b = float32(0.0)
    for h in range(2):
        if only < 0 or only == h:
            w = wb if h == 1 else wa
            if dist == UNIFORM:
                x = uniform_f32(w, q[0], q[1], q[2], q[3])
            elif dist == TRUNCNORM_CENTRAL:
                x = truncnorm_central_f32_at(w, q)
            elif dist == TRUNCNORM:
                x = truncnorm_f32_at(w, q)
            else:
                x = tail_f32_at(w, p)
            if h == 0:
                a = x
            else:
                b = x
    return a, b


@loop
def _pair64(w0, w1, w2, w3, dist, p, only):
    """The two float64 values of a block (slots 0, 1), as the CPU's tiles compute them."""
    if dist == NORMAL:
        x0, x1 = normal_pair_f64(w0, w1, w2, w3, p[0], p[1])
        return clamp(x0, p[2], p[3]), clamp(x1, p[2], p[3])
    a = b = float64(0.0)
    for h in range(2):
        if only < 0 or only == h:
            wa = w2 if h == 1 else w0
            wb = w3 if h == 1 else w1
            if dist == UNIFORM:
                x = uniform_f64(wa, wb, p[0], p[1], p[2], p[3])
            elif dist == TRUNCNORM_TAIL:
                x = tail_f64_at(wa, wb, p)
            else:
                x = truncnorm_f64_at(wa, wb, p)
            if h == 0:
                a = x
            else:
                b = x
    return a, b


# ---- kernels (plain Python here; compiler.load() compiles them) --------------------------------
# Arguments shared by the kernels, from a FillPlan: desc = (outer shape, source strides,
# destination strides) as one int64 device array of 3 * ndim entries; n_outer = prod(outer);
# sbase/dbase, n, sstep/dstep as in FillPlan. p: the 8 float64 parameters; key: the 4 uint64
# stream words (key0, key1, counter2, counter3). Everything is int64 unless said otherwise.


def _run_start(o, desc, ndim, sbase, dbase):
    """Source flat index and destination offset of the start of run o."""
    s = sbase
    d = dbase
    for j in range(ndim - 1, -1, -1):
        c = o % desc[j]
        o //= desc[j]
        s += c * desc[ndim + j]
        d += c * desc[2 * ndim + j]
    return s, d


# _fill32 and _fill64 walk runs the same way on purpose: a float32 tile holds four values per
# Philox block and a float64 tile two, and keeping each a separate kernel keeps its tile size a
# constant the compiler folds into the index arithmetic (no per-thread division by a variable).
def _fill32(out, kind, desc, ndim, n_outer, sbase, dbase, n, sstep, dstep, dist, p, key):
    unit_steps = sstep == 1 and dstep == 1
    # Philox blocks touched by a run of n elements, wherever it starts in a tile
    per_run = _L * ((n + 2 * _TILE32 - 2) // _TILE32) if unit_steps else n
    for item in range(cuda.grid(1), n_outer * per_run, cuda.gridsize(1)):
        o = item // per_run
        r = item - o * per_run
        s, d = _run_start_dev(o, desc, ndim, sbase, dbase)
        if unit_steps:
            tile = s // _TILE32 + r // _L
            lane = r % _L
            only = -1
        else:
            i = s + r * sstep
            tile = i // _TILE32
            lane = i % _L
            only = (i % _TILE32) // _L  # the slot of element i, 0..3
        block = uint64(tile * _L + lane)
        w0, w1, w2, w3 = _block_words_dev(block, key)
        for half in range(2):
            if only < 0 or only // 2 == half:
                x0, x1 = _pair32(
                    uint64(w2 if half else w0),
                    uint64(w3 if half else w1),
                    dist,
                    p,
                    -1 if only < 0 else only % 2,
                )
                for h in range(2):
                    if unit_steps:
                        e = tile * _TILE32 + (2 * half + h) * _L + lane - s
                        ok = 0 <= e < n
                    else:
                        e = r
                        ok = only % 2 == h
                    if ok:
                        _store_dev(out, kind, d + e * dstep, x1 if h else x0)


def _fill64(out, desc, ndim, n_outer, sbase, dbase, n, sstep, dstep, dist, p, key):
    unit_steps = sstep == 1 and dstep == 1
    per_run = _L * ((n + 2 * _TILE64 - 2) // _TILE64) if unit_steps else n
    for item in range(cuda.grid(1), n_outer * per_run, cuda.gridsize(1)):
        o = item // per_run
        r = item - o * per_run
        s, d = _run_start_dev(o, desc, ndim, sbase, dbase)
        if unit_steps:
            tile = s // _TILE64 + r // _L
            lane = r % _L
            only = -1
        else:
            i = s + r * sstep
            tile = i // _TILE64
            lane = i % _L
            only = (i % _TILE64) // _L  # the slot of element i, 0 or 1
        block = uint64(tile * _L + lane)
        w0, w1, w2, w3 = _block_words_dev(block, key)
        x0, x1 = _pair64(uint64(w0), uint64(w1), uint64(w2), uint64(w3), dist, p, only)
        for h in range(2):
            if unit_steps:
                e = tile * _TILE64 + h * _L + lane - s
                ok = 0 <= e < n
            else:
                e = r
                ok = only == h
            if ok:
                _store_dev(out, STORE_SAME, d + e * dstep, x1 if h else x0)


def _store(out, kind, i, x):
    """out[i] = x as is (STORE_SAME) or rounded to bfloat16 / float16 bits (a uint16 out).

    i (>= 0) is indexed as uint64: Numba wraps signed indices around (i < 0: i + len), which
    costs every store its own 64-bit address arithmetic."""
    j = uint64(i)
    if kind == STORE_SAME:
        out[j] = x
    elif kind == STORE_BF16:
        out[j] = bfloat16_bits(float32(x))
    else:
        out[j] = float16_bits(float32(x))


def _whole_tiles(sbase, n, tile):
    """For a run of n elements starting at element sbase, with tiles of ``tile`` elements:
    (b0, e0, first, last, tiles): the Philox block of lane 0 of the run's first tile, the
    run's offset of that tile's element 0 (<= 0), the run's tiles [first, last) that lie
    wholly inside it, and its number of tiles (those before first and from last are partial:
    at most one at each end)."""
    t0 = sbase // tile
    e0 = t0 * tile - sbase
    tiles = (n - e0 + tile - 1) // tile
    first = 0 if e0 == 0 else 1
    last = max((n - e0) // tile, first)
    return t0 * _L, e0, first, last, tiles


def _tile_values32(b0, e0, item, dist, p, key):
    """(e, x0, x1, x2, x3): work item ``item`` of a dense run, the Philox block b0 + item:
    the run's offset e of its slot-0 element and its four float32 values (slots 0..3, 16
    elements apart)."""
    w0, w1, w2, w3 = _block_words_dev(uint64(b0 + item), key)
    x0, x1 = _pair32(w0, w1, dist, p, -1)
    x2, x3 = _pair32(w2, w3, dist, p, -1)
    return e0 + (item >> 4) * _TILE32 + (item & 15), x0, x1, x2, x3  # (_L = 16 lanes)


def _tile_values64(b0, e0, item, dist, p, key):
    """_tile_values32 for float64: (e, x0, x1), slots 0 and 1."""
    w0, w1, w2, w3 = _block_words_dev(uint64(b0 + item), key)
    x0, x1 = _pair64(w0, w1, w2, w3, dist, p, -1)
    return e0 + (item >> 4) * _TILE64 + (item & 15), x0, x1


def _dense32(out, kind, dbase, sbase, n, dist, p, key):
    """The common case, lean: ``out[dbase + e]`` = element ``sbase + e`` for e in [0, n) (a
    whole tensor, a run of rows, a contiguous ``out=``). Work item ``item`` is the Philox block
    ``b0 + item``, in two grid-stride loops: the whole tiles, which store without bounds
    checks, then the (at most two) partial tiles at the ends. Same values as _fill32 (the same
    per-value functions), with none of its general index arithmetic.

    Compiled once per distribution and store kind, both compile-time constants (closures,
    ``_dense32_kernel``): the other distributions' branches go, and with them registers."""
    b0, e0, first, last, tiles = _whole_tiles_dev(sbase, n, _TILE32)
    start, step = cuda.grid(1), cuda.gridsize(1)
    for item in range(first * _L + start, last * _L, step):
        e, x0, x1, x2, x3 = _tile_values32_dev(b0, e0, item, dist, p, key)
        _store_dev(out, kind, dbase + e, x0)
        _store_dev(out, kind, dbase + e + _L, x1)
        _store_dev(out, kind, dbase + e + 2 * _L, x2)
        _store_dev(out, kind, dbase + e + 3 * _L, x3)
    partial = first * _L  # the items of the partial tiles: [0, partial) and [last * _L, tiles * _L)
    for edge in range(start, partial + (tiles - last) * _L, step):
        item = edge if edge < partial else edge - partial + last * _L
        e, x0, x1, x2, x3 = _tile_values32_dev(b0, e0, item, dist, p, key)
        for k in range(4):
            if 0 <= e + k * _L < n:
                x = x0 if k == 0 else x1 if k == 1 else x2 if k == 2 else x3
                _store_dev(out, kind, dbase + e + k * _L, x)


def _dense64(out, dbase, sbase, n, dist, p, key):
    """_dense32 for float64 (two values per block, tiles of 32)."""
    b0, e0, first, last, tiles = _whole_tiles_dev(sbase, n, _TILE64)
    start, step = cuda.grid(1), cuda.gridsize(1)
    for item in range(first * _L + start, last * _L, step):
        e, x0, x1 = _tile_values64_dev(b0, e0, item, dist, p, key)
        _store_dev(out, STORE_SAME, dbase + e, x0)
        _store_dev(out, STORE_SAME, dbase + e + _L, x1)
    partial = first * _L
    for edge in range(start, partial + (tiles - last) * _L, step):
        item = edge if edge < partial else edge - partial + last * _L
        e, x0, x1 = _tile_values64_dev(b0, e0, item, dist, p, key)
        if 0 <= e < n:
            _store_dev(out, STORE_SAME, dbase + e, x0)
        if 0 <= e + _L < n:
            _store_dev(out, STORE_SAME, dbase + e + _L, x1)


# The dense kernels, one per distribution code and (float32 outputs) store kind, closure
# constants: Numba compiles them as constants and caches each closure under its own key. Each
# fills the runs of a plan with unit steps (n_outer runs of n contiguous elements: a whole
# tensor is one run, a column shard of a matrix one run per row): run o on the blocks with
# blockIdx.y = o modulo gridDim.y, its Philox blocks in a grid-stride loop along x. The run's
# offsets come from _run_start once per run, not per element as in the general kernels.
# float64 has no separate central truncated normal (_pair64 computes it as TRUNCNORM).
_DIST_NAMES = {UNIFORM: "uniform", NORMAL: "normal", TRUNCNORM: "truncnorm", TRUNCNORM_TAIL: "tail",
               TRUNCNORM_CENTRAL: "central"}  # fmt: skip
_KIND_SUFFIX = {STORE_SAME: "", STORE_BF16: "_bf16", STORE_F16: "_f16"}


def _dense32_kernel(dist, kind):
    def fill32_dense(out, desc, ndim, n_outer, sbase, dbase, n, p, key):
        # runs along the grid's y dimension, each run's Philox blocks along x (see _dense32)
        for o in range(cuda.blockIdx.y, n_outer, cuda.gridDim.y):
            s, d = _run_start_dev(o, desc, ndim, sbase, dbase)
            _dense32_dev(out, kind, d, s, n, dist, p, key)

    return fill32_dense


def _dense64_kernel(dist):
    def fill64_dense(out, desc, ndim, n_outer, sbase, dbase, n, p, key):
        for o in range(cuda.blockIdx.y, n_outer, cuda.gridDim.y):
            s, d = _run_start_dev(o, desc, ndim, sbase, dbase)
            _dense64_dev(out, d, s, n, dist, p, key)

    return fill64_dense


def dense_name(wide: bool, dist: int, kind: int = STORE_SAME) -> str:
    if wide:
        return f"fill64_dense_{_DIST_NAMES[TRUNCNORM if dist == TRUNCNORM_CENTRAL else dist]}"
    return f"fill32_dense_{_DIST_NAMES[dist]}{_KIND_SUFFIX[kind]}"


def _scatter(out, kind, src, desc, ndim, n_outer, sbase, dbase, n, sstep, dstep):
    """out[destination] = src[source] along a plan (src: a dense array of the values), stored as
    is or rounded to bfloat16 / float16 bits. For values computed outside the samplers."""
    for item in range(cuda.grid(1), n_outer * n, cuda.gridsize(1)):
        o = item // n
        r = item - o * n
        s, d = _run_start_dev(o, desc, ndim, sbase, dbase)
        _store_dev(out, kind, d + r * dstep, src[uint64(s + r * sstep)])


_run_start_dev = _whole_tiles_dev = None  # the device functions made from _run_start, _whole_tiles
_tile_values32_dev = _tile_values64_dev = None  # ... and from _tile_values32 / _tile_values64
_store_dev = None  # ... and from _store
_block_words_dev = _philox_dev = None  # ... from _block_words and rng/philox.py's uint32 rounds
_libdevice = None  # numba.cuda.libdevice (not in the simulator)
_dense32_dev = _dense64_dev = None  # ... and from _dense32 / _dense64


def bind(module) -> None:
    """Point the kernels' globals at ``module`` (numba.cuda) and compile the device functions
    they call into them: compiler.load() does it once; tests/test_cuda_ptx.py does it to compile
    the kernels to PTX on a machine without a GPU."""
    global cuda, _libdevice, _philox_dev, _block_words_dev, _run_start_dev, _whole_tiles_dev, _store_dev
    global _tile_values32_dev, _tile_values64_dev, _dense32_dev, _dense64_dev
    cuda = module
    if is_simulator():
        # the simulator runs device functions as Python: the rounds run compiled for the CPU,
        # with the portable uint64 product (the same rounds, much faster than Python)
        _philox_dev = numba.njit(**SIMULATED_DEVICE_FUNCTION)(philox4x32_rounds_u32(mul_hi_lo_u64))
    else:
        from numba.cuda import libdevice

        _libdevice = libdevice
        _philox_dev = module.jit(device=True)(
            philox4x32_rounds_u32(module.jit(device=True)(_mul_hi_lo_umulhi))
        )
    _block_words_dev = module.jit(device=True)(_block_words)
    _run_start_dev = module.jit(device=True)(_run_start)
    _whole_tiles_dev = module.jit(device=True)(_whole_tiles)
    _tile_values32_dev = module.jit(device=True)(_tile_values32)
    _tile_values64_dev = module.jit(device=True)(_tile_values64)
    _store_dev = module.jit(device=True)(_store)
    _dense32_dev = module.jit(device=True)(_dense32)
    _dense64_dev = module.jit(device=True)(_dense64)


PY_KERNELS = {
    "fill32": _fill32,
    "fill64": _fill64,
    **{
        dense_name(False, dist, kind): _dense32_kernel(dist, kind)
        for dist in _DIST_NAMES
        for kind in _KIND_SUFFIX
    },
    **{dense_name(True, dist): _dense64_kernel(dist) for dist in _DIST_NAMES if dist != TRUNCNORM_CENTRAL},
    "scatter": _scatter,
}
