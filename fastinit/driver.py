"""The driver under every sampler and scheme: checks, index -> plan, and the backends' dispatch.

``sample`` fills a new array (or ``out``) with a distribution's values at the requested
indices; ``deliver`` writes values computed elsewhere (orthogonal, eye, ...), rounded once to
the dtype. Both check their arguments (errors name the bad argument), turn ``index`` and
``out`` into a ``FillPlan`` (which flat indices of the full tensor go where in memory) and hand
the work to the CPU or the CUDA backend. Not public API: users call the samplers
(``fastinit.samplers``) and the schemes, whose validation runs before this.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import dlpack
from ._memory import advise_huge_pages
from .array import MAX_ELEMENTS, FastArray, c_strides, check_shape
from .backends import cpu
from .backends.plan import FillPlan, flat_storage, offset_range
from .cuda_runtime import check_device, device_ordinal
from .dtypes import DType, resolve_dtype
from .rng.streams import derive_key

__all__ = [
    "MAX_ELEMENTS",  # (these two are array.py's: FastArray checks shapes too)
    "check_shape",
    "check_real",
    "target_device",
    "check_out",
    "output_dtype",
    "result_shape",
    "normalized_index",
    "index_coordinates",
    "sample",
    "deliver",
]


# ---- argument checks ---------------------------------------------------------------------


def check_real(value, argname: str, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argname} must be a real number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float64
        raise ValueError(f"{argname} is beyond the range of float64") from None
    if math.isnan(value):
        raise ValueError(f"{argname} is NaN")
    if not allow_inf and math.isinf(value):
        raise ValueError(f"{argname}={value} must be finite")
    return value


def target_device(device, out=None) -> str:
    """Where the work runs: 'cpu', 'cuda:N', or 'cuda' (the device of ``out``).

    With ``out=``, the values are written where ``out`` lives: a CUDA ``out`` (torch CUDA
    tensor, CuPy / Numba array, any kDLCUDA DLPack or __cuda_array_interface__ object) is
    written by the CUDA backend when ``device`` is left at its default or names out's GPU;
    a host ``out`` with ``device='cuda'`` is an error (never a silent change of device).
    """
    name = check_device(device)
    if out is None:
        return name
    if dlpack.device_of(out) is None:
        if name != "cpu":
            raise ValueError(
                f"out is host memory but device={device!r} was asked for; pass a CUDA tensor as "
                "out, or leave device at 'cpu'"
            )
        return "cpu"
    return "cuda" if name == "cpu" else name


def check_out(
    out_dtype: DType,
    out_shape,
    dtype,
    expected: tuple[int, ...],
    *,
    gpu: int | None = None,
    device: str = "cuda",
) -> None:
    """Refuse an ``out=`` that cannot take a result of shape ``expected``: on GPU ``gpu`` (None:
    host memory) when ``device`` names another one ('cuda' takes out's own), of another dtype
    than ``dtype`` (None: out's own), of another shape. Whether host memory may take a CUDA
    result is ``target_device``'s to say.

    >>> check_out(resolve_dtype("float32"), (2, 3), None, (2, 3))
    >>> check_out(resolve_dtype("float32"), (2, 3), "bfloat16", (2, 3))
    Traceback (most recent call last):
    TypeError: out has dtype float32 but dtype=bfloat16 was asked for
    """
    if gpu is not None and device != "cuda" and device_ordinal(device) != gpu:
        raise ValueError(f"out is on cuda:{gpu} but device={device!r} was asked for")
    if dtype is not None and resolve_dtype(dtype) != out_dtype:
        raise TypeError(f"out has dtype {out_dtype.name} but dtype={resolve_dtype(dtype).name} was asked for")
    if tuple(out_shape) != expected:
        raise ValueError(f"out has shape {tuple(out_shape)} but the result has shape {expected}")


def _cuda_backend():
    from .backends import cuda  # imported on demand: it is the only module that imports numba.cuda

    return cuda


# ---- index -> plan -------------------------------------------------------------------------


def _index_dims(index, shape):
    """Per dimension of the full tensor: (start, step, count, kept) for ``index``.

    index: None, an int, a slice, Ellipsis, or a tuple of those (like NumPy basic indexing).
    """
    if index is None:
        return [(0, 1, n, True) for n in shape]
    items = index if isinstance(index, tuple) else (index,)
    n_ellipsis = sum(item is Ellipsis for item in items)
    if n_ellipsis > 1:
        raise ValueError("index may contain at most one Ellipsis (...)")
    n_real = len(items) - n_ellipsis
    if n_real > len(shape):
        raise ValueError(f"index has {n_real} entries but the tensor has {len(shape)} dimensions")
    if n_ellipsis:
        at = next(i for i, item in enumerate(items) if item is Ellipsis)
        items = items[:at] + (slice(None),) * (len(shape) - n_real) + items[at + 1 :]
    items = items + (slice(None),) * (len(shape) - len(items))
    dims = []
    for axis, (item, n) in enumerate(zip(items, shape, strict=False)):
        if isinstance(item, slice):
            for part in ("start", "stop", "step"):
                v = getattr(item, part)
                if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
                    raise TypeError(f"index[{axis}] has a non-integer {part}: {v!r}")
            if item.step == 0:
                raise ValueError(f"index[{axis}] has step 0")
            start, stop, step = item.indices(n)
            count = len(range(start, stop, step))
            # a step that selects at most one element can be any int: make it 1 so that every
            # bound and stride derived from it fits an int64
            dims.append((start, step if count > 1 else 1, count, True))
        elif isinstance(item, numbers.Integral) and not isinstance(item, bool):
            i = operator.index(item)
            if not -n <= i < n:
                raise ValueError(f"index[{axis}]={i} is out of bounds for dimension {axis} of size {n}")
            dims.append((i % n, 1, 1, False))
        else:
            raise TypeError(f"index[{axis}] must be an int or a slice, got {type(item).__name__}")
    return dims


def _plan(shape, dims, dst_strides, dst_base) -> FillPlan:
    """Build the FillPlan, dropping size-1 dimensions and merging contiguous ones."""
    full = c_strides(shape)  # flat indices of the full tensor are its C order
    src_base = sum(start * s for (start, _, _, _), s in zip(dims, full, strict=False))
    kept = [(count, step * s) for (_, step, count, keep), s in zip(dims, full, strict=False) if keep]
    axes = [
        (count, sstride, dstride)
        for (count, sstride), dstride in zip(kept, dst_strides, strict=False)
        if count != 1
    ]
    merged = []
    for count, sstride, dstride in axes:
        if merged and merged[-1][1] == sstride * count and merged[-1][2] == dstride * count:
            prev = merged.pop()
            merged.append((prev[0] * count, sstride, dstride))
        else:
            merged.append((count, sstride, dstride))
    if not merged:
        merged = [(1 if all(c for _, _, c, _ in dims) else 0, 1, 1)]
    *outer, (n, src_step, dst_step) = merged
    return FillPlan(
        outer=tuple(c for c, _, _ in outer),
        src_strides=tuple(s for _, s, _ in outer),
        dst_strides=tuple(d for _, _, d in outer),
        src_base=src_base,
        dst_base=dst_base,
        n=n,
        src_step=src_step,
        dst_step=dst_step,
    )


def _check_within(plan: FillPlan, size: int) -> None:
    """Refuse a plan that would write outside ``flat[:size]`` (the kernels do not check)."""
    if plan.size == 0:
        return
    low, high = offset_range((*plan.outer, plan.n), (*plan.dst_strides, plan.dst_step))
    if plan.dst_base + low < 0 or plan.dst_base + high >= size:
        raise ValueError("out's memory does not span the elements its shape and strides name")


# ---- where the values go: the one branch on CPU / CUDA x new array / out= ----------------------


class _HostMemory:
    """Host memory receiving a result: a new FastArray's buffer or the view of an ``out``."""

    def __init__(self, array: np.ndarray, dtype: DType, *, is_out: bool):
        self.array, self.dtype = array, dtype
        self.flat, self.base, self.strides = flat_storage(array)
        if is_out:  # out may be fresh memory of another allocator (NumPy advises its own buffers)
            advise_huge_pages(self.flat.ctypes.data, self.flat.nbytes)

    def fill(self, plan: FillPlan, dist: int, params: np.ndarray, key: np.ndarray) -> None:
        _check_within(plan, self.flat.size)
        cpu.fill(self.flat, plan, dist, params, key)

    def store(self, values: np.ndarray, plan: FillPlan) -> None:
        # values are dense, in the result's shape: NumPy assigns through any strides
        self.array[...] = cpu.round_to_storage(values, self.dtype.storage).view(self.array.dtype)


class _DeviceMemory:
    """CUDA memory receiving a result: a new FastArray (dense, C order) or an ``out=`` view."""

    def __init__(self, backend, strides, base: int, *, array: FastArray | None = None, view=None):
        self.backend, self.strides, self.base = backend, tuple(strides), base
        self.array, self.view = array, view

    def fill(self, plan: FillPlan, dist: int, params: np.ndarray, key: np.ndarray) -> None:
        if self.array is not None:
            self.backend.fill_array(self.array, plan, dist, params, key)
        else:
            self.backend.fill_out(self.view, plan, dist, params, key)

    def store(self, values, plan: FillPlan) -> None:
        self.backend.deliver(values, plan, array=self.array, view=self.view)


@contextlib.contextmanager
def _destination(
    result_shape: tuple[int, ...], dtype, target: str, out
) -> Iterator[tuple[_HostMemory | _DeviceMemory, Any]]:
    """(memory, result): where a result of ``result_shape`` is written on ``target``, and what
    the caller returns once the block ends. A new array of ``dtype`` (float32 when None), or
    ``out``: checked against the shape and dtype, and marked written when the block succeeds."""
    if out is None:
        dt = resolve_dtype("float32" if dtype is None else dtype)
        if target == "cpu":
            result = FastArray.empty(result_shape, dt)
            yield _HostMemory(result.raw, dt, is_out=False), result
        else:
            backend = _cuda_backend()
            result = FastArray.empty(result_shape, dt, target)
            yield _DeviceMemory(backend, c_strides(result_shape), 0, array=result), result
        return
    if target == "cpu":
        with dlpack.writable_view(out, argname="out", dtype=dtype) as view:
            check_out(view.dtype, view.shape, dtype, result_shape)
            yield _HostMemory(view.array, view.dtype, is_out=True), out
    else:
        backend = _cuda_backend()
        with backend.writable_out(out, argname="out") as view:
            check_out(view.dtype, view.shape, dtype, result_shape, gpu=view.index, device=target)
            yield _DeviceMemory(backend, view.strides, view.base, view=view), out
    dlpack.mark_written(out)


# ---- the driver -----------------------------------------------------------------------------


def sample(
    shape,
    dist: int,
    params,
    *,
    seed=0,
    name=None,
    dtype=None,
    device="cpu",
    index=None,
    out=None,
    substream: int = 0,
):
    """Fill a new array (or ``out``) with the values of ``dist`` at the requested indices.

    The shared driver of every sampler and scheme; ``params`` is the distribution's parameter
    vector as ``fastinit.distributions`` documents it (with lo/hi already in output dtype).
    """
    shape = check_shape(shape)
    target = target_device(device, out)
    key = derive_key(seed, name, substream=substream).as_array()
    dims = _index_dims(index, shape)
    kept_shape = tuple(count for _, _, count, keep in dims if keep)
    params = np.asarray(params, dtype=np.float64)
    with _destination(kept_shape, dtype, target, out) as (memory, result):
        memory.fill(_plan(shape, dims, memory.strides, memory.base), dist, params, key)
    return result


def result_shape(shape, index=None) -> tuple[int, ...]:
    """The shape of ``full_tensor[index]`` (validates shape and index)."""
    shape = check_shape(shape)
    return tuple(count for _, _, count, keep in _index_dims(index, shape) if keep)


def normalized_index(shape, index=None) -> tuple:
    """``index`` as one int or slice per dimension, with explicit start and step, such that
    ``full[normalized_index(shape, index)]`` equals ``full[index]``."""
    shape = check_shape(shape)
    items = []
    for start, step, count, keep in _index_dims(index, shape):
        if not keep:
            items.append(start)
            continue
        stop = start + step * count
        items.append(slice(start, None if stop < 0 else stop, step))
    return tuple(items)


def index_coordinates(shape, index=None) -> list[np.ndarray]:
    """For each dimension of the full tensor, the coordinates ``index`` selects (an int64
    array; dimensions the index drops give one coordinate)."""
    shape = check_shape(shape)
    return [
        np.arange(count, dtype=np.int64) * step + start for start, step, count, _ in _index_dims(index, shape)
    ]


def deliver(values: np.ndarray, shape, *, dtype=None, device="cpu", index=None, out=None):
    """Return host-computed values (already indexed: shape ``result_shape(shape, index)``,
    float32 or float64) as a new array or written into ``out``, rounded once to dtype.

    The counterpart of ``sample`` for schemes computed on the host (orthogonal, eye, dirac, ...).
    On CUDA, ``values`` may also be a dense device array (a torch / CuPy tensor on the target
    GPU, float32 or float64), rounded to dtype on the device.
    """
    target = target_device(device, out)
    expected = result_shape(shape, index)
    if tuple(values.shape) != expected:
        raise AssertionError(f"values of shape {values.shape} delivered for {expected}")
    dims = [(0, 1, n, True) for n in expected]
    with _destination(expected, dtype, target, out) as (memory, result):
        memory.store(values, _plan(expected, dims, memory.strides, memory.base))
    return result


def output_dtype(dtype, out) -> DType:
    """dtype if given, else out's dtype, else float32 (the clamp bounds depend on it)."""
    if dtype is not None:
        return resolve_dtype(dtype)
    if out is not None:
        declared = dlpack.declared_dtype(out)  # (the whole view is checked where it is written)
        if declared is not None:
            return declared
        if dlpack.device_of(out) is not None:
            return _cuda_backend().out_dtype(out)
        with dlpack.writable_view(out, argname="out") as view:
            return view.dtype
    return resolve_dtype("float32")
