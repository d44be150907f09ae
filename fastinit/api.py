"""The public samplers: uniform, normal, truncated_normal.

Each validates its arguments (errors name the bad argument), derives the stream from
(seed, name), turns ``index`` and ``out`` into a ``FillPlan`` (which flat indices go where) and
hands the work to a backend. Element i of the tensor depends only on (seed, name, i, the
distribution's parameters, dtype): see rng/layout.py and rng/streams.py.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence

import numpy as np

from . import dlpack
from ._memory import advise_huge_pages
from .array import FastArray
from .backends import cpu
from .backends.plan import FillPlan
from .cuda_runtime import cuda_device_index
from .distributions import N_PARAMS, NORMAL, TRUNCNORM, TRUNCNORM_CENTRAL, TRUNCNORM_TAIL, UNIFORM
from .distributions.normal import NORMAL_MAX_Z_F32, NORMAL_MAX_Z_F64
from .distributions.special import NDTRI_CENTRAL_MIN_P
from .dtypes import DType, largest_finite, resolve_dtype
from .rng.streams import derive_key
from .typing import ArrayOut, DeviceLike, DTypeLike, IndexLike, RealLike, SeedLike, ShapeLike

__all__ = [
    "uniform",
    "normal",
    "truncated_normal",
    "sample",
    "deliver",
    "result_shape",
    "normalized_index",
    "index_coordinates",
    "round_to_dtype",
    "output_dtype",
    "check_device",
    "target_device",
]

# The most elements a tensor may have: its flat indices are int64.
MAX_ELEMENTS = 2**63 - 1

# Below this mass the interval lies beyond ~11 sigma and its probabilities no longer fit a
# float32: the truncated normal switches to its log-space tail form (distributions/truncnormal).
_TAIL_MASS = 2.0**-90
# The truncated normal's inverse CDF is accurate to about eps (1 + |z|) in z (see _truncnorm_regime),
# and an interval it resolves to worse than _NARROW of its width is drawn another way where that
# is closer. The tail form works between _TAIL_Z and _FAR_Z std (see _truncnorm_regime).
_QUANTILE_EPS_F32 = 2.0**-21
_QUANTILE_EPS_F64 = 2.0**-50
_NARROW = 2.0**-12
_TAIL_Z = 8.0
_FAR_Z = 4096.0
# how far past the mean or the nearer bound (in std) the truncated normal's kernels can reach
_TRUNCNORM_REACH = 14.2


# ---- argument checks ---------------------------------------------------------------------


def check_shape(shape, argname: str = "shape") -> tuple[int, ...]:
    """An int or a sequence of ints >= 0 (tuple, list, range, torch.Size, 1-D integer array), as a tuple.

    Sets and dicts (no order), strings, floats and bools are refused, and so are shapes of more
    than ``MAX_ELEMENTS`` elements: flat indices are int64 in the kernels and in NumPy.
    """
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        dims = (shape,)
    elif isinstance(shape, np.ndarray) and shape.ndim == 1 and shape.dtype.kind in "iu":
        dims = shape.tolist()
    elif isinstance(shape, Sequence) and not isinstance(shape, (str, bytes, bytearray)):
        dims = shape
    else:
        kind = f"a {shape.ndim}-D {shape.dtype} array" if isinstance(shape, np.ndarray) else (
            type(shape).__name__)  # fmt: skip
        raise TypeError(f"{argname} must be an int or a tuple of ints (or a list), got {kind}")
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{argname}={shape!r} must contain only ints, got {type(d).__name__}")
        if d < 0:
            raise ValueError(f"{argname}={shape!r} has a negative dimension")
        out.append(int(d))
    # NumPy refuses these even with a 0 dimension: count the nonzero dimensions as it does
    count = math.prod(d for d in out if d)
    if count > MAX_ELEMENTS:
        where = "" if 0 not in out else " in its nonzero dimensions"
        raise ValueError(f"{argname}={tuple(out)} has {count} elements{where}, more than 2**63 - 1")
    return tuple(out)


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


def check_device(device) -> str:
    """'cpu', or 'cuda:N' for 'cuda' (the current device) / 'cuda:N' when that GPU exists and
    fastinit's CUDA backend can run (else a ValueError saying what is missing)."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda', got {type(device).__name__}")
    name = device.strip().lower()
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        return f"cuda:{cuda_device_index(name)}"
    raise ValueError(f"device={device!r} is not supported; use 'cpu' or 'cuda[:N]'")


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


def _check_out(view_dtype: DType, view_shape, dtype, expected) -> None:
    if dtype is not None and resolve_dtype(dtype) != view_dtype:
        raise TypeError(
            f"out has dtype {view_dtype.name} but dtype={resolve_dtype(dtype).name} was asked for"
        )
    if tuple(view_shape) != expected:
        raise ValueError(f"out has shape {tuple(view_shape)} but the result has shape {expected}")


def _c_strides(shape) -> tuple[int, ...]:
    """C-order strides in elements of a dense array of ``shape``."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


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
    c_strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        c_strides[d] = c_strides[d + 1] * shape[d + 1]
    src_base = sum(start * s for (start, _, _, _), s in zip(dims, c_strides, strict=False))
    kept = [(count, step * s) for (_, step, count, keep), s in zip(dims, c_strides, strict=False) if keep]
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


def _flat_storage(array: np.ndarray):
    """A 1-D array over the memory of ``array`` and the offset of array[0, ..., 0] in it."""
    array = np.ndarray.view(array, np.ndarray)  # a subclass's reshape may not flatten (np.matrix)
    itemsize = array.itemsize
    if array.size == 0:
        return array.reshape(-1), 0, (0,) * array.ndim
    if array.ndim == 0:  # array[()] would be a copy: view the one element as a 1-D array
        return array.reshape(1), 0, ()
    if array.flags.c_contiguous:
        return array.reshape(-1), 0, tuple(s // itemsize for s in array.strides)
    strides = [s // itemsize for s in array.strides]
    low = sum((n - 1) * s for n, s in zip(array.shape, strides, strict=False) if s < 0)
    high = sum((n - 1) * s for n, s in zip(array.shape, strides, strict=False) if s > 0)
    corner = array[
        tuple(slice(n - 1, n) if s < 0 else slice(0, 1) for n, s in zip(array.shape, strides, strict=False))
    ]
    flat = np.lib.stride_tricks.as_strided(corner, shape=(high - low + 1,), strides=(itemsize,))
    return flat, -low, tuple(strides)


def _check_within(plan: FillPlan, size: int) -> None:
    """Refuse a plan that would write outside ``flat[:size]`` (the kernels do not check)."""
    if plan.size == 0:
        return
    counts = (*plan.outer, plan.n)
    steps = (*plan.dst_strides, plan.dst_step)
    low = plan.dst_base + sum((c - 1) * s for c, s in zip(counts, steps, strict=True) if s < 0)
    high = plan.dst_base + sum((c - 1) * s for c, s in zip(counts, steps, strict=True) if s > 0)
    if low < 0 or high >= size:
        raise ValueError("out's memory does not span the elements its shape and strides name")


# ---- clamp intervals in the output dtype -------------------------------------------------------


def _bf16_neighbours(x: float):
    """The bfloat16 values just below and above (or equal to) x, as floats."""
    bits = int(np.float32(x).view(np.uint32))
    # truncating the low 16 bits moves toward zero; one more step of the high half moves away
    toward_zero = np.uint32(bits & 0xFFFF0000).view(np.float32)
    away = np.uint32((((bits >> 16) + 1) << 16) & 0xFFFFFFFF).view(np.float32)
    lo, hi = sorted((float(toward_zero), float(away)))
    return lo, hi


def _round_into(x: float, dtype: DType, up: bool) -> float:
    """The smallest value of dtype >= x (up) or the largest <= x (down), as a float.

    Beyond the dtype's finite range: the largest finite value when it qualifies, else +-inf.
    """
    if math.isinf(x) or dtype.name == "float64":
        return x
    biggest = largest_finite(dtype)
    if abs(x) > biggest:
        if x > 0:
            return math.inf if up else biggest
        return -biggest if up else -math.inf
    if dtype.name == "bfloat16":
        lo, hi = _bf16_neighbours(x)
        if lo == x or hi == x:
            return x
        return hi if up else lo
    t = dtype.storage.type
    y = t(x)
    if up and float(y) < x:
        y = np.nextafter(y, t(np.inf))
    elif not up and float(y) > x:
        y = np.nextafter(y, t(-np.inf))
    return float(y)


def _below(x: float, dtype: DType) -> float:
    """The largest value of dtype strictly below x."""
    y = _round_into(x, dtype, up=False)
    if y < x:
        return y
    if dtype.name == "bfloat16":
        return _bf16_neighbours(np.nextafter(np.float32(x), np.float32(-np.inf)))[0]
    t = dtype.storage.type
    return float(np.nextafter(t(y), t(-np.inf)))


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
    result_shape = tuple(count for _, _, count, keep in dims if keep)
    params = np.asarray(params, dtype=np.float64)
    if target != "cpu":
        backend = _cuda_backend()
        if out is None:
            result = FastArray.empty(
                result_shape, resolve_dtype("float32" if dtype is None else dtype), target
            )
            backend.fill_array(result, _plan(shape, dims, _c_strides(result_shape), 0), dist, params, key)
            return result
        with backend.writable_out(out, argname="out", device=target) as view:
            _check_out(view.dtype, view.shape, dtype, result_shape)
            backend.fill_out(view, _plan(shape, dims, view.strides, view.base), dist, params, key)
        dlpack.mark_written(out)
        return out
    if out is None:
        dt = resolve_dtype("float32" if dtype is None else dtype)
        result = FastArray.empty(result_shape, dt)
        storage = result.raw.reshape(-1)
        dst_strides = tuple(int(s) // dt.itemsize for s in result.raw.strides)
        cpu.fill(storage, _plan(shape, dims, dst_strides, 0), dist, params, key)
        return result
    with dlpack.writable_view(out, argname="out", dtype=dtype) as view:
        _check_out(view.dtype, view.shape, dtype, result_shape)
        flat, base, strides = _flat_storage(view.array)
        plan = _plan(shape, dims, strides, base)
        _check_within(plan, flat.size)
        advise_huge_pages(flat.ctypes.data, flat.nbytes)  # out may be fresh, untouched memory
        cpu.fill(flat, plan, dist, params, key)
    dlpack.mark_written(out)
    return out


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
    if target != "cpu":
        backend = _cuda_backend()
        dims = [(0, 1, n, True) for n in expected]
        if out is None:
            result = FastArray.empty(expected, resolve_dtype("float32" if dtype is None else dtype), target)
            backend.deliver(values, _plan(expected, dims, _c_strides(expected), 0), array=result)
            return result
        with backend.writable_out(out, argname="out", device=target) as view:
            _check_out(view.dtype, view.shape, dtype, expected)
            backend.deliver(values, _plan(expected, dims, view.strides, view.base), view=view)
        dlpack.mark_written(out)
        return out
    if out is None:
        dt = resolve_dtype("float32" if dtype is None else dtype)
        result = FastArray.empty(expected, dt)
        result.raw[...] = cpu.round_to_storage(values, dt.storage).view(result.raw.dtype)
        return result
    with dlpack.writable_view(out, argname="out", dtype=dtype) as view:
        _check_out(view.dtype, view.shape, dtype, expected)
        view.array[...] = cpu.round_to_storage(values, view.dtype.storage).view(view.array.dtype)
    dlpack.mark_written(out)
    return out


def round_to_dtype(value: float, dtype) -> float:
    """value rounded once, to nearest (ties to even), to a value of dtype; returned as a float.

    As IEEE rounding: beyond the largest finite value by half a step or more gives +-inf.

    >>> round_to_dtype(0.1, "bfloat16")
    0.10009765625
    """
    dt = resolve_dtype(dtype)
    if math.isnan(value) or math.isinf(value) or dt.name == "float64":
        return value
    biggest = largest_finite(dt)
    if abs(value) > biggest:
        # the halfway point above the largest value rounds to infinity (its significand is odd)
        halfway = biggest + (biggest - _below(biggest, dt)) / 2
        return math.copysign(math.inf if abs(value) >= halfway else biggest, value)
    lo, hi = _round_into(value, dt, up=False), _round_into(value, dt, up=True)
    if lo == hi:
        return lo
    if value - lo != hi - value:
        return lo if value - lo < hi - value else hi
    # a tie: the neighbour with an even last significand bit
    bits = np.array([lo, hi], np.float32 if dt.name != "float16" else np.float16).view(
        np.uint32 if dt.name != "float16" else np.uint16)  # fmt: skip
    last = (bits >> 16) & 1 if dt.name == "bfloat16" else bits & 1
    return lo if last[0] == 0 else hi


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


def _params(*values) -> np.ndarray:
    p = np.zeros(N_PARAMS)
    p[: len(values)] = values
    return p


# ---- public samplers ---------------------------------------------------------------------------


def _check_width(low: float, high: float, what: str, dt: DType) -> None:
    """ValueError unless high - low is finite in the precision dt's values are computed in (the
    uniform kernel draws low + u * (high - low))."""
    compute = np.float64 if dt.compute == 64 else np.float32
    with np.errstate(over="ignore"):
        width = compute(high) - compute(low)
    if not np.isfinite(width):
        raise ValueError(
            f"{what} = {high - low:g} overflows float{dt.compute}, in which {dt.name} values "
            "are computed; narrow the interval" + ("" if dt.compute == 64 else " or use dtype='float64'")
        )


def uniform(
    shape: ShapeLike,
    low: RealLike = 0.0,
    high: RealLike = 1.0,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Uniform on [low, high).

    Values are ``low + (high - low) * u`` with u = k / 2**24 (float32, k a 24-bit integer from
    one Philox word) or k / 2**53 (float64, two words), computed with one fused multiply-add
    and clamped so that every value, after rounding to ``dtype``, lies in [low, high).
    float16 / bfloat16 are computed in float32 and rounded to nearest-even once.

    Args:
        shape: int or tuple of ints (0-sized dimensions allowed).
        low, high: the interval; low <= high (low == high gives the constant low).
        seed: int in [0, 2**64). name: str or None. Together they pick the stream.
        dtype: "float32" (default, or out's dtype), "float64", "float16", "bfloat16".
        device: "cpu" (default), "cuda" (the current GPU) or "cuda:N": where the values are
            computed and stored (the same bytes on every device). With ``out=``, the work runs
            where ``out`` lives (see ``target_device``).
        index: a tuple of ints / slices (steps allowed) / Ellipsis: the result equals the full
            tensor indexed the same way, bit for bit, and only those elements are generated.
        out: fill this writable array in place and return it: NumPy arrays, torch tensors,
            any DLPack or buffer-protocol object on the CPU; torch CUDA tensors, CuPy / Numba
            arrays, any kDLCUDA DLPack or __cuda_array_interface__ object on a GPU.

    >>> import fastinit
    >>> x = fastinit.uniform((2, 3), -1.0, 1.0, seed=0, name="w")
    >>> x.shape, str(x.dtype)
    ((2, 3), 'fastinit.float32')
    >>> import numpy as np
    >>> bool(np.all((np.asarray(x) >= -1) & (np.asarray(x) < 1)))
    True
    """
    low = check_real(low, "low")
    high = check_real(high, "high")
    if low > high:
        raise ValueError(f"low={low} must be <= high={high}")
    dt = output_dtype(dtype, out)
    biggest = largest_finite(dt)
    for argname, value in (("low", low), ("high", high)):
        if abs(value) > biggest:
            raise ValueError(f"{argname}={value} is beyond the largest {dt.name} ({biggest:g})")
    _check_width(low, high, "high - low", dt)
    lo = _round_into(low, dt, up=True)
    hi = lo if low == high else _below(high, dt)
    if lo > hi:
        raise ValueError(f"no {dt.name} value lies in [low={low}, high={high})")
    return sample(
        shape,
        UNIFORM,
        _params(low, high - low, lo, hi),
        seed=seed,
        name=name,
        dtype=dt,
        device=device,
        index=index,
        out=out,
    )


def normal(
    shape: ShapeLike,
    mean: RealLike = 0.0,
    std: RealLike = 1.0,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Normal N(mean, std**2), by the Box-Muller transform.

    Each pair of Philox words gives two values: r = sqrt(-2 log u) with u in (0, 1], and an
    angle; |z| <= 6.66 in float32 (32-bit u) and <= 8.57 in float64 (53-bit u). log, sin and
    cos are fastinit's own polynomials (< 2 ulp), identical on every backend.
    Arguments as ``uniform``; std >= 0 (0 gives the constant mean). A mean and std with which
    mean +- 6.661 std (float64: 8.572 std, the largest |z| the kernels produce) leaves the
    dtype's range are refused: such values would be inf.

    >>> import fastinit, numpy as np
    >>> x = np.asarray(fastinit.normal(100_000, 0.0, 0.02, seed=1, name="w"))
    >>> round(float(x.std()), 3)
    0.02
    """
    mean = check_real(mean, "mean")
    std = check_real(std, "std")
    if std < 0:
        raise ValueError(f"std={std} must be >= 0")
    dt = output_dtype(dtype, out)
    if abs(mean) > largest_finite(dt):
        raise ValueError(f"mean={mean} is beyond the largest {dt.name} ({largest_finite(dt):g})")
    z_max = NORMAL_MAX_Z_F64 if dt.compute == 64 else NORMAL_MAX_Z_F32
    _check_reach(std, mean - z_max * std, mean + z_max * std, dt)
    return sample(
        shape,
        NORMAL,
        _params(mean, std, -math.inf, math.inf),
        seed=seed,
        name=name,
        dtype=dtype,
        device=device,
        index=index,
        out=out,
    )


def _check_reach(std: float, x_min: float, x_max: float, dt: DType) -> None:
    """Refuse std when a value the kernels can produce, in [x_min, x_max], lies beyond dt's
    finite range (it would become inf, or be clamped to the largest value: both wrong)."""
    biggest = largest_finite(dt)
    if max(abs(x_min), abs(x_max)) > biggest:
        reach = x_max if abs(x_max) >= abs(x_min) else x_min
        raise ValueError(
            f"std={std} gives values up to {reach:g}, beyond the largest {dt.name} ({biggest:g})"
        )


class _DefaultBound(float):
    """A default a/b, distinguishable from the same value passed explicitly."""


_DEFAULT_A = _DefaultBound(-2.0)
_DEFAULT_B = _DefaultBound(2.0)


def truncated_normal(
    shape: ShapeLike,
    mean: RealLike = 0.0,
    std: RealLike = 1.0,
    a: RealLike = _DEFAULT_A,
    b: RealLike = _DEFAULT_B,
    *,
    lower: RealLike | None = None,
    upper: RealLike | None = None,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Normal N(mean, std**2) truncated to [a, b], exact in the tails, by the inverse CDF.

    ``a`` and ``b`` are absolute values, as in ``torch.nn.init.trunc_normal_``. ``lower`` and
    ``upper`` give the bounds in units of std about the mean instead (JAX's convention:
    ``jax.nn.initializers.truncated_normal(stddev, lower, upper)``); pass either a/b or
    lower/upper. Bounds may be infinite (one-sided truncation) and far in a tail (a = 8 std
    and beyond). Every draw uses exactly one value of its counter: no rejection.

    Method (distributions/truncnormal.py): the interval is split at the point nearest the mean;
    each side is sampled by the inverse CDF from the tail probability nearer to it, so tiny std
    with absolute bounds (std=0.002, a=-2, b=2) gives exactly N(0, 0.002**2) and bounds far out
    keep full precision. Values are clamped into [a, b] after rounding to dtype.

    The limits are exact too. An interval too narrow for the inverse CDF to resolve (e.g.
    std=1e8 on [-1, 1], or [0, 1e-30]) is drawn as the uniform on [a, b] where the density is
    flat across it, and else, on one side of the mean, by the float64 tail form with the same
    bound and rate |bound - mean| / std**2. Beyond 4096 std the density is exponential with
    that rate and is drawn as such. std=0 gives the constant mean (clamped into [a, b]; with
    lower/upper, rounded to nearest), and so does a lower/upper interval that lies between two
    neighbouring values of dtype.
    Parameters that could give values beyond dtype's range are refused (ValueError naming the
    argument), as in ``normal``.

    >>> import fastinit, numpy as np
    >>> x = np.asarray(fastinit.truncated_normal(10_000, 0.0, 0.02, -0.04, 0.04, seed=0, name="w"))
    >>> bool(x.min() >= -0.04 and x.max() <= 0.04)
    True
    """
    mean = check_real(mean, "mean")
    std = check_real(std, "std")
    if std < 0:
        raise ValueError(f"std={std} must be >= 0")
    if lower is not None or upper is not None:
        if a is not _DEFAULT_A or b is not _DEFAULT_B:
            raise ValueError(
                "pass the bounds either as a/b (absolute) or as lower/upper (in units of std), not both"
            )
        alpha = check_real(-2.0 if lower is None else lower, "lower", allow_inf=True)
        beta = check_real(2.0 if upper is None else upper, "upper", allow_inf=True)
        if not alpha < beta:
            raise ValueError(f"lower must be < upper, got {alpha} and {beta}")
        a, b = (mean + alpha * std, mean + beta * std) if std > 0 else (mean, mean)
        width = beta - alpha
    else:
        a = check_real(a, "a", allow_inf=True)
        b = check_real(b, "b", allow_inf=True)
        if not a < b:
            raise ValueError(f"a must be < b, got {a} and {b}")
        alpha, beta = (_standardize(a, mean, std), _standardize(b, mean, std)) if std > 0 else (0.0, 0.0)
        # from the bounds themselves: beta - alpha loses a narrow interval far from the mean
        width = _standardize(b, a, std) if std > 0 else 0.0
    dt = output_dtype(dtype, out)
    common = dict(seed=seed, name=name, dtype=dt, device=device, index=index, out=out)
    if std == 0.0 and (lower is not None or upper is not None):
        # every value is mean + z * 0 = mean, whatever the bounds in units of std
        if abs(mean) > largest_finite(dt):
            raise ValueError(f"mean={mean} is beyond the largest {dt.name} ({largest_finite(dt):g})")
        return sample(shape, UNIFORM, _params(mean, 0.0, mean, mean), **common)
    lo, hi = _round_into(a, dt, up=True), _round_into(b, dt, up=False)
    if lo > hi and (lower is not None or upper is not None) and math.isfinite(a + b):
        # std is far below ulp(mean): [a, b] lies between two neighbours in dt and every value
        # rounds to the nearest one (the user gave no absolute bounds to refuse)
        value = round_to_dtype(a / 2 + b / 2, dt)
        if math.isinf(value):
            raise ValueError(f"mean={mean} is beyond the largest {dt.name} ({largest_finite(dt):g})")
        return sample(shape, UNIFORM, _params(value, 0.0, value, value), **common)
    if lo > hi:
        raise ValueError(f"no {dt.name} value lies in [a={a}, b={b}]")
    if std == 0.0:
        value = min(max(mean, lo), hi)
        return sample(shape, UNIFORM, _params(value, 0.0, value, value), **common)
    # the farthest values the kernels reach on each side: a bound, or 14.2 std past the mean or
    # the nearer bound (the smallest probability they form, 2**-143, has |z| < 14.1)
    z_min = max(alpha, min(beta, 0.0) - _TRUNCNORM_REACH)
    z_max = min(beta, max(alpha, 0.0) + _TRUNCNORM_REACH)
    x_min = a if z_min == alpha else mean + z_min * std
    x_max = b if z_max == beta else mean + z_max * std
    _check_reach(std, x_min, x_max, dt)
    from scipy import special  # imported here: it costs ~0.3 s, and only this sampler needs it

    split = min(max(0.0, alpha), beta)
    p_left = float(special.ndtr(alpha))
    q_right = float(special.ndtr(-beta))
    mass_left = float(special.ndtr(split) - special.ndtr(alpha))
    mass_right = float(special.ndtr(-split) - special.ndtr(-beta))
    total = mass_left + mass_right
    sign = 1.0 if alpha >= 0 else -1.0
    near, far = (alpha, beta) if sign > 0 else (-beta, -alpha)
    regime = _truncnorm_regime(alpha, beta, width, near, total, dt.compute == 32)
    if regime == "uniform":
        _check_width(a, b, "b - a", dt)
        return sample(shape, UNIFORM, _params(a, b - a, lo, hi), **common)
    if regime == "inverse_cdf":
        if dt.compute == 32 and max(abs(mean), std) > largest_finite(resolve_dtype("float32")):
            argname, value = ("std", std) if std > abs(mean) else ("mean", mean)
            raise ValueError(
                f"{argname}={value} is beyond float32, in which {dt.name} values are computed; "
                "use dtype='float64'"
            )
        params = _params(mean, std, lo, hi, p_left, q_right, mass_left, total)
        # every p formed lies between the bounds' tail probabilities and 1/2; when those are
        # not in the quantile's tail region, the kernel that skips it gives the same bits
        central = (
            dt.compute == 32
            and (mass_left == 0 or p_left >= NDTRI_CENTRAL_MIN_P)
            and (mass_right == 0 or q_right >= NDTRI_CENTRAL_MIN_P)
        )
        return sample(shape, TRUNCNORM_CENTRAL if central else TRUNCNORM, params, **common)
    # One side of the mean, in log space: reflected to the right tail and, where it is not
    # already there, moved to a distance the tail form handles (see _truncnorm_regime).
    target = _tail_distance(near)
    if target != near:
        bound = a if sign > 0 else b
        far = target + width * (near / target)
        std = std * (target / near)
        near = target
        mean = bound - sign * near * std
    logq_near = float(special.log_ndtr(-near))
    ratio = 0.0 if math.isinf(far) else math.exp(float(special.log_ndtr(-far)) - logq_near)
    return sample(shape, TRUNCNORM_TAIL, _params(mean, std, lo, hi, sign, logq_near, ratio), **common)


def _standardize(x: float, mean: float, std: float) -> float:
    """(x - mean) / std, also where x - mean overflows but the quotient does not."""
    d = x - mean
    if math.isinf(d) and not math.isinf(x):
        return x / std - mean / std
    return d / std


def _tail_distance(near: float) -> float:
    """Where the tail form draws an interval whose nearer bound is ``near`` std from the mean:
    there if in [_TAIL_Z, _FAR_Z] (its Newton inverse needs >= 8; beyond _FAR_Z, mean + z std
    keeps only ulp(z) of the distribution), else the nearest end of that range."""
    return min(max(near, _TAIL_Z), _FAR_Z)


def _truncnorm_regime(alpha, beta, width, near, total, float32_compute) -> str:
    """How truncated_normal draws [alpha, beta]: "inverse_cdf", "tail" or "uniform".

    By default the inverse CDF, or the tail form when the mass is below _TAIL_MASS. Their
    error in z is about eps (1 + |z|) (special.py: the quantile's relative error 3.4e-7 in
    float32, 4e-16 in float64, plus the rounding of p). An interval narrower than 4096 such
    errors (``_NARROW``) is not resolved, and takes whichever of these is closer:

    - the uniform on [a, b]: its CDF is off by at most delta / 2 of the interval, delta the
      range of the log density over it;
    - on one side of the mean, the tail form (float64 inside) moved to distance
      t' = _tail_distance(near) with the same bound and rate near / std: the log density
      -(near t + t**2 / 2) at t std past the bound becomes -(near t + t**2 / (2 k**2)),
      k = t' / near, so the CDF is off by at most t**2 |1 - 1/k**2| / 4 over the t that
      carries the mass (at most the width, and 40 / near: e**-40 lies beyond), plus the tail
      form's own error.

    The resolution test keeps the bits of every interval that was already resolved.
    """
    # the tail form's error in z: its own at distance t', scaled back by k = t' / near
    tail_error = math.inf
    if near > 0:
        k = _tail_distance(near) / near
        tail_error = _QUANTILE_EPS_F64 * (1.0 + _tail_distance(near)) * k
    if total >= _TAIL_MASS:
        default = "inverse_cdf"
        eps = _QUANTILE_EPS_F32 if float32_compute else _QUANTILE_EPS_F64
        error = eps * (1.0 + min(max(abs(alpha), abs(beta)), max(near, 0.0) + 9.0))
    else:
        default, error = "tail", tail_error
    if math.isinf(width) or error <= _NARROW * width:
        return default
    if width == 0:  # narrower than float64 resolves, in units of std
        return "uniform"
    if alpha >= 0 or beta <= 0:  # one side of the mean: (beta**2 - alpha**2) / 2
        delta = width * abs(alpha + beta) / 2
    else:
        delta = max(alpha * alpha, beta * beta) / 2
    uniform = delta / 2
    if near <= 0:
        return "uniform"
    t = min(width, 40.0 / near)
    tail = t * t * abs(1.0 - 1.0 / (k * k)) / 4 + tail_error / width
    return "uniform" if uniform <= tail else "tail"
