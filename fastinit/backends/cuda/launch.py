"""Launching the CUDA kernels: launch geometry, the plan's upload to the device, and the
entry points ``fill`` (sample along a FillPlan) and ``scatter`` (store given values along one).

A plan of contiguous runs (both steps 1: whole tensors, row ranges, contiguous ``out=``; column
shards and padded rows, one run per row, if the runs are not short) goes to the dense kernels,
one work item per Philox block of each run; any other plan (``index=`` with steps, transposed
or strided ``out=``) to the general ones, one work item per element. Every kernel takes its
work items in a grid-stride loop, so the values never depend on the geometry.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from ...cuda_runtime import is_simulator
from ...dtypes import DType
from ...rng.layout import TILE_LANES
from ..plan import FillPlan
from . import device_code
from .compiler import KERNELS, load
from .device_code import STORE_BF16, STORE_F16, STORE_SAME, dense_name

__all__ = [
    "BLOCK_SIZE",
    "BLOCKS_PER_SM",
    "DENSE_MIN_ITEMS",
    "fill",
    "scatter",
    "fixed_geometry",
    "general_kernels_only",
    "store_kind",
    "kernel_storage",
]

_L = TILE_LANES
_TILE32 = 4 * TILE_LANES  # elements per tile of a 32-bit output (rng/layout.py)
_TILE64 = 2 * TILE_LANES  # ... of a 64-bit output

BLOCK_SIZE = 256  # threads per block
BLOCKS_PER_SM = 16  # grid size cap, per multiprocessor: a grid-stride loop does the rest
# Runs of fewer work items (Philox blocks) than this go to the general kernels when there are
# several: the dense kernels give each run whole thread blocks along x, mostly idle for short
# runs, where the general kernels spread every run's items over all threads.
DENSE_MIN_ITEMS = BLOCK_SIZE // 2

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
        device = device_code.cuda.get_current_device()
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
    context = None if is_simulator() else device_code.cuda.current_context()  # (the simulator's are not kept)
    key = (index, values)
    entry = _DESCS.get(key)
    if entry is None or entry[0] is not context:
        if len(_DESCS) >= 1024:
            _DESCS.clear()
        desc = device_code.cuda.to_device(np.array(values or (0,), dtype=np.int64), stream=stream)
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
    cuda = load()
    if plan.size == 0:
        return
    p = tuple(float(v) for v in np.asarray(params, dtype=np.float64))
    k = tuple(np.uint64(v) for v in np.asarray(key, dtype=np.uint64))
    wide = out.dtype == np.float64
    tile = _TILE64 if wide else _TILE32
    unit_steps = plan.src_step == 1 and plan.dst_step == 1
    per_run = _L * ((plan.n + 2 * tile - 2) // tile)  # work items of a run, wherever it starts
    with cuda.gpus[index]:
        stream = cuda.default_stream() if stream is None else stream
        args, n_outer = _plan_args(plan, index, stream)
        if unit_steps and (n_outer == 1 or per_run >= DENSE_MIN_ITEMS) and not _GENERAL_ONLY:
            # contiguous runs: the lean kernels
            grid = _runs_geometry(index, per_run, n_outer, geometry)
            kernel = KERNELS[dense_name(wide, int(dist), int(kind))]
            _launch(kernel, grid, stream, out, *args[:-2], p, k)
            return
        work = n_outer * (per_run if unit_steps else plan.n)
        grid = _geometry(index, work, geometry)
        if wide:
            _launch(KERNELS["fill64"], grid, stream, out, *args, int(dist), p, k)
        else:
            _launch(KERNELS["fill32"], grid, stream, out, int(kind), *args, int(dist), p, k)


def scatter(out, src, plan: FillPlan, *, kind: int, index: int, stream=None, geometry=None) -> None:
    """``out[destinations] = src[sources]`` along ``plan`` (src: flat dense device values)."""
    cuda = load()
    if plan.size == 0:
        return
    with cuda.gpus[index]:
        stream = cuda.default_stream() if stream is None else stream
        args, n_outer = _plan_args(plan, index, stream)
        grid = _geometry(index, n_outer * plan.n, geometry)
        _launch(KERNELS["scatter"], grid, stream, out, int(kind), src, *args)


def store_kind(dtype: DType) -> int:
    """How a kernel stores values of ``dtype`` (STORE_SAME, STORE_BF16 or STORE_F16)."""
    return {"bfloat16": STORE_BF16, "float16": STORE_F16}.get(dtype.name, STORE_SAME)


def kernel_storage(storage, dtype: DType):
    """The 1-D view a kernel writes: 16-bit outputs as uint16 bits, others as they are."""
    flat = storage.reshape(storage.size) if storage.ndim != 1 else storage
    return flat.view(np.uint16) if dtype.bits == 16 else flat
