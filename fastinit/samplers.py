"""The public samplers: uniform, normal, truncated_normal.

Each validates its arguments (errors name the bad argument), works out the interval the kernels
clamp into (in the output dtype) and the distribution's parameter vector, and hands them to the
driver (``fastinit.driver.sample``), which derives the stream from (seed, name), turns
``index`` and ``out`` into a plan and runs a backend. Element i of the tensor depends only on
(seed, name, i, the distribution's parameters, dtype): see rng/layout.py and rng/streams.py.
"""

from __future__ import annotations

import math

import numpy as np

from .distributions import N_PARAMS, NORMAL, UNIFORM, truncnormal_params
from .distributions.normal import NORMAL_MAX_Z_F32, NORMAL_MAX_Z_F64
from .driver import check_real, output_dtype, sample
from .dtypes import (
    DType,
    ceil_to_dtype,
    floor_to_dtype,
    largest_below,
    largest_finite,
    resolve_dtype,
    round_to_dtype,
)
from .typing import ArrayOut, DeviceLike, DTypeLike, IndexLike, RealLike, SeedLike, ShapeLike

__all__ = ["uniform", "normal", "truncated_normal"]


def _params(*values) -> np.ndarray:
    p = np.zeros(N_PARAMS)
    p[: len(values)] = values
    return p


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


# Each public sampler spells out its whole typed signature (as jax.nn.initializers does), so
# help(), IDEs and type checkers show every parameter: the keyword blocks repeat on purpose.
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
    and clamped so that every value, after rounding to ``dtype``, lies in [low, high) (in
    bfloat16 the lower end is ``low`` rounded to float32 first, so a ``low`` just above a
    bfloat16 value can give that value; docs/schemes.md).
    float16 / bfloat16 are computed in float32 and rounded to nearest-even once.

    Args:
        shape: int or tuple of ints (0-sized dimensions allowed).
        low, high: the interval; low <= high (low == high gives the constant low).
        seed: int in [0, 2**64). name: str or None. Together they pick the stream.
        dtype: "float32" (default, or out's dtype), "float64", "float16", "bfloat16".
        device: "cpu" (default), "cuda" (the current GPU) or "cuda:N": where the values are
            computed and stored (the same bytes on every device). With ``out=``, the work runs
            where ``out`` lives (see ``fastinit.driver.target_device``).
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
    lo = ceil_to_dtype(low, dt)
    hi = lo if low == high else largest_below(high, dt)
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
        alpha, beta = (
            (truncnormal_params.standardize(a, mean, std), truncnormal_params.standardize(b, mean, std))
            if std > 0
            else (0.0, 0.0)
        )
        # from the bounds themselves: beta - alpha loses a narrow interval far from the mean
        width = truncnormal_params.standardize(b, a, std) if std > 0 else 0.0
    dt = output_dtype(dtype, out)
    common = dict(seed=seed, name=name, dtype=dt, device=device, index=index, out=out)
    if std == 0.0 and (lower is not None or upper is not None):
        # every value is mean + z * 0 = mean, whatever the bounds in units of std
        if abs(mean) > largest_finite(dt):
            raise ValueError(f"mean={mean} is beyond the largest {dt.name} ({largest_finite(dt):g})")
        return sample(shape, UNIFORM, _params(mean, 0.0, mean, mean), **common)
    lo, hi = ceil_to_dtype(a, dt), floor_to_dtype(b, dt)
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
    z_min, z_max = truncnormal_params.reach(alpha, beta)
    x_min = a if z_min == alpha else mean + z_min * std
    x_max = b if z_max == beta else mean + z_max * std
    _check_reach(std, x_min, x_max, dt)
    draw = truncnormal_params.prepare(
        mean, std, a, b, lo, hi, alpha=alpha, beta=beta, width=width, float32_compute=dt.compute == 32
    )
    if draw.regime == "uniform":
        _check_width(a, b, "b - a", dt)
    elif (
        draw.regime == "inverse_cdf"
        and dt.compute == 32
        and max(abs(mean), std) > largest_finite(resolve_dtype("float32"))
    ):
        argname, value = ("std", std) if std > abs(mean) else ("mean", mean)
        raise ValueError(
            f"{argname}={value} is beyond float32, in which {dt.name} values are computed; "
            "use dtype='float64'"
        )
    return sample(shape, draw.code, _params(*draw.values), **common)
