"""CUDA fill kernels: the CPU kernels' per-element functions, one thread per Philox block.

Imported only when ``device="cuda"`` is used; ``numba.cuda`` itself is imported by ``load()``
(never by ``import fastinit``). This is the only place that applies ``numba.cuda.jit``.

Layout (rng/layout.py): the work item for tile t, lane j computes the Philox block
t * 16 + j and stores its values: float32 outputs (and bfloat16 / float16, computed in
float32) at elements t*64 + k*16 + j for k = 0..3, float64 outputs at t*32 + k*16 + j for
k = 0, 1. Per k, a warp stores two runs of 16 consecutive values: full 32-byte sectors. Each
thread takes work items in a grid-stride loop, so any grid and block size cover the range and
no value depends on which thread computed it (tests/cuda_sim/ runs several geometries
and compares the bytes).

What to fill is the CPU backend's ``FillPlan`` (an outer multi-index times a run of n
elements, with source and destination steps):

- both steps 1 (whole tensors, ``index=`` without steps, any ``out=`` whose rows are
  contiguous): one work item per Philox block of each run; values of a block that fall
  outside the run (the partial tiles at both ends) are not stored;
- otherwise (``index=`` with steps, transposed or strided ``out=``): one work item per
  element, which computes its block's words and only its own value.

Values: ``_pair32`` / ``_pair64`` compute a pair of values of a block with the very functions
the CPU kernels call (distributions/*, through backends/values.py's per-value helpers), so both
targets run the same operations in the same order. The Philox words come from rng/philox.py's
uint32 form of the rounds (``philox4x32_rounds_u32`` with libdevice's umulhi: 4 SASS per round,
where the CPU's uint64 form compiles to 6 here), the same words by definition; every store goes
through ``_store``, which indexes with uint64 (a signed index costs each store Numba's
wrap-around check and its own address). Every intended multiply-add is an explicit
``fma`` (llvm.fma -> ``fma.rn``), division and square root are IEEE (``div.rn``, ``sqrt.rn``:
NVVM's defaults prec-div=1, prec-sqrt=1, ftz=0, since the kernels are compiled without
fastmath), and the kernels are compiled without LTO, so the PTX that tests/test_cuda_ptx.py
inspects is what the driver assembles. Contraction can happen at two places, and that test
checks both for every kernel signature (``signatures()``):

- NVVM (``-fma=1`` by default): compiling with ``-fma=0`` gives the same instructions (only
  the rounding suffix of plain ``mul``/``add`` changes), so NVVM fused nothing;
- ptxas, which may fuse a ``mul`` and an ``add``/``sub`` that carry no rounding suffix: the
  only such pair in the PTX is ``-2.0 * logq`` feeding a subtraction (the far-tail truncated
  normal, distributions/special.py ``log_norm_sf_inverse``), a product by a power of two, which
  is exact, so fusing it changes no bit.

Hence the GPU computes the CPU's bytes, exactly, for every sampler (uniform, normal, truncated
normal, 16-bit outputs included); see README.md, "CUDA". Checked on an
GPU by tests/test_cuda_gpu.py (every sampler and dtype, 10**8 elements each); in CI, under numba's CUDA simulator, the kernels' index arithmetic and
layout are checked byte for byte against the CPU backend (tests/cuda_sim/).

Kernels: ``fill32`` / ``fill64`` take any plan; plans of contiguous runs (whole tensors, row
ranges, contiguous ``out=``: one run; column shards, ``out=`` with padded rows: one run per
row, if the runs are not short) go to ``fill32_dense_*`` / ``fill64_dense_*``, compiled once
per distribution and store kind, which skip the general per-element index arithmetic (and
with it most of the general kernel's instructions per value).

Streams: a kernel writing a new FastArray runs on Numba's default stream (the legacy default
stream) and records an event that ``FastArray.__dlpack__`` makes the consumer's stream wait
for. A kernel writing into ``out=`` runs on the stream the output belongs to: torch's and
CuPy's current stream for their tensors, the ``stream`` of a ``__cuda_array_interface__``,
else the legacy default stream (and then waits for the kernel, since a DLPack producer cannot
be told about work done on its memory).
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numba
import numpy as np
from numba import float32, float64, uint32, uint64

from .._jit import loop
from ..array import FastArray
from ..cuda_runtime import cuda_runtime, is_simulator, new_event
from ..distributions import NORMAL, TRUNCNORM, TRUNCNORM_CENTRAL, TRUNCNORM_TAIL, UNIFORM
from ..distributions.normal import normal_pair_f32, normal_pair_f64
from ..distributions.rounding import bfloat16_bits, float16_bits
from ..distributions.uniform import uniform_f32, uniform_f64
from ..dtypes import DType
from ..rng.layout import TILE_LANES
from ..rng.philox import ROUNDS, mul_hi_lo_u64, philox4x32_rounds_u32
from . import cpu
from .plan import FillPlan
from .values import (
    clamp,
    f32_params,
    tail_f32_at,
    tail_f64_at,
    truncnorm_central_f32_at,
    truncnorm_f32_at,
    truncnorm_f64_at,
)

__all__ = [
    "load",
    "fill",
    "fill_array",
    "deliver",
    "device_out",
    "fixed_geometry",
    "signatures",
    "STORE_SAME",
    "STORE_BF16",
    "STORE_F16",
]

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

BLOCK_SIZE = 256  # threads per block
BLOCKS_PER_SM = 16  # grid size cap, per multiprocessor: a grid-stride loop does the rest
# Runs of fewer work items (Philox blocks) than this go to the general kernels when there are
# several: the dense kernels give each run whole thread blocks along x, mostly idle for short
# runs, where the general kernels spread every run's items over all threads.
DENSE_MIN_ITEMS = BLOCK_SIZE // 2

cuda = None  # numba.cuda, set by load(); the kernels refer to it by this global name


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


# ---- kernels (plain Python here; load() compiles them) -----------------------------------------
# Arguments shared by the kernels, from a FillPlan: desc = (outer shape, source strides,
# destination strides) as one int64 device array of 3 * ndim entries; n_outer = prod(outer);
# sbase/dbase, n, sstep/dstep as in FillPlan. p: the 8 float64 parameters; key: the 4 uint64
# stream words (key0, key1, counter2, counter3). Everything is int64 unless said otherwise.


def _outer(o, desc, ndim, sbase, dbase):
    """Source flat index and destination offset of the start of run o."""
    s = sbase
    d = dbase
    for j in range(ndim - 1, -1, -1):
        c = o % desc[j]
        o //= desc[j]
        s += c * desc[ndim + j]
        d += c * desc[2 * ndim + j]
    return s, d


def _fill32(out, kind, desc, ndim, n_outer, sbase, dbase, n, sstep, dstep, dist, p, key):
    blocks = sstep == 1 and dstep == 1
    # blocks touched by a run of n elements, wherever it starts in a tile
    per_run = _L * ((n + 2 * _TILE32 - 2) // _TILE32) if blocks else n
    for item in range(cuda.grid(1), n_outer * per_run, cuda.gridsize(1)):
        o = item // per_run
        r = item - o * per_run
        s, d = _outer_offsets(o, desc, ndim, sbase, dbase)
        if blocks:
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
                    if blocks:
                        e = tile * _TILE32 + (2 * half + h) * _L + lane - s
                        ok = 0 <= e < n
                    else:
                        e = r
                        ok = only % 2 == h
                    if ok:
                        _store_dev(out, kind, d + e * dstep, x1 if h else x0)


def _fill64(out, desc, ndim, n_outer, sbase, dbase, n, sstep, dstep, dist, p, key):
    blocks = sstep == 1 and dstep == 1
    per_run = _L * ((n + 2 * _TILE64 - 2) // _TILE64) if blocks else n
    for item in range(cuda.grid(1), n_outer * per_run, cuda.gridsize(1)):
        o = item // per_run
        r = item - o * per_run
        s, d = _outer_offsets(o, desc, ndim, sbase, dbase)
        if blocks:
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
            if blocks:
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
# offsets come from _outer once per run, not per element as in the general kernels.
# float64 has no separate central truncated normal (_pair64 computes it as TRUNCNORM).
_DIST_NAMES = {UNIFORM: "uniform", NORMAL: "normal", TRUNCNORM: "truncnorm", TRUNCNORM_TAIL: "tail",
               TRUNCNORM_CENTRAL: "central"}  # fmt: skip
_KIND_SUFFIX = {STORE_SAME: "", STORE_BF16: "_bf16", STORE_F16: "_f16"}


def _dense32_kernel(dist, kind):
    def fill32_dense(out, desc, ndim, n_outer, sbase, dbase, n, p, key):
        # runs along the grid's y dimension, each run's Philox blocks along x (see _dense32)
        for o in range(cuda.blockIdx.y, n_outer, cuda.gridDim.y):
            s, d = _outer_offsets(o, desc, ndim, sbase, dbase)
            _dense32_dev(out, kind, d, s, n, dist, p, key)

    return fill32_dense


def _dense64_kernel(dist):
    def fill64_dense(out, desc, ndim, n_outer, sbase, dbase, n, p, key):
        for o in range(cuda.blockIdx.y, n_outer, cuda.gridDim.y):
            s, d = _outer_offsets(o, desc, ndim, sbase, dbase)
            _dense64_dev(out, d, s, n, dist, p, key)

    return fill64_dense


def _dense_name(wide: bool, dist: int, kind: int = STORE_SAME) -> str:
    if wide:
        return f"fill64_dense_{_DIST_NAMES[TRUNCNORM if dist == TRUNCNORM_CENTRAL else dist]}"
    return f"fill32_dense_{_DIST_NAMES[dist]}{_KIND_SUFFIX[kind]}"


def _scatter(out, kind, src, desc, ndim, n_outer, sbase, dbase, n, sstep, dstep):
    """out[destination] = src[source] along a plan (src: a dense array of the values), stored as
    is or rounded to bfloat16 / float16 bits. For values computed outside the samplers."""
    for item in range(cuda.grid(1), n_outer * n, cuda.gridsize(1)):
        o = item // n
        r = item - o * n
        s, d = _outer_offsets(o, desc, ndim, sbase, dbase)
        _store_dev(out, kind, d + r * dstep, src[uint64(s + r * sstep)])


_outer_offsets = _whole_tiles_dev = None  # the device functions made from _outer, _whole_tiles
_tile_values32_dev = _tile_values64_dev = None  # ... and from _tile_values32 / _tile_values64
_store_dev = None  # ... and from _store
_block_words_dev = _philox_dev = None  # ... from _block_words and rng/philox.py's uint32 rounds
_libdevice = None  # numba.cuda.libdevice (not in the simulator)
_dense32_dev = _dense64_dev = None  # ... and from _dense32 / _dense64
_KERNELS: dict = {}


def load(context: str = "device='cuda'"):
    """Import numba.cuda and compile-on-demand wrappers of the kernels (once); returns
    numba.cuda. Raises ValueError when numba-cuda or a GPU is missing (cuda_runtime.cuda_runtime),
    starting with ``context``."""
    if _KERNELS:
        return cuda
    _bind(cuda_runtime(context=context))
    # No LTO: NVVM writes the PTX the driver assembles (the PTX the tests inspect), and there
    # is nothing to link. cache=True: compiled kernels are kept on disk, as the CPU's.
    options = dict(cache=True) if is_simulator() else dict(cache=True, lto=False)
    _KERNELS.update(
        fill32=cuda.jit(**options)(_fill32),
        fill64=cuda.jit(**options)(_fill64),
        **{name: cuda.jit(**options)(kernel) for name, kernel in PY_KERNELS.items() if "_dense_" in name},
        scatter=cuda.jit(**options)(_scatter),
    )
    return cuda


def _bind(module) -> None:
    """Point the kernels' globals at ``module`` (numba.cuda): also used to compile them to
    PTX on a machine without a GPU (tests/test_cuda_ptx.py)."""
    global cuda, _libdevice, _philox_dev, _block_words_dev, _outer_offsets, _whole_tiles_dev, _store_dev
    global _tile_values32_dev, _tile_values64_dev, _dense32_dev, _dense64_dev
    cuda = module
    if is_simulator():
        # the simulator runs device functions as Python: the rounds run compiled for the CPU,
        # with the portable uint64 product (the same rounds, much faster than Python)
        _philox_dev = numba.njit(cache=False)(philox4x32_rounds_u32(mul_hi_lo_u64))
    else:
        from numba.cuda import libdevice

        _libdevice = libdevice
        _philox_dev = module.jit(device=True)(
            philox4x32_rounds_u32(module.jit(device=True)(_mul_hi_lo_umulhi))
        )
    _block_words_dev = module.jit(device=True)(_block_words)
    _outer_offsets = module.jit(device=True)(_outer)
    _whole_tiles_dev = module.jit(device=True)(_whole_tiles)
    _tile_values32_dev = module.jit(device=True)(_tile_values32)
    _tile_values64_dev = module.jit(device=True)(_tile_values64)
    _store_dev = module.jit(device=True)(_store)
    _dense32_dev = module.jit(device=True)(_dense32)
    _dense64_dev = module.jit(device=True)(_dense64)


def signatures() -> dict:
    """The argument types each kernel is launched with, by kernel: what a GPU compiles (and
    what tests/test_cuda_ptx.py compiles to PTX; tests/cuda_sim checks the list is complete).

    >>> from fastinit.backends import cuda
    >>> {name: len(sigs) for name, sigs in cuda.signatures().items() if "dense" not in name}
    {'fill32': 2, 'fill64': 1, 'scatter': 4}
    >>> sorted(name for name in cuda.signatures() if "dense" in name)[:3]
    ['fill32_dense_central', 'fill32_dense_central_bf16', 'fill32_dense_central_f16']
    """
    from numba import types

    i64 = types.int64
    plan = (types.int64[::1], i64, i64, i64, i64, i64, i64, i64)  # desc .. dstep
    runs = plan[:-2]  # desc .. n: the dense kernels' runs have unit steps
    p, key = types.UniTuple(types.float64, 8), types.UniTuple(types.uint64, 4)
    return {
        "fill32": [(out, i64, *plan, i64, p, key) for out in (types.float32[::1], types.uint16[::1])],
        "fill64": [(types.float64[::1], *plan, i64, p, key)],
        **{
            name: [
                (types.uint16[::1] if name.endswith(("_bf16", "_f16")) else types.float32[::1], *runs, p, key)
            ]
            for name in PY_KERNELS
            if name.startswith("fill32_dense_")
        },
        **{
            name: [(types.float64[::1], *runs, p, key)]
            for name in PY_KERNELS
            if name.startswith("fill64_dense_")
        },
        "scatter": [
            (out, i64, src, *plan)
            for out, src in (
                (types.float32[::1], types.float32[::1]),
                (types.float64[::1], types.float64[::1]),
                (types.uint16[::1], types.uint16[::1]),
                (types.uint16[::1], types.float32[::1]),
            )
        ],
    }


PY_KERNELS = {
    "fill32": _fill32,
    "fill64": _fill64,
    **{
        _dense_name(False, dist, kind): _dense32_kernel(dist, kind)
        for dist in _DIST_NAMES
        for kind in _KIND_SUFFIX
    },
    **{_dense_name(True, dist): _dense64_kernel(dist) for dist in _DIST_NAMES if dist != TRUNCNORM_CENTRAL},
    "scatter": _scatter,
}


def kernels() -> dict:
    """The kernels (fill32, fill64, their dense forms, scatter), for tests and benchmarks."""
    load()
    return dict(_KERNELS)


# ---- launching ----------------------------------------------------------------------------------


_SM_COUNT: dict[int, int] = {}
_DESCS: dict[tuple, tuple] = {}  # _desc's cache: (index, layout) -> (context, device array)
_FIXED_GEOMETRY: list = []  # set by fixed_geometry()
_GENERAL_ONLY: list = []  # set by general_kernels_only()


@contextlib.contextmanager
def fixed_geometry(blocks: int, threads: int):
    """Launch every kernel of this backend with ``blocks`` blocks of ``threads`` threads (the
    dense kernels' 2-D grids: ``blocks`` along x and up to ``blocks`` along y, one per run).

    For tests and benchmarks: the values never depend on the launch geometry (each work item
    is one Philox block, taken in a grid-stride loop), which tests/cuda_sim checks with it::

        with fastinit.backends.cuda.fixed_geometry(1, 32):
            x = fastinit.normal(1000, device="cuda")   # the same bytes as any other geometry

    On a GPU, ``threads`` times the kernels' registers per thread (about 100-124 on sm_90) must
    fit a block's 64K registers: 1024 threads do not (the launch fails with
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES); 512 is the most for fill32 there.
    """
    for argname, value in (("blocks", blocks), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{argname}={value!r} must be an int >= 1")
    _FIXED_GEOMETRY.append((blocks, threads))
    try:
        yield
    finally:
        _FIXED_GEOMETRY.pop()


@contextlib.contextmanager
def general_kernels_only():
    """Fill contiguous runs with the general kernels (fill32 / fill64) too, not the dense ones:
    for tests (both give the same bytes) and benchmarks (how much the dense ones gain)::

        with fastinit.backends.cuda.general_kernels_only():
            x = fastinit.normal(1000, device="cuda")   # the same bytes, the slower kernel
    """
    _GENERAL_ONLY.append(True)
    try:
        yield
    finally:
        _GENERAL_ONLY.pop()


def _max_blocks(index: int) -> int:
    count = _SM_COUNT.get(index)
    if count is None:
        device = cuda.get_current_device()
        count = _SM_COUNT[index] = int(getattr(device, "MULTIPROCESSOR_COUNT", 1))
    return count * BLOCKS_PER_SM


def _geometry(index: int, work: int, geometry):
    if geometry is not None:
        return geometry
    if _FIXED_GEOMETRY:
        return _FIXED_GEOMETRY[-1]
    blocks = max(1, min(-(-work // BLOCK_SIZE), _max_blocks(index)))
    return blocks, BLOCK_SIZE


_MAX_GRID_Y = 65535  # CUDA's limit on gridDim.y (x goes to 2**31 - 1)


def _runs_geometry(index: int, per_run: int, n_outer: int, geometry):
    """((blocks along x, blocks along y), threads) for the dense kernels: x covers one run's
    ``per_run`` work items, y the runs. A fixed geometry (blocks, threads) gives blocks along
    both (y at most n_outer)."""
    if geometry is None and _FIXED_GEOMETRY:
        geometry = _FIXED_GEOMETRY[-1]
    if geometry is not None:
        blocks, threads = geometry
        return (blocks, max(1, min(n_outer, blocks, _MAX_GRID_Y))), threads
    cap = _max_blocks(index)
    x = max(1, min(-(-per_run // BLOCK_SIZE), cap))
    return (x, max(1, min(n_outer, cap // x, _MAX_GRID_Y))), BLOCK_SIZE


_LOW_OCCUPANCY = r"Grid size \d+ will likely result in GPU under-utilization"


def _launch(kernel, grid, stream, *args) -> None:
    """``kernel[grid, stream](*args)`` without numba-cuda's "Grid size N will likely result in
    GPU under-utilization" warning: a small tensor needs few blocks (the grid is sized to the
    work, and the values never depend on it), and a user initializing a model's biases and
    norms would otherwise see one warning per tensor."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_LOW_OCCUPANCY)
        kernel[grid[0], grid[1], stream](*args)


def _desc(index: int, values: tuple, stream):
    """The device copy of a plan's (outer shape, source strides, destination strides), cached
    per GPU context: a model's tensors share a few layouts, and an upload per call would cost a
    copy. On a miss the copy runs on ``stream`` and is waited for: a copy from pageable host
    memory may return before the data reaches the GPU, and later kernels on other streams read
    the cached copy. Entries of a destroyed context (``numba.cuda.close()``) are not reused."""
    context = None if is_simulator() else cuda.current_context()  # (the simulator's are not kept)
    key = (index, values)
    entry = _DESCS.get(key)
    if entry is None or entry[0] is not context:
        if len(_DESCS) >= 1024:
            _DESCS.clear()
        desc = cuda.to_device(np.array(values or (0,), dtype=np.int64), stream=stream)
        stream.synchronize()
        entry = _DESCS[key] = (context, desc)
    return entry[1]


def _plan_args(plan: FillPlan, index: int, stream):
    """(desc, ndim, n_outer, sbase, dbase, n, sstep, dstep) of a plan, and n_outer. A plan of
    one run (outer dimensions of size 1, whatever their strides) passes no outer dimension."""
    n_outer = math.prod(plan.outer)
    outer = (plan.outer, plan.src_strides, plan.dst_strides) if n_outer != 1 else ((), (), ())
    desc = _desc(index, outer[0] + outer[1] + outer[2], stream)
    scalars = (plan.src_base, plan.dst_base, plan.n, plan.src_step, plan.dst_step)
    return (desc, len(outer[0]), n_outer, *(int(v) for v in scalars)), n_outer


def fill(out, plan: FillPlan, dist: int, params, key, *, kind: int, index: int, stream=None,
         geometry=None) -> None:  # fmt: skip
    """Fill the flat device storage ``out`` (1-D: float32 or float64, or uint16 for kind
    STORE_BF16 / STORE_F16) following ``plan``, on ``stream`` (None: the default stream).

    ``geometry=(blocks, threads)`` overrides the launch configuration as ``fixed_geometry``
    does (the values never depend on it).
    """
    load()
    if plan.size == 0:
        return
    p = tuple(float(v) for v in np.asarray(params, dtype=np.float64))
    k = tuple(np.uint64(v) for v in np.asarray(key, dtype=np.uint64))
    wide = out.dtype == np.float64
    tile = _TILE64 if wide else _TILE32
    blocks = plan.src_step == 1 and plan.dst_step == 1
    per_run = _L * ((plan.n + 2 * tile - 2) // tile)  # work items of a run, wherever it starts
    with cuda.gpus[index]:
        stream = cuda.default_stream() if stream is None else stream
        args, n_outer = _plan_args(plan, index, stream)
        if blocks and (n_outer == 1 or per_run >= DENSE_MIN_ITEMS) and not _GENERAL_ONLY:
            # contiguous runs: the lean kernels
            grid = _runs_geometry(index, per_run, n_outer, geometry)
            kernel = _KERNELS[_dense_name(wide, int(dist), int(kind))]
            _launch(kernel, grid, stream, out, *args[:-2], p, k)
            return
        work = n_outer * (per_run if blocks else plan.n)
        grid = _geometry(index, work, geometry)
        if wide:
            _launch(_KERNELS["fill64"], grid, stream, out, *args, int(dist), p, k)
        else:
            _launch(_KERNELS["fill32"], grid, stream, out, int(kind), *args, int(dist), p, k)


def scatter(out, src, plan: FillPlan, *, kind: int, index: int, stream=None, geometry=None) -> None:
    """``out[destinations] = src[sources]`` along ``plan`` (src: flat dense device values)."""
    load()
    if plan.size == 0:
        return
    with cuda.gpus[index]:
        stream = cuda.default_stream() if stream is None else stream
        args, n_outer = _plan_args(plan, index, stream)
        grid = _geometry(index, n_outer * plan.n, geometry)
        _launch(_KERNELS["scatter"], grid, stream, out, int(kind), src, *args)


def _kind(dtype: DType) -> int:
    return {"bfloat16": STORE_BF16, "float16": STORE_F16}.get(dtype.name, STORE_SAME)


def _kernel_storage(storage, dtype: DType):
    """The 1-D view a kernel writes: 16-bit outputs as uint16 bits, others as they are."""
    flat = storage.reshape(storage.size) if storage.ndim != 1 else storage
    return flat.view(np.uint16) if dtype.bits == 16 else flat


def _record(array: FastArray, stream) -> None:
    event = new_event(cuda)
    event.record(stream)
    array.record_write(stream, event)


def fill_array(array: FastArray, plan: FillPlan, dist: int, params, key, *, geometry=None) -> None:
    """Fill a new CUDA FastArray (dense, C order) following ``plan``."""
    load()
    index = int(array.device[5:])
    with cuda.gpus[index]:
        stream = cuda.default_stream()
        if array.size:
            storage = _kernel_storage(array.storage, array.dtype)
            fill(storage, plan, dist, params, key, kind=_kind(array.dtype), index=index, stream=stream,
                 geometry=geometry)  # fmt: skip
        _record(array, stream)


# ---- writing into out= ------------------------------------------------------------------------


def device_out(out):
    """Whether ``out`` is CUDA memory fastinit should write with this backend, by its type
    alone (no numba import): torch CUDA tensors, CUDA DLPack producers (kDLCUDA and managed
    memory), ``__cuda_array_interface__`` objects and Numba device arrays (also simulated)."""
    from .. import dlpack

    return dlpack.device_of(out) is not None


class _OutView:
    """``out`` as (flat 1-D Numba device array of its storage, offset of element [0, ..., 0] in
    it, element strides), with the device, the stream to launch on and whether to wait."""

    def __init__(self, flat, base, strides, shape, dtype, index, stream, wait, keep):
        self.flat, self.base, self.strides, self.shape = flat, base, strides, shape
        self.dtype, self.index, self.stream, self.wait, self._keep = dtype, index, stream, wait, keep

    def finish(self) -> None:
        """After the launch: wait for it where the producer cannot be told about it; a
        FastArray ``out`` records it (its __dlpack__ / __cuda_array_interface__ export then
        orders consumers after this write, not only after its earlier ones)."""
        if self.wait:
            self.stream.synchronize()
        if isinstance(self._keep, FastArray):
            with cuda.gpus[self.index]:
                _record(self._keep, self.stream)


def _span(shape, strides):
    """(low, high) element offsets of a layout relative to element [0, ..., 0]."""
    if math.prod(shape) == 0:
        return 0, -1
    low = sum((n - 1) * s for n, s in zip(shape, strides, strict=True) if s < 0)
    high = sum((n - 1) * s for n, s in zip(shape, strides, strict=True) if s > 0)
    return low, high


@contextlib.contextmanager
def writable_out(out, *, argname: str = "out", device: str | None = None):
    """A context manager giving an ``_OutView`` of the CUDA output ``out``.

    ``device``: the device the caller asked for ("cuda" / "cuda:N"), checked against out's.
    """
    from .. import dlpack

    load(f"{argname} is CUDA memory")
    if isinstance(out, FastArray):
        yield _fastarray_view(out, device, argname)
        return
    if _is_simulated_array(out):
        yield _simulated_view(out, argname, device)
        return
    with dlpack.device_view(out, argname=argname) as view:
        index = view.device_id
        if index is None:
            index = _pointer_device(view.pointer)
        _check_same_device(index, device, argname)
        with cuda.gpus[index]:
            if view.stream is None:
                stream, wait = cuda.legacy_default_stream(), view.wait
            else:
                stream, wait = cuda.external_stream(view.stream), False
            low, high = _span(view.shape, view.strides)
            storage = np.dtype(np.uint16) if view.dtype.bits == 16 else view.dtype.storage
            size = max(high - low + 1, 0)
            flat = _device_array_at(view.pointer + low * view.dtype.itemsize, size, storage, view)
            yield _OutView(flat, -low, view.strides, view.shape, view.dtype, index, stream, wait, view)


def _device_array_at(pointer: int, size: int, storage, owner):
    """A flat Numba device array of ``size`` elements of ``storage`` at device address
    ``pointer``, kept alive with ``owner``; no copy, no synchronization.

    Under numba's CUDA simulator "device memory" is host memory, and the simulator has no
    ``from_cuda_array_interface``: the array is then a simulated device array over the same
    host bytes, so the out= paths of DLPack and __cuda_array_interface__ producers run there
    too (tests/cuda_sim).
    """
    if is_simulator():
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        class _Memory:
            def __init__(self):
                self.owner = owner
                self.__array_interface__ = {
                    "shape": (size,),
                    "typestr": storage.str,
                    "data": (pointer if size else 0, False),
                    "version": 3,
                }

        return FakeCUDAArray(np.asarray(_Memory()) if size else np.empty(0, storage))
    return cuda.from_cuda_array_interface(
        {"shape": (size,), "strides": None, "typestr": storage.str, "data": (pointer if size else 0, False),
         "version": 3, "stream": None},
        owner=owner,
        sync=False,
    )  # fmt: skip


def _check_same_device(index: int, device: str | None, argname: str) -> None:
    if device is not None and device != "cuda" and int(device[5:]) != index:
        raise ValueError(f"{argname} is on cuda:{index} but device={device!r} was asked for")


def _fastarray_view(out: FastArray, device, argname) -> _OutView:
    if out.device == "cpu":
        raise ValueError(f"{argname} is a CPU FastArray but device={device!r} was asked for")
    index = int(out.device[5:])
    _check_same_device(index, device, argname)
    with cuda.gpus[index]:
        stream = out.write_stream if out.write_stream is not None else cuda.default_stream()
    flat = _kernel_storage(out.storage, out.dtype)
    strides = tuple(int(s) for s in _c_strides(out.shape))
    return _OutView(flat, 0, strides, tuple(out.shape), out.dtype, index, stream, False, out)


def _c_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _dense(shape, strides) -> bool:
    """Whether a layout is dense C order. The stride of a dimension of size 1 is free: torch
    calls such tensors contiguous whatever it is (e.g. the (n, 1) Q of torch.linalg.qr has
    strides (1, n)), and ``.contiguous()`` leaves them as they are."""
    return all(s == c for n, s, c in zip(shape, strides, _c_strides(shape), strict=True) if n != 1)


def _is_simulated_array(obj) -> bool:
    return is_simulator() and type(obj).__name__ == "FakeCUDAArray"


def _simulated_view(out, argname, device) -> _OutView:
    """A simulated device array (a NumPy array inside): its memory as a flat array, as for
    real device memory."""
    from .. import dlpack

    _check_same_device(0, device, argname)
    host = dlpack.writable_view(out._ary, argname=argname)
    array, strides = host.array, host.strides
    low, high = _span(array.shape, strides)
    storage = array.view(np.uint16) if host.dtype.bits == 16 else array
    if high >= low:
        corner = (
            storage.reshape(-1)[:1]
            if array.ndim == 0
            else storage[
                tuple(
                    slice(n - 1, n) if st < 0 else slice(0, 1)
                    for n, st in zip(array.shape, strides, strict=True)
                )
            ]
        )
        flat = np.lib.stride_tricks.as_strided(corner, shape=(high - low + 1,), strides=(storage.itemsize,))
    else:
        flat = np.empty(0, storage.dtype)
    return _OutView(type(out)(flat), -low, strides, tuple(array.shape), host.dtype, 0, cuda.default_stream(),
                    False, out)  # fmt: skip


def out_dtype(out) -> DType:
    """The fastinit dtype of a CUDA ``out`` (see ``device_out``)."""
    from .. import dlpack

    if isinstance(out, FastArray):
        return out.dtype
    if type(out).__name__ == "FakeCUDAArray":  # simulated
        return dlpack.writable_view(out._ary).dtype
    with dlpack.device_view(out, argname="out") as view:
        return view.dtype


def _pointer_device(pointer: int) -> int:
    """The device ordinal owning a device pointer (CUDA driver: CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL);
    the current device when it cannot be told (a NULL pointer: nothing is written)."""
    if pointer and not is_simulator():  # (the simulator has one device and no driver)
        try:
            from cuda.bindings import driver as cudrv

            attribute = cudrv.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL
            error, ordinal = cudrv.cuPointerGetAttribute(attribute, pointer)
            if error == cudrv.CUresult.CUDA_SUCCESS:
                return int(ordinal)
        except (ImportError, AttributeError, TypeError):  # pragma: no cover - other bindings
            pass
    return int(getattr(cuda.get_current_device(), "id", 0))


def fill_out(view: _OutView, plan: FillPlan, dist: int, params, key) -> None:
    fill(view.flat, plan, dist, params, key, kind=_kind(view.dtype), index=view.index, stream=view.stream)
    view.finish()


# ---- delivering values computed elsewhere -------------------------------------------------------


def _values_on_device(values, dtype: DType, stream):
    """(flat dense device array, kind, producer stream or None) of ``values``: a NumPy array
    (rounded on the host by the CPU's converter, then copied) or a dense float32 / float64 device
    array (torch / CuPy / Numba, rounded on the device by the kernel)."""
    from .. import dlpack

    if isinstance(values, np.ndarray):
        host = cpu.round_to_storage(values, dtype.storage)
        host = np.ascontiguousarray(host.view(np.uint16) if dtype.bits == 16 else host).reshape(-1)
        return cuda.to_device(host, stream=stream), STORE_SAME, None
    if _is_simulated_array(values):  # a simulated device array holds its values in a NumPy array
        host = values._ary
        if host.dtype not in (np.float32, np.float64) or not host.flags.c_contiguous:
            raise AssertionError(f"device values must be dense float32 / float64, got {host.dtype}")
        kind = _kind(dtype) if dtype.bits == 16 else STORE_SAME
        return type(values)(host.reshape(-1)), kind, None
    with dlpack.device_view(values, argname="values", writable=False) as view:
        size = math.prod(view.shape)
        if not _dense(view.shape, view.strides) or view.dtype.name not in ("float32", "float64"):
            raise AssertionError(f"device values must be dense float32 / float64, got {view!r}")
        if view.dtype.name == "float64" and dtype.compute != 64:
            raise AssertionError("float64 device values delivered for a dtype computed in float32")
        array = _device_array_at(view.pointer, size, view.dtype.storage, values)
        producer = cuda.legacy_default_stream() if view.stream is None else cuda.external_stream(view.stream)
        return array, _kind(dtype) if dtype.bits == 16 else STORE_SAME, producer


def deliver(values, plan: FillPlan, *, array: FastArray | None = None, view: _OutView | None = None):
    """Write ``values`` (the result's values, dense, in C order: NumPy or device) to a new CUDA
    FastArray or an ``out=`` view, following ``plan`` (its sources index into values).

    Device values are read on the stream that made them (a new array is written there too);
    the streams are chained with events both ways, so neither side can reuse the memory early.
    """
    load()
    if array is not None:
        index, dtype = int(array.device[5:]), array.dtype
        out = _kernel_storage(array.storage, dtype) if array.size else None
    else:
        index, dtype, out = view.index, view.dtype, view.flat
    with cuda.gpus[index]:
        stream = cuda.default_stream() if array is not None else view.stream
        if plan.size:
            src, kind, producer = _values_on_device(values, dtype, stream)
            if producer is not None and array is not None:
                stream = producer
            elif producer is not None:
                _chain(producer, stream)
            scatter(out, src, plan, kind=kind, index=index, stream=stream)
            if producer is not None and producer is not stream:
                _chain(stream, producer)
        if array is not None:
            _record(array, stream)
        else:
            view.finish()


def _chain(first, then) -> None:
    """Make stream ``then`` wait for the work queued on stream ``first`` so far."""
    event = new_event(cuda)
    event.record(first)
    event.wait(then)


def out_index(out) -> int:
    """The GPU ordinal of a CUDA ``out``."""
    with writable_out(out) as view:
        return view.index
