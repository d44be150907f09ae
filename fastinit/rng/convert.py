"""Word-to-float converters. Each states its exact output set, as Random123's uniform.hpp does.

Words arrive as uint64 values below 2**32 (see philox.py). Integers are converted through
int32/int64 values below 2**31 / 2**63, so the conversion is the same signed
round-to-nearest-even instruction on every target; every constant is typed, because Numba
would otherwise widen ``uint64 op int-literal`` to float64.

=====================  =====================================================================
converter              output (k = the integer built from the word bits)
=====================  =====================================================================
u01_f32_co(w)          k * 2**-24, k = w >> 8: the 2**24 values of [0, 1 - 2**-24]
u01_f32_oc(w)          fl(fl(k) * 2**-31 + 2**-32), k = w >> 1: inside [2**-32, 1]
u01_f32_oo(w)          (u, 1 - u), u = (2k + 1) * 2**-24, k = w >> 9: both exact, in
                       [2**-24, 1 - 2**-24], symmetric about 1/2
quarter_turn_f32(w)    (n, g): the angle w * 2**-32 turns = (n + g) quarter turns,
                       n in {0, 1, 2, 3}, g in [-1/2, 1/2] (exactly [-1/2, 1/2) before
                       g is rounded to float32, which can round up to +1/2)
u01_f64_co(wa, wb)     k * 2**-53, k = (wa >> 5) * 2**26 + (wb >> 6): [0, 1 - 2**-53]
u01_f64_oc(wa, wb)     (k + 1) * 2**-53, same k: [2**-53, 1]
u01_f64_oo(wa, wb)     (u, 1 - u), u = (2k + 1) * 2**-53, k = (wa >> 6) * 2**26 + (wb >> 6):
                       both exact, in [2**-53, 1 - 2**-53]
quarter_turn_f64(wa, wb)  as quarter_turn_f32 for the 64-bit angle (wa * 2**32 + wb) * 2**-64
=====================  =====================================================================
"""

from __future__ import annotations

from numba import float32, float64, int32, int64, uint64

from .._intrinsics import fma
from .._jit import pure

__all__ = [
    "u01_f32_co",
    "u01_f32_oc",
    "u01_f32_oo",
    "quarter_turn_f32",
    "u01_f64_co",
    "u01_f64_oc",
    "u01_f64_oo",
    "quarter_turn_f64",
]

_U1 = uint64(1)
_U2 = uint64(2)
_U3 = uint64(3)
_U5 = uint64(5)
_U6 = uint64(6)
_U8 = uint64(8)
_U9 = uint64(9)
_U26 = uint64(26)
_U30 = uint64(30)
_U32 = uint64(32)
_U62 = uint64(62)
_LO32 = uint64(0xFFFFFFFF)
_LO23 = uint64(0x7FFFFF)
_LO52 = uint64((1 << 52) - 1)
_HALF_TURN_32 = uint64(1 << 29)  # half a quarter turn, in units of 2**-32 turns
_HALF_TURN_64 = uint64(1 << 61)

_F32_2M24 = float32(2.0**-24)
_F32_2M23 = float32(2.0**-23)
_F32_2M31 = float32(2.0**-31)
_F32_2M32 = float32(2.0**-32)
_F64_2M53 = float64(2.0**-52) * float64(0.5)
_F64_2M52 = float64(2.0**-52)
_F64_2M64 = float64(2.0**-64)


@pure
def u01_f32_co(w):
    return float32(int32(w >> _U8)) * _F32_2M24


@pure
def u01_f32_oc(w):
    return fma(float32(int32(w >> _U1)), _F32_2M31, _F32_2M32)


@pure
def u01_f32_oo(w):
    k = w >> _U9
    u = fma(float32(int32(k)), _F32_2M23, _F32_2M24)
    v = fma(float32(int32(k ^ _LO23)), _F32_2M23, _F32_2M24)
    return u, v


@pure
def quarter_turn_f32(w):
    n = int32(((w + _HALF_TURN_32) >> _U30) & _U3)
    # the low 30 bits, shifted to the top of an int32, are the signed remainder g * 2**32
    g = float32(int32((w << _U2) & _LO32)) * _F32_2M32
    return n, g


@pure
def _k53(wa, wb):
    return int64(((wa >> _U5) << _U26) | (wb >> _U6))


@pure
def u01_f64_co(wa, wb):
    return float64(_k53(wa, wb)) * _F64_2M53


@pure
def u01_f64_oc(wa, wb):
    return float64(_k53(wa, wb) + int64(1)) * _F64_2M53


@pure
def u01_f64_oo(wa, wb):
    k = (((wa >> _U6) << _U26) | (wb >> _U6)) & _LO52
    u = fma(float64(int64(k)), _F64_2M52, _F64_2M53)
    v = fma(float64(int64(k ^ _LO52)), _F64_2M52, _F64_2M53)
    return u, v


@pure
def quarter_turn_f64(wa, wb):
    x = (wa << _U32) | wb
    n = int32(((x + _HALF_TURN_64) >> _U62) & _U3)
    g = float64(int64(x << _U2)) * _F64_2M64
    return n, g
