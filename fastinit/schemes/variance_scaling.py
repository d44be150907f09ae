"""variance_scaling, the one general scheme, and the Xavier / Kaiming / LeCun presets over it.

variance_scaling draws with std = sqrt(scale / n), n given by ``mode`` from the fans:

    fan_in: fan_in    fan_out: fan_out    fan_avg: (fan_in + fan_out) / 2
    fan_geo_avg: sqrt(fan_in * fan_out)

and ``distribution``: "truncated_normal" (truncated at 2 std and divided by 0.87962566103423978,
the std of a standard normal truncated to [-2, 2], so the result has std exactly sqrt(scale/n):
JAX's correction), "normal" (alias "untruncated_normal"), or "uniform" on
[-sqrt(3 scale / n), sqrt(3 scale / n)].

The presets are variance_scaling with fixed (scale, mode, distribution):

============================  =========================================  =======================
preset                        as variance_scaling                        torch equivalent
============================  =========================================  =======================
xavier_uniform(gain)          (gain**2, "fan_avg", "uniform")            xavier_uniform_
xavier_normal(gain)           (gain**2, "fan_avg", "normal")             xavier_normal_
kaiming_uniform(a, mode, nl)  (calculate_gain(nl, a)**2, mode, "uniform")  kaiming_uniform_
kaiming_normal(a, mode, nl)   (calculate_gain(nl, a)**2, mode, "normal")   kaiming_normal_
lecun_uniform                 (1, "fan_in", "uniform")                   (JAX lecun_uniform)
lecun_normal                  (1, "fan_in", "truncated_normal")          (JAX lecun_normal)
============================  =========================================  =======================

The torch presets compute their std with torch's own expression (``gain * sqrt(2 / (fan_in +
fan_out))``, ``gain / sqrt(fan)``, bound ``sqrt(3) * std``), so bounds and stds equal torch's
bit for bit rather than within an ulp of float64. Fans follow ``layout`` ("torch" by default:
weights are (out, in, *kernel)); see fans.py.

References: Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward
neural networks"; He et al. (2015), "Delving deep into rectifiers"; LeCun et al. (1998),
"Efficient BackProp".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Literal

from .. import driver, dtypes, samplers
from ..distributions.normal import NORMAL_MAX_Z_F32, NORMAL_MAX_Z_F64
from ..dtypes import largest_finite
from ..typing import (
    ArrayOut,
    AxesLike,
    DeviceLike,
    Distribution,
    DTypeLike,
    FanMode,
    IndexLike,
    Layout,
    Nonlinearity,
    RealLike,
    SeedLike,
    ShapeLike,
)
from .fans import calculate_gain, compute_fans
from .record import Prediction, Scheme, zero_mean_prediction

__all__ = [
    "variance_scaling",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_uniform",
    "lecun_normal",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "TRUNCATED_NORMAL_STD",
    "RECORDS",
]

# std of a standard normal truncated to [-2, 2] (JAX and Keras use the same constant)
TRUNCATED_NORMAL_STD = 0.87962566103423978
MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")


def _draw(shape, distribution, std, bound, common, source=None):
    """Sample zero-mean values with this std (normals) or bound (uniform).

    ``source``: (argname, value) of the user's parameter they derive from, named in the error
    when the output dtype cannot hold them.
    """
    if _empty(shape):  # nothing to draw (and fans may be 0): an empty array of the right kind
        return samplers.normal(shape, 0.0, 0.0, **common)
    if source is not None:
        _check_spread(distribution, std, bound, source, common)
    if distribution == "truncated_normal":
        return samplers.truncated_normal(
            shape, 0.0, std / TRUNCATED_NORMAL_STD, lower=-2.0, upper=2.0, **common
        )
    if distribution in ("normal", "untruncated_normal"):
        return samplers.normal(shape, 0.0, std, **common)
    return samplers.uniform(shape, -bound, bound, **common)


def _check_spread(distribution, std, bound, source, common) -> None:
    """Refuse a std / bound the output dtype cannot hold, naming the user's parameter: values
    beyond its range (inf) or a spread that rounds to 0 (all zeros) when the parameter is not 0."""
    argname, value = source
    dt = driver.output_dtype(common["dtype"], common["out"])
    if distribution == "uniform":
        spread, what = bound, "a bound"
        # the sampler forms high - low = 2 bound in the compute precision
        reach, limit = (
            2 * bound,
            min(2 * largest_finite(dt), largest_finite(dtypes.resolve_dtype(f"float{dt.compute}"))),
        )
    elif distribution == "truncated_normal":
        spread, what = std, "a std"
        reach, limit = 2 * std / TRUNCATED_NORMAL_STD, largest_finite(dt)
    else:
        spread, what = std, "a std"
        reach, limit = std * (NORMAL_MAX_Z_F64 if dt.compute == 64 else NORMAL_MAX_Z_F32), largest_finite(dt)
    if not reach <= limit:
        raise ValueError(f"{argname}={value} gives {what} of {spread:g}: values beyond the largest {dt.name} "
                         f"({largest_finite(dt):g})")  # fmt: skip
    if value != 0 and dtypes.round_to_dtype(spread, dt) == 0:
        where = "float64" if spread == 0 else dt.name
        raise ValueError(f"{argname}={value} is too small: {what} derived from it underflows to 0 in {where}")


def _fans(shape, layout, in_axis, out_axis, batch_axis, input_axes=None, output_axes=None):
    return compute_fans(driver.check_shape(shape), layout=layout, in_axis=in_axis, out_axis=out_axis,
                        batch_axis=batch_axis, input_axes=input_axes, output_axes=output_axes)  # fmt: skip


def _empty(shape) -> bool:
    return 0 in driver.check_shape(shape)


def variance_scaling(
    shape: ShapeLike,
    scale: RealLike = 1.0,
    mode: FanMode = "fan_in",
    distribution: Distribution = "truncated_normal",
    *,
    layout: Layout = "jax",
    in_axis: AxesLike | None = None,
    out_axis: AxesLike | None = None,
    batch_axis: AxesLike = (),
    input_axes: AxesLike | None = None,
    output_axes: AxesLike | None = None,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Zero-mean values with std sqrt(scale / n), n from ``mode`` (see module docstring).

    ``layout`` picks the fan convention ("jax" by default here, as in
    ``jax.nn.initializers.variance_scaling``: ``(..., in, out)`` with ``in_axis=-2``,
    ``out_axis=-1``; "torch" and "keras" as in fans.py, where ``input_axes`` / ``output_axes``
    are Keras's). ``distribution="normal"`` is untruncated, as in JAX; Keras's
    ``VarianceScaling(distribution="normal")`` is the truncated normal (``fastinit.keras``).

    >>> import fastinit, numpy as np
    >>> w = np.asarray(fastinit.variance_scaling((512, 256), 2.0, "fan_in", "normal", seed=0))
    >>> round(float(w.std() * np.sqrt(512 / 2.0)), 2)
    1.0
    """
    scale = driver.check_real(scale, "scale")
    if scale < 0:
        raise ValueError(f"scale={scale} must be >= 0")
    check_mode_and_distribution(mode, distribution)
    common = dict(seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)
    if _empty(shape):
        return _draw(shape, distribution, 0.0, 0.0, common)
    fan_in, fan_out = _fans(shape, layout, in_axis, out_axis, batch_axis, input_axes, output_axes)
    denominator = {
        "fan_in": fan_in,
        "fan_out": fan_out,
        "fan_avg": (fan_in + fan_out) / 2,
        "fan_geo_avg": (fan_in * fan_out) ** 0.5,
    }[mode]
    variance = scale / denominator
    return _draw(shape, distribution, math.sqrt(variance), math.sqrt(3 * variance), common, ("scale", scale))


def check_mode_and_distribution(mode: object, distribution: object) -> None:
    """Raise ValueError, in JAX's words, unless mode is one of MODES and distribution one of
    DISTRIBUTIONS.

    >>> check_mode_and_distribution("fan_avg", "uniform")
    >>> check_mode_and_distribution("fan_sum", "uniform")
    Traceback (most recent call last):
    ValueError: invalid mode for variance scaling initializer: fan_sum (use one of fan_in, fan_out, fan_avg, fan_geo_avg)
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(
            f"invalid mode for variance scaling initializer: {mode} (use one of {', '.join(MODES)})"
        )
    if not isinstance(distribution, str) or distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"invalid distribution for variance scaling initializer: {distribution} "
            f"(use one of {', '.join(DISTRIBUTIONS)})"
        )


def _check_gain(gain) -> float:
    gain = driver.check_real(gain, "gain")
    if gain < 0:
        raise ValueError(f"gain={gain} must be >= 0")
    return gain


def _xavier_std(shape, gain, layout, in_axis, out_axis, batch_axis):
    fan_in, fan_out = _fans(shape, layout, in_axis, out_axis, batch_axis)
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


# Each public scheme spells out its whole typed signature (as jax.nn.initializers does), so
# help(), IDEs and type checkers show every parameter: the keyword blocks repeat on purpose.
def xavier_uniform(
    shape: ShapeLike,
    gain: RealLike = 1.0,
    *,
    layout: Layout = "torch",
    in_axis: AxesLike | None = None,
    out_axis: AxesLike | None = None,
    batch_axis: AxesLike = (),
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Glorot/Xavier uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).

    >>> import fastinit, numpy as np
    >>> w = np.asarray(fastinit.xavier_uniform((128, 64), seed=0, name="fc.weight"))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / (128 + 64)))
    True
    """
    gain = _check_gain(gain)
    common = dict(seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)
    if _empty(shape):
        return _draw(shape, "uniform", 0.0, 0.0, common)
    std = _xavier_std(shape, gain, layout, in_axis, out_axis, batch_axis)
    return _draw(shape, "uniform", std, math.sqrt(3.0) * std, common, ("gain", gain))


def xavier_normal(
    shape: ShapeLike,
    gain: RealLike = 1.0,
    *,
    layout: Layout = "torch",
    in_axis: AxesLike | None = None,
    out_axis: AxesLike | None = None,
    batch_axis: AxesLike = (),
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Glorot/Xavier normal: N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out)).

    >>> import fastinit
    >>> fastinit.xavier_normal((64, 32, 3, 3), seed=0, name="conv.weight").shape
    (64, 32, 3, 3)
    """
    gain = _check_gain(gain)
    common = dict(seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)
    if _empty(shape):
        return _draw(shape, "normal", 0.0, 0.0, common)
    std = _xavier_std(shape, gain, layout, in_axis, out_axis, batch_axis)
    return _draw(shape, "normal", std, 0.0, common, ("gain", gain))


def _kaiming_std(shape, a, mode, nonlinearity, layout, in_axis, out_axis, batch_axis):
    if isinstance(a, float) and not math.isfinite(a):  # would surface as a NaN bound
        raise ValueError(f"a={a} must be finite")
    if a is not None and (isinstance(a, bool) or not isinstance(a, numbers.Real)):
        raise ValueError(f"a={a!r} is not a valid negative_slope for leaky_relu: use an int or a float")
    mode = mode.lower() if isinstance(mode, str) else mode
    if not isinstance(mode, str) or mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of {['fan_in', 'fan_out']}")
    fan_in, fan_out = _fans(shape, layout, in_axis, out_axis, batch_axis)
    fan = fan_in if mode == "fan_in" else fan_out
    try:
        gain = calculate_gain(nonlinearity, a)
    except OverflowError:  # (torch's calculate_gain raises the same for 1 + a**2)
        raise ValueError(f"a={a} is too large: 1 + a**2 in the gain sqrt(2 / (1 + a**2)) overflows") from None
    return gain / math.sqrt(fan)


def kaiming_uniform(
    shape: ShapeLike,
    a: float | None = 0.0,
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    *,
    layout: Layout = "torch",
    in_axis: AxesLike | None = None,
    out_axis: AxesLike | None = None,
    batch_axis: AxesLike = (),
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Kaiming/He uniform: U(-b, b), b = sqrt(3) * calculate_gain(nonlinearity, a) / sqrt(fan).

    Same defaults as torch (``a=0``, ``mode="fan_in"``, ``nonlinearity="leaky_relu"``); torch's
    ``nn.Linear`` uses ``a=sqrt(5)``.

    >>> import fastinit, math
    >>> w = fastinit.kaiming_uniform((256, 128), a=math.sqrt(5), seed=0, name="fc.weight")
    >>> w.shape
    (256, 128)
    """
    common = dict(seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)
    if _empty(shape):
        return _draw(shape, "uniform", 0.0, 0.0, common)
    std = _kaiming_std(shape, a, mode, nonlinearity, layout, in_axis, out_axis, batch_axis)
    return _draw(shape, "uniform", std, math.sqrt(3.0) * std, common, ("a", a))


def kaiming_normal(
    shape: ShapeLike,
    a: float | None = 0.0,
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    *,
    layout: Layout = "torch",
    in_axis: AxesLike | None = None,
    out_axis: AxesLike | None = None,
    batch_axis: AxesLike = (),
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Kaiming/He normal: N(0, std**2), std = calculate_gain(nonlinearity, a) / sqrt(fan).

    >>> import fastinit, numpy as np
    >>> w = np.asarray(fastinit.kaiming_normal((512, 512), nonlinearity="relu", seed=0))
    >>> round(float(w.std() * np.sqrt(512 / 2)), 2)
    1.0
    """
    common = dict(seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)
    if _empty(shape):
        return _draw(shape, "normal", 0.0, 0.0, common)
    return _draw(shape, "normal", _kaiming_std(shape, a, mode, nonlinearity, layout, in_axis, out_axis,
                                               batch_axis), 0.0, common, ("a", a))  # fmt: skip


def lecun_uniform(
    shape: ShapeLike,
    *,
    layout: Layout = "torch",
    in_axis: AxesLike | None = None,
    out_axis: AxesLike | None = None,
    batch_axis: AxesLike = (),
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """LeCun uniform: variance_scaling(1, "fan_in", "uniform"): U(-b, b), b = sqrt(3 / fan_in).

    >>> import fastinit
    >>> fastinit.lecun_uniform((10, 20), seed=0).shape
    (10, 20)
    """
    return variance_scaling(shape, 1.0, "fan_in", "uniform", layout=layout, in_axis=in_axis, out_axis=out_axis,
                            batch_axis=batch_axis, seed=seed, name=name, dtype=dtype, device=device, index=index,
                            out=out)  # fmt: skip


def lecun_normal(
    shape: ShapeLike,
    *,
    layout: Layout = "torch",
    in_axis: AxesLike | None = None,
    out_axis: AxesLike | None = None,
    batch_axis: AxesLike = (),
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """LeCun normal: variance_scaling(1, "fan_in", "truncated_normal"): std sqrt(1 / fan_in).

    >>> import fastinit
    >>> fastinit.lecun_normal((10, 20), seed=0).shape
    (10, 20)
    """
    return variance_scaling(shape, 1.0, "fan_in", "truncated_normal", layout=layout, in_axis=in_axis,
                            out_axis=out_axis, batch_axis=batch_axis, seed=seed, name=name, dtype=dtype,
                            device=device, index=index, out=out)  # fmt: skip


glorot_uniform = xavier_uniform
glorot_normal = xavier_normal
he_uniform = kaiming_uniform
he_normal = kaiming_normal


# ---- the registry's records: these schemes' predicted moments --------------------------------


def _axes(a: dict[str, Any]) -> tuple:
    return a["layout"], a["in_axis"], a["out_axis"], a["batch_axis"]


def _predict_variance_scaling(a: dict[str, Any]) -> Prediction:
    fan_in, fan_out = _fans(a["shape"], *_axes(a), a["input_axes"], a["output_axes"])
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
         "fan_geo_avg": (fan_in * fan_out) ** 0.5}[a["mode"]]  # fmt: skip
    return zero_mean_prediction(a["distribution"], math.sqrt(float(a["scale"]) / n), TRUNCATED_NORMAL_STD)


def _predict_xavier(distribution: str) -> Callable[[dict[str, Any]], Prediction]:
    def predict(a: dict[str, Any]) -> Prediction:
        std = _xavier_std(a["shape"], float(a["gain"]), *_axes(a))
        return zero_mean_prediction(distribution, std, TRUNCATED_NORMAL_STD)

    return predict


def _predict_kaiming(distribution: str) -> Callable[[dict[str, Any]], Prediction]:
    def predict(a: dict[str, Any]) -> Prediction:
        std = _kaiming_std(a["shape"], a["a"], a["mode"], a["nonlinearity"], *_axes(a))
        return zero_mean_prediction(distribution, std, TRUNCATED_NORMAL_STD)

    return predict


def _predict_lecun(distribution: str) -> Callable[[dict[str, Any]], Prediction]:
    def predict(a: dict[str, Any]) -> Prediction:
        fan_in, _ = _fans(a["shape"], *_axes(a))
        return zero_mean_prediction(distribution, math.sqrt(1.0 / fan_in), TRUNCATED_NORMAL_STD)

    return predict


RECORDS = (
    Scheme("variance_scaling", variance_scaling, whole_tensor=False, predict=_predict_variance_scaling),
    Scheme("xavier_uniform", xavier_uniform, whole_tensor=False, predict=_predict_xavier("uniform")),
    Scheme("xavier_normal", xavier_normal, whole_tensor=False, predict=_predict_xavier("normal")),
    Scheme("kaiming_uniform", kaiming_uniform, whole_tensor=False, predict=_predict_kaiming("uniform")),
    Scheme("kaiming_normal", kaiming_normal, whole_tensor=False, predict=_predict_kaiming("normal")),
    Scheme("lecun_uniform", lecun_uniform, whole_tensor=False, predict=_predict_lecun("uniform")),
    Scheme("lecun_normal", lecun_normal, whole_tensor=False, predict=_predict_lecun("truncated_normal")),
)
