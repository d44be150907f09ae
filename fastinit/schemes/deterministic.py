"""Schemes with no randomness: constant, zeros, ones, eye, dirac, values.

Each takes the common keywords (``dtype``, ``device``, ``index``, ``out``; ``seed`` and ``name``
are validated as the samplers validate them, then ignored, so every scheme has one calling
convention and a bad seed fails the same way whichever scheme a config names) and honours
``index=`` by computing only the selected elements.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import numbers
import zlib
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import driver, dtypes
from ..array import check_addressable
from ..distributions import UNIFORM
from ..rng.streams import check_name, check_seed
from ..typing import ArrayOut, DeviceLike, DTypeLike, IndexLike, SeedLike, ShapeLike
from .record import Prediction, Scheme

__all__ = ["constant", "zeros", "ones", "eye", "dirac", "values", "encode_values", "RECORDS"]


# Each public scheme spells out its whole typed signature (as jax.nn.initializers does), so
# help(), IDEs and type checkers show every parameter: the keyword blocks repeat on purpose.
def constant(
    shape: ShapeLike,
    value: ArrayLike,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Every element equal to ``value`` (rounded to dtype), as ``torch.nn.init.constant_``.

    ``value`` may also be an array (anything ``np.asarray`` takes, of real numbers) that
    broadcasts to ``shape`` as NumPy broadcasts, as Keras's ``Constant`` accepts: each value is
    rounded once to dtype, none may be NaN or finite beyond the dtype's range.

    >>> import fastinit, numpy as np
    >>> np.asarray(fastinit.constant((2, 3), 0.5))
    array([[0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5]], dtype=float32)
    >>> np.asarray(fastinit.constant((2, 3), [1.0, 2.0, 3.0]))
    array([[1., 2., 3.],
           [1., 2., 3.]], dtype=float32)
    """
    check_seed(seed)
    check_name(name)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not isinstance(value, numbers.Number) and not isinstance(value, np.generic):
        return _constant_array(shape, value, dtype, device, index, out)
    value = driver.check_real(value, "value", allow_inf=True)
    dt = driver.output_dtype(dtype, out)
    v = dtypes.round_to_dtype(value, dt)
    if math.isinf(v) and not math.isinf(value):  # as torch's fill_, never a silent overflow
        raise ValueError(f"value={value!r} is beyond the largest finite {dt.name}; pass inf to fill with inf")
    # u * (+-0) + v: the scale's sign keeps v = -0.0 negative (+0 + -0 would give +0)
    params = np.array([v, math.copysign(0.0, v), v, v, 0.0, 0.0, 0.0, 0.0])
    return driver.sample(
        shape, UNIFORM, params, seed=0, name=None, dtype=dt, device=device, index=index, out=out
    )


def _constant_array(shape, value, dtype, device, index, out):
    """``constant`` for an array ``value``: broadcast to shape, rounded once to dtype."""
    shape = driver.check_shape(shape)
    driver.target_device(device, out)  # a bad device fails before the host work
    dt = driver.output_dtype(dtype, out)
    try:
        x = np.asarray(value)
    except (TypeError, ValueError):  # ragged nesting, objects NumPy cannot hold as an array
        raise ValueError(
            f"value must be a real number or an array of them, got {type(value).__name__}"
        ) from None
    if x.dtype.kind not in "iuf":
        raise TypeError(f"value must hold real numbers, got an array of {x.dtype}")
    x = x.astype(np.float64)
    try:
        fits = np.broadcast_shapes(x.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"value of shape {x.shape} does not broadcast to shape {shape}")
    driver.result_shape(shape, index)  # (validates index)
    rounded = np.broadcast_to(_round_once(x, dt.name, "value"), shape)
    selected = rounded if index is None else rounded[index]
    return driver.deliver(
        np.ascontiguousarray(selected), shape, dtype=dt, device=device, index=index, out=out
    )


def zeros(
    shape: ShapeLike,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """All zeros.

    >>> import fastinit
    >>> fastinit.zeros(3).raw
    array([0., 0., 0.], dtype=float32)
    """
    return constant(shape, 0.0, seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)


def ones(
    shape: ShapeLike,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """All ones.

    >>> import fastinit
    >>> fastinit.ones(3).raw
    array([1., 1., 1.], dtype=float32)
    """
    return constant(shape, 1.0, seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)


def _deliver_mask(shape, mask_fn, dtype, device, index, out):
    dt = driver.output_dtype(dtype, out)
    compute = np.float64 if dt.compute == 64 else np.float32
    result = driver.result_shape(shape, index)
    check_addressable(result, np.dtype(compute).itemsize)
    if 0 in result:  # nothing to mark (the mask's grids would still span the other dimensions)
        return driver.deliver(np.zeros(result, compute), shape, dtype=dt, device=device, index=index, out=out)
    coords = driver.index_coordinates(shape, index)
    grids = np.ix_(*coords) if coords else ()
    values = np.broadcast_to(mask_fn(*grids), tuple(len(c) for c in coords)).astype(compute)
    return driver.deliver(values.reshape(driver.result_shape(shape, index)), shape, dtype=dt, device=device, index=index,
                       out=out)  # fmt: skip


def eye(
    shape: ShapeLike,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """The identity matrix (2-D only), as ``torch.nn.init.eye_``.

    >>> import fastinit
    >>> fastinit.eye((2, 3)).raw
    array([[1., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    """
    check_seed(seed)
    check_name(name)
    shape = driver.check_shape(shape)
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _deliver_mask(shape, lambda r, c: r == c, dtype, device, index, out)


def dirac(
    shape: ShapeLike,
    groups: int = 1,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Dirac delta kernel (3-, 4- or 5-D), as ``torch.nn.init.dirac_``: a convolution with it
    preserves the identity of as many input channels as possible, per group.

    >>> import fastinit, numpy as np
    >>> w = np.asarray(fastinit.dirac((4, 2, 3)))
    >>> w[:, :, 1]
    array([[1., 0.],
           [0., 1.],
           [0., 0.],
           [0., 0.]], dtype=float32)
    """
    check_seed(seed)
    check_name(name)
    shape = driver.check_shape(shape)
    if len(shape) not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups={groups!r} must be an int >= 1")
    if shape[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    per_group = shape[0] // groups
    min_dim = min(per_group, shape[1])
    centres = [k // 2 for k in shape[2:]]

    def mask(out_ch, in_ch, *spatial):
        hit = (out_ch % per_group == in_ch) & (in_ch < min_dim)
        for s, c in zip(spatial, centres, strict=True):
            hit = hit & (s == c)
        return hit

    return _deliver_mask(shape, mask, dtype, device, index, out)


# ---- literal values ------------------------------------------------------------------------------

# deflate never expands more than 1032:1; a stream this much shorter than the values it is
# said to hold cannot hold them (refused before any inflating)
_MAX_INFLATION = 1100
_DATA_FORM = "base64 text of the zlib-compressed little-endian float64 values in C order"


def encode_values(array: ArrayLike) -> str:
    """The ``data`` of ``values`` for ``array`` (anything ``np.asarray`` takes), converted to
    float64: base64 text of the zlib-compressed little-endian float64 values in C order.

    The text depends on the zlib library's compressor (the values it decodes to do not).

    >>> values((3,), encode_values([1, 2, 3])).raw
    array([1., 2., 3.], dtype=float32)
    """
    flat = np.ascontiguousarray(np.asarray(array, dtype=np.float64), dtype="<f8")
    return base64.b64encode(zlib.compress(flat.tobytes(), 9)).decode("ascii")


def _inflate(data, count: int) -> np.ndarray:
    """The ``count`` float64 values of ``data``, never inflating more than their 8 * count bytes
    (plus one, to see that there are more)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"data is not {_DATA_FORM} (not base64 text)") from None
    expected = 8 * count
    if expected > _MAX_INFLATION * len(raw) + 4096:
        raise ValueError(f"data ({len(raw)} compressed bytes) cannot hold the {count} values of the shape")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(raw, expected) if expected else b""
        if not inflater.eof:  # (a valid stream ends here; one that does not holds more, or is cut)
            out += inflater.decompress(inflater.unconsumed_tail if expected else raw, 1)
    except zlib.error:
        raise ValueError(f"data is not {_DATA_FORM} (not a zlib stream)") from None
    if len(out) > expected:
        raise ValueError(f"data holds more than the {count} values of the shape")
    if not inflater.eof:
        raise ValueError(f"data is not {_DATA_FORM} (the zlib stream is cut short)")
    if inflater.unused_data:
        raise ValueError(f"data has bytes after its zlib stream ({_DATA_FORM})")
    if len(out) != expected:
        raise ValueError(f"data holds {len(out) // 8} values (and {len(out) % 8} bytes), the shape {count}")
    return np.frombuffer(out, dtype="<f8")


def _round_bfloat16(x: np.ndarray) -> np.ndarray:
    """x (float64) rounded once to bfloat16, to nearest, ties to even; as float32 values.

    Rounded to float32 by rounding to odd first (truncate, then set the last bit when inexact):
    with 16 more bits than bfloat16 and the same exponent range, rounding that to nearest gives
    the correctly rounded result (a plain float32 rounding would round twice)."""
    with np.errstate(over="ignore"):
        y = x.astype(np.float32)
    away = np.abs(y.astype(np.float64)) > np.abs(x)
    y[away] = np.nextafter(y[away], np.float32(0))
    bits = y.view(np.uint32)
    bits |= (y.astype(np.float64) != x).astype(np.uint32)
    bits = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return bits.view(np.float32)


@functools.lru_cache(maxsize=4)
def _rounded(data: str, count: int, dtype_name: str) -> np.ndarray:
    """The values of data rounded once to dtype (float32 values for the 32-bit-compute dtypes,
    each exactly a value of dtype), read-only. Cached: the writer asks for them chunk by chunk."""
    rounded = _round_once(_inflate(data, count), dtype_name, "data")
    rounded.flags.writeable = False
    return rounded


def _round_once(x: np.ndarray, dtype_name: str, argname: str) -> np.ndarray:
    """float64 values rounded once to dtype (float32 values for the 32-bit-compute dtypes, each
    exactly a value of dtype); NaN, and finite values beyond dtype's range, are refused."""
    bad = np.flatnonzero(np.isnan(x))
    if bad.size:
        raise ValueError(f"{argname} holds NaN (element {int(bad[0])})")
    if dtype_name == "float64":
        rounded = x.copy()
    else:
        with np.errstate(over="ignore"):
            if dtype_name == "bfloat16":
                rounded = _round_bfloat16(x)
            elif dtype_name == "float16":  # (NumPy rounds float64 to float16 once, directly)
                rounded = x.astype(np.float16).astype(np.float32)
            else:
                rounded = x.astype(np.float32)
        overflow = np.flatnonzero(np.isinf(rounded) & np.isfinite(x))
        if overflow.size:  # as a scalar constant: never a silent overflow to inf
            k = int(overflow[0])
            raise ValueError(
                f"{argname}: element {k} ({float(x.flat[k])!r}) is beyond the largest finite {dtype_name}"
            )
    return rounded


def values(
    shape: ShapeLike,
    data: str,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Literal values: the tensor holds ``data``, rounded once to dtype (to nearest, ties to even,
    as ``constant`` rounds its value). For a tensor a model computes, such as Mamba's ``A_log``.

    ``data``: base64 text of the zlib-compressed little-endian float64 values of the whole tensor
    in C order, as ``encode_values(array)`` returns it; it must hold exactly ``prod(shape)``
    values (never inflated beyond them), none NaN, and none finite beyond the dtype's range
    (+-inf is kept). ``index=`` selects elements of the whole tensor, as everywhere.

    >>> import fastinit, numpy as np
    >>> from fastinit.schemes.deterministic import encode_values
    >>> data = encode_values([[0.5, -2.0], [0.25, 3.5]])
    >>> np.asarray(fastinit.values((2, 2), data, dtype="float64"))
    array([[ 0.5 , -2.  ],
           [ 0.25,  3.5 ]])
    >>> fastinit.values((2, 2), data, index=(slice(None), 1)).raw
    array([-2. ,  3.5], dtype=float32)
    """
    check_seed(seed)
    check_name(name)
    shape = driver.check_shape(shape)
    driver.target_device(device, out)  # a bad device fails before the host work
    dt = driver.output_dtype(dtype, out)
    if not isinstance(data, str):  # (before the cache, which hashes it)
        raise TypeError(f"data must be a str ({_DATA_FORM}), got {type(data).__name__}")
    driver.result_shape(shape, index)  # (validates index: fastinit's index= is NumPy basic indexing)
    full = _rounded(data, math.prod(shape), dt.name).reshape(shape)
    selected = full if index is None else full[index]
    return driver.deliver(np.asarray(selected), shape, dtype=dt, device=device, index=index, out=out)


# ---- the registry's records: the values are known, so the prediction is exact ----------------

_EXACT_NOTE = "exact values: KS n/a; checks every value"


def _exact(mean: float, std: float, low: float, high: float) -> Prediction:
    return Prediction("exact", mean, std, low=low, high=high, note=_EXACT_NOTE)


def _every_value(value: Any) -> Prediction:
    v = float(value)
    return _exact(v, 0.0, v, v)


def _ones_fraction(shape: tuple[int, ...], ones: int) -> Prediction:
    """Zeros and ``ones`` ones."""
    frac = ones / math.prod(shape)
    return _exact(frac, math.sqrt(frac * (1 - frac)), 0.0, 1.0)


def _predict_eye(a: dict[str, Any]) -> Prediction:
    return _ones_fraction(a["shape"], min(a["shape"]))


def _predict_dirac(a: dict[str, Any]) -> Prediction:
    shape, groups = a["shape"], a["groups"]
    return _ones_fraction(shape, min(shape[0] // groups, shape[1]) * groups)


def _predict_values(a: dict[str, Any]) -> Prediction:
    """The literal values (float64; their finite ones for the moments)."""
    x = np.asarray(values(a["shape"], a["data"], dtype="float64")).ravel()
    x = x[np.isfinite(x)]
    if not x.size:
        return Prediction("exact", note=_EXACT_NOTE)
    return _exact(float(x.mean()), float(x.std()), float(x.min()), float(x.max()))


RECORDS = (
    Scheme(
        "constant",
        constant,
        whole_tensor=False,
        predict=lambda a: _every_value(a["value"]),
        constant_value=lambda params: params.get("value"),
    ),  # fmt: skip
    Scheme(
        "zeros", zeros, whole_tensor=False, predict=lambda a: _every_value(0), constant_value=lambda params: 0
    ),
    Scheme(
        "ones", ones, whole_tensor=False, predict=lambda a: _every_value(1), constant_value=lambda params: 1
    ),
    Scheme("eye", eye, whole_tensor=False, predict=_predict_eye),
    Scheme("dirac", dirac, whole_tensor=False, predict=_predict_dirac),
    Scheme("values", values, whole_tensor=False, predict=_predict_values),
)
