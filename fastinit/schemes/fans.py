"""Fans and gains: the one file with the fan rules of torch, JAX and Keras.

``compute_fans(shape, layout=...)`` follows one of three conventions, each equal to its
source on every shape that source accepts:

- ``"torch"``: weight ``(out, in, *kernel)``; ``torch.nn.init._calculate_fan_in_and_fan_out``
  (ValueError below 2 dimensions). Integers.
- ``"jax"``: ``(..., in, out)`` with ``in_axis`` / ``out_axis`` / ``batch_axis`` (ints or
  sequences); ``jax.nn.initializers`` ``_compute_fans``: every axis that is none of these is
  receptive field; the receptive field is a float division, as in JAX.
- ``"keras"``: Keras 3 ``compute_fans``: () -> (1, 1), (n,) -> (n, n), (a, b) -> (a, b),
  (*k, a, b) -> (a * prod(k), b * prod(k)); with ``input_axes`` and ``output_axes`` (Keras 3.15)
  fan_in and fan_out are the products of those axes' sizes alone (no receptive field), e.g. an
  attention kernel (512, 8, 64) with input_axes=[0], output_axes=[1, 2] has fans (512, 512).
  Integers.

``calculate_gain`` returns the values of ``torch.nn.init.calculate_gain`` and raises its errors.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from .. import driver
from ..typing import AxesLike, Layout, Nonlinearity, ShapeLike

__all__ = ["calculate_gain", "compute_fans", "LAYOUTS"]

LAYOUTS = ("torch", "jax", "keras")

_LINEAR = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)


def calculate_gain(nonlinearity: Nonlinearity, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    ================= ==========================
    nonlinearity      gain
    ================= ==========================
    linear / conv*    1
    sigmoid           1
    tanh              5/3
    relu              sqrt(2)
    leaky_relu        sqrt(2 / (1 + slope**2)), slope = param (default 0.01)
    selu              3/4
    ================= ==========================

    >>> calculate_gain("relu")
    1.4142135623730951
    >>> calculate_gain("leaky_relu", 0.2)
    1.3867504905630728
    """
    if not isinstance(nonlinearity, str):
        raise ValueError(f"Unsupported nonlinearity {nonlinearity!r}")
    if nonlinearity in _LINEAR or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif (not isinstance(param, bool) and isinstance(param, int)) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _axes_size(shape, axes, argname):
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        return shape[_axis(axes, len(shape), argname)]
    if not isinstance(axes, Sequence) or isinstance(axes, str):
        raise TypeError(f"{argname} must be an int or a sequence of ints, got {axes!r}")
    return math.prod(shape[_axis(a, len(shape), argname)] for a in axes)


def _axis(axis, ndim, argname):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{argname} must contain ints, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{argname}={axis} is out of range for a {ndim}-dimensional shape")
    return int(axis)


def compute_fans(
    shape: ShapeLike,
    *,
    layout: Layout = "torch",
    in_axis: AxesLike | None = None,
    out_axis: AxesLike | None = None,
    batch_axis: AxesLike = (),
    input_axes: AxesLike | None = None,
    output_axes: AxesLike | None = None,
) -> tuple[float, float]:
    """(fan_in, fan_out) of a weight of this shape, in the convention ``layout``.

    ``in_axis`` / ``out_axis`` / ``batch_axis`` apply to ``layout="jax"`` (defaults -2, -1, ()).
    ``input_axes`` / ``output_axes`` apply to ``layout="keras"`` and go together (Keras 3.15's
    ``compute_fans`` ignores one given alone; here that is an error): each an int or a sequence
    of ints, the fan is the product of those dimensions.

    >>> compute_fans((64, 32, 3, 3))                 # torch: (out, in, kh, kw)
    (288, 576)
    >>> compute_fans((3, 3, 32, 64), layout="jax")    # JAX: (kh, kw, in, out)
    (288.0, 576.0)
    >>> compute_fans((3, 3, 32, 64), layout="keras")
    (288, 576)
    >>> compute_fans((512, 8, 64), layout="keras", input_axes=[0], output_axes=[1, 2])
    (512, 512)
    """
    shape = driver.check_shape(shape)
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is not one of {', '.join(map(repr, LAYOUTS))}")
    if layout != "keras" and (input_axes is not None or output_axes is not None):
        which = "input_axes" if input_axes is not None else "output_axes"
        raise ValueError(f"{which} applies to layout='keras' only (layout={layout!r})")
    if layout == "torch":
        if in_axis is not None or out_axis is not None or batch_axis != ():
            raise ValueError("in_axis/out_axis/batch_axis apply to layout='jax' only")
        if len(shape) < 2:
            raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
        receptive = math.prod(shape[2:])
        return shape[1] * receptive, shape[0] * receptive
    if layout == "jax":
        in_axis = -2 if in_axis is None else in_axis
        out_axis = -1 if out_axis is None else out_axis
        if isinstance(in_axis, int) and in_axis == -2 and len(shape) <= 1:
            raise ValueError(
                f"Can't compute input and output sizes of a {len(shape)}-dimensional"
                " weights tensor with default in_axis. Must be at least 2D or specify"
                " in_axis explicitly."
            )
        in_size = _axes_size(shape, in_axis, "in_axis")
        out_size = _axes_size(shape, out_axis, "out_axis")
        batch_size = _axes_size(shape, batch_axis, "batch_axis")
        receptive = math.prod(shape) / in_size / out_size / batch_size
        return in_size * receptive, out_size * receptive
    # keras
    if in_axis is not None or out_axis is not None or batch_axis != ():
        raise ValueError("in_axis/out_axis/batch_axis apply to layout='jax' only")
    if (input_axes is None) != (output_axes is None):
        given, missing = ("input_axes", "output_axes")[:: 1 if output_axes is None else -1]
        raise ValueError(f"{given} needs {missing} too: pass both, or neither for the shape rule")
    if input_axes is not None:
        fan_in = _axes_size(shape, input_axes, "input_axes")
        return int(fan_in), int(_axes_size(shape, output_axes, "output_axes"))
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive
