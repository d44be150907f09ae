"""The one dtype table of the package.

Every output dtype fastinit produces is a row of ``DTYPES``. A row says how the values are
computed (``compute``: the float width the samplers work in), how they are stored in a NumPy
buffer (``storage``: bfloat16 has no NumPy dtype, so it is stored as its raw 16-bit pattern),
and how DLPack names them (``dlpack_code``, ``bits``). Nothing else in the package keeps its
own list of dtypes.

``resolve_dtype`` accepts strings ("float32", "bf16", ...), NumPy dtypes and scalar types,
``ml_dtypes.bfloat16`` and torch / JAX dtype objects (recognised by name, without importing
those frameworks).

Rounding a float to a dtype's values lives here too, beside the table it reads:
``round_to_dtype`` (to nearest, ties to even), ``ceil_to_dtype`` / ``floor_to_dtype`` (the
nearest value on one side) and ``largest_below``. The samplers use them to clamp their intervals
and to refuse parameters no value of the dtype satisfies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .typing import DTypeLike

__all__ = [
    "DType",
    "DTYPES",
    "resolve_dtype",
    "dtype_from_dlpack",
    "largest_finite",
    "round_to_dtype",
    "ceil_to_dtype",
    "floor_to_dtype",
    "largest_below",
]

# DLPack type codes (dlpack.h, DLDataTypeCode).
DLPACK_INT = 0
DLPACK_UINT = 1
DLPACK_FLOAT = 2
DLPACK_BFLOAT = 4


@dataclass(frozen=True)
class DType:
    name: str  # canonical name, as in torch / NumPy / JAX
    storage: np.dtype  # dtype of the NumPy buffer that holds the bytes
    compute: int  # 32: computed in float32 then rounded once; 64: computed in float64
    dlpack_code: int
    bits: int

    @property
    def itemsize(self) -> int:
        return self.bits // 8

    @property
    def is_low_precision(self) -> bool:
        return self.bits == 16

    def numpy_dtype(self) -> np.dtype:
        """The NumPy dtype a user sees (``ml_dtypes.bfloat16`` for bfloat16).

        Raises TypeError for bfloat16 when ml_dtypes is not installed.
        """
        if self.name != "bfloat16":
            return self.storage
        try:
            import ml_dtypes
        except ImportError:
            raise TypeError(
                "bfloat16 has no NumPy dtype without the ml_dtypes package "
                "(pip install ml_dtypes); use .raw to see the bits as uint16, "
                "or hand the array to torch/JAX through DLPack"
            ) from None
        return np.dtype(ml_dtypes.bfloat16)

    def __repr__(self) -> str:
        return f"fastinit.{self.name}"


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("float32", np.dtype(np.float32), 32, DLPACK_FLOAT, 32),
        DType("float64", np.dtype(np.float64), 64, DLPACK_FLOAT, 64),
        DType("float16", np.dtype(np.float16), 32, DLPACK_FLOAT, 16),
        DType("bfloat16", np.dtype(np.uint16), 32, DLPACK_BFLOAT, 16),
    )
}

_ALIASES = {
    "float": "float32",
    "f4": "float32",
    "fp32": "float32",
    "single": "float32",
    "double": "float64",
    "f8": "float64",
    "fp64": "float64",
    "half": "float16",
    "f2": "float16",
    "fp16": "float16",
    "bf16": "bfloat16",
}


def resolve_dtype(dtype: DTypeLike, *, argname: str = "dtype") -> DType:
    """Return the table row for ``dtype``; raise TypeError naming ``argname`` if unknown.

    >>> resolve_dtype("bf16").name
    'bfloat16'
    >>> resolve_dtype(np.float64).name
    'float64'
    """
    if isinstance(dtype, DType):
        return dtype
    if dtype is None:  # np.dtype(None) is float64: callers resolve their None defaults first
        raise TypeError(f"{argname}=None is not a dtype; choose one of {', '.join(DTYPES)}")
    key = None
    if isinstance(dtype, str):
        key = dtype.strip().lower()
    else:
        module = type(dtype).__module__ or ""
        if module.startswith("torch"):
            key = str(dtype).split(".")[-1]  # torch.bfloat16 -> "bfloat16"
        else:
            try:
                key = np.dtype(dtype).name  # NumPy dtypes, jnp dtypes, ml_dtypes.bfloat16
            except TypeError:
                key = getattr(dtype, "name", None) or getattr(dtype, "__name__", None)
                key = key.lower() if isinstance(key, str) else None
    if key is not None:
        key = _ALIASES.get(key, key)
        if key in DTYPES:
            return DTYPES[key]
    raise TypeError(f"{argname}={dtype!r} is not supported; choose one of {', '.join(DTYPES)}")


def dtype_from_dlpack(code: int, bits: int) -> DType | None:
    """The row with this DLPack (type code, bits), or None."""
    for d in DTYPES.values():
        if d.dlpack_code == code and d.bits == bits:
            return d
    return None


def largest_finite(dtype: DType) -> float:
    """The largest finite value of ``dtype``, as a float.

    >>> largest_finite(resolve_dtype("bfloat16"))
    3.3895313892515355e+38
    """
    if dtype.name == "bfloat16":
        return float(np.uint32(0x7F7F0000).view(np.float32))
    return float(np.finfo(dtype.storage).max)


# ---- rounding a float to the values of a dtype ------------------------------------------


def _bf16_neighbours(x: float):
    """The bfloat16 values just below and above (or equal to) x, as floats."""
    bits = int(np.float32(x).view(np.uint32))
    # truncating the low 16 bits moves toward zero; one more step of the high half moves away
    toward_zero = np.uint32(bits & 0xFFFF0000).view(np.float32)
    away = np.uint32((((bits >> 16) + 1) << 16) & 0xFFFFFFFF).view(np.float32)
    lo, hi = sorted((float(toward_zero), float(away)))
    return lo, hi


def _round_directed(x: float, dtype: DType, up: bool) -> float:
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


def ceil_to_dtype(x: float, dtype: DTypeLike) -> float:
    """The smallest value of dtype >= x, as a float (+inf beyond the largest finite value).

    >>> ceil_to_dtype(0.1, "bfloat16")
    0.10009765625
    """
    return _round_directed(x, resolve_dtype(dtype), up=True)


def floor_to_dtype(x: float, dtype: DTypeLike) -> float:
    """The largest value of dtype <= x, as a float (-inf below the most negative finite value).

    >>> floor_to_dtype(0.1, "bfloat16")
    0.099609375
    """
    return _round_directed(x, resolve_dtype(dtype), up=False)


def largest_below(x: float, dtype: DTypeLike) -> float:
    """The largest value of dtype strictly below x, as a float.

    >>> largest_below(1.0, "float16")
    0.99951171875
    """
    dtype = resolve_dtype(dtype)
    y = _round_directed(x, dtype, up=False)
    if y < x:
        return y
    if dtype.name == "bfloat16":
        return _bf16_neighbours(np.nextafter(np.float32(x), np.float32(-np.inf)))[0]
    t = dtype.storage.type
    return float(np.nextafter(t(y), t(-np.inf)))


def round_to_dtype(value: float, dtype: DTypeLike) -> float:
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
        halfway = biggest + (biggest - largest_below(biggest, dt)) / 2
        return math.copysign(math.inf if abs(value) >= halfway else biggest, value)
    lo, hi = _round_directed(value, dt, up=False), _round_directed(value, dt, up=True)
    if lo == hi:
        return lo
    if value - lo != hi - value:
        return lo if value - lo < hi - value else hi
    # a tie: the neighbour with an even last significand bit
    bits = np.array([lo, hi], np.float32 if dt.name != "float16" else np.float16).view(
        np.uint32 if dt.name != "float16" else np.uint16)  # fmt: skip
    last = (bits >> 16) & 1 if dt.name == "bfloat16" else bits & 1
    return lo if last[0] == 0 else hi
