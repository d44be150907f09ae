"""float32 -> bfloat16 / float16 bit patterns, rounded to nearest, ties to even, once.

Integer code only (plus one float add for float16 subnormals), no branches, so the store loop
vectorizes and CUDA produces the same bits. Inputs are float32 values computed by the
samplers; NaN stays NaN (quiet), overflow becomes infinity, float16 subnormals are exact.
"""

from __future__ import annotations

from numba import float32, uint16, uint32

from .._intrinsics import f32_as_i32, select
from .._jit import pure

__all__ = ["bfloat16_bits", "float16_bits"]

_ABS = uint32(0x7FFFFFFF)
_INF32 = uint32(0x7F800000)
_ONE = uint32(1)
_U13 = uint32(13)
_U16 = uint32(16)
_BF16_ROUND = uint32(0x7FFF)
_BF16_QUIET = uint32(0x0040)
_F16_SIGN = uint32(0x8000)
_F16_INF = uint32(0x7C00)
_F16_QUIET = uint32(0x0200)
_F16_OVERFLOW = uint32(0x477FF000)  # 65520: rounds to infinity
_F16_MIN_NORMAL = uint32(0x38800000)  # 2**-14
_F16_REBIAS = uint32(0x38000000)  # (127 - 15) << 23
_F16_ROUND = uint32(0xFFF)
_HALF_F32 = float32(0.5)
_HALF_BITS = uint32(0x3F000000)


# Every intermediate is cast back to uint32: Numba widens uint32 arithmetic to uint64, and
# the casts let LLVM keep 8 lanes per AVX2 vector instead of 4.


@pure
def bfloat16_bits(x):
    b = uint32(f32_as_i32(x))
    odd = uint32(uint32(b >> _U16) & _ONE)
    rounded = uint32(uint32(b + uint32(_BF16_ROUND + odd)) >> _U16)  # wraps only for NaN
    nan = uint32(uint32(b >> _U16) | _BF16_QUIET)
    return uint16(select(uint32(b & _ABS) > _INF32, nan, rounded))


@pure
def float16_bits(x):
    b = uint32(f32_as_i32(x))
    sign = uint32(uint32(b >> _U16) & _F16_SIGN)
    a = uint32(b & _ABS)
    # normal range: drop 13 mantissa bits with rounding after re-biasing the exponent
    m = uint32(a - _F16_REBIAS)
    odd = uint32(uint32(m >> _U13) & _ONE)
    normal = uint32(uint32(m + uint32(_F16_ROUND + odd)) >> _U13)
    # subnormal range: |x| + 1/2 puts the float16 subnormal step (2**-24) at the last bit
    sub = uint32(uint32(f32_as_i32(abs(x) + _HALF_F32)) - _HALF_BITS)
    r = select(a >= _F16_MIN_NORMAL, normal, sub)
    r = select(a >= _F16_OVERFLOW, _F16_INF, r)
    r = select(a > _INF32, uint32(_F16_INF | _F16_QUIET), r)
    return uint16(sign | r)
