"""Special functions, written so the same source compiles for the CPU and for CUDA.

There is no SVML on the CPU and libm's log/sin/cos are scalar calls, which stop LLVM from
vectorizing a loop, and they round differently from CUDA's libdevice. So fastinit has its own:
polynomials fitted by ``tools/fit_special.py`` (coefficients in ``_coefficients.py``), with
every multiply-add an explicit ``fma`` and no branches in the float32 versions (``where``-style
selects instead), so the float32 loop bodies vectorize and both targets round identically.

Accuracy (measured by tests/test_special.py against mpmath/scipy):

- ``log_f32``: < 1 ulp for normal positive floats; ``log_f64``: < 1.25 ulp.
- ``sincos_quarter_f32/f64``: sin and cos of (n + g) quarter turns, abs error < 1.45 * 2**-24
  (float32) and < 1.45 * 2**-53 (float64).
- ``ndtri_lower_f32(p)``: normal quantile for p in [2**-126, 1/2], relative error < 3.4e-7
  (4.4 ulp); ``ndtri_central_f32`` is the same function restricted to p >= 0.0018.
- ``ndtri_lower_f64(p)``: normal quantile for p in [1e-300, 1/2], relative error < 4e-16.
- ``log_norm_sf_inverse(logq)``: the x >= 8 with log Q(x) = logq (Q = upper tail), for
  tails beyond what p can represent.
"""

from __future__ import annotations

import math

import numpy as np
from numba import float32, float64, int32, int64

from .._intrinsics import f32_as_i32, f64_as_i64, fma, i32_as_f32, i64_as_f64, select
from .._jit import pure
from . import _coefficients as K

__all__ = [
    "horner",
    "log_f32",
    "log_f64",
    "sincos_quarter_f32",
    "sincos_quarter_f64",
    "ndtri_lower_f32",
    "ndtri_central_f32",
    "NDTRI_CENTRAL_MIN_P",
    "ndtri_lower_f64",
    "ndtri_central_f64",
    "NDTRI_CENTRAL_MAX_W_F64",
    "log_norm_sf_inverse",
]


def _table(entry, cast):
    center, coeffs = entry
    return cast(center), tuple(cast(c) for c in coeffs)


_LOG1P_F32 = _table(K.LOG1P_F32, float32)[1]
_LOG1P_T_F64 = _table(K.LOG1P_T_F64, float64)[1]
_SINQ_F32 = _table(K.SINQ_F32, float32)[1]
_COSQ_F32 = _table(K.COSQ_F32, float32)[1]
_SINQ_F64 = _table(K.SINQ_F64, float64)[1]
_COSQ_F64 = _table(K.COSQ_F64, float64)[1]
_NDTRI_C_F32 = _table(K.NDTRI_CENTRAL_F32, float32)[1]
_NDTRI_T_CENTER_F32, _NDTRI_T_F32 = _table(K.NDTRI_TAIL_F32, float32)
_NDTRI_CA_F64 = _table(K.NDTRI_CENTRAL_A_F64, float64)
_NDTRI_CB_F64 = _table(K.NDTRI_CENTRAL_B_F64, float64)
_NDTRI_TA_F64 = _table(K.NDTRI_TAIL_A_F64, float64)
_NDTRI_TB_F64 = _table(K.NDTRI_TAIL_B_F64, float64)
_NDTRI_TC_F64 = _table(K.NDTRI_TAIL_C_F64, float64)
_NDTRI_TD_F64 = _table(K.NDTRI_TAIL_D_F64, float64)

# Region boundaries of the fits (tools/fit_special.py): w = -log(4 p (1 - p)).
_W_SPLIT_F32 = float32(5.0)
# p >= this keeps w < 4.93, safely inside the central region (w < 5 at p = 0.001688)
NDTRI_CENTRAL_MIN_P = 0.0018
_W_SPLIT_A_F64 = float64(2.0)
_W_SPLIT_B_F64 = float64(6.25)
_S_SPLIT_A_F64 = float64(4.0)
_S_SPLIT_B_F64 = float64(8.0)
_S_SPLIT_C_F64 = float64(14.0)

# log: x = 2**e * m with m in [sqrt(1/2), sqrt(2)); the offset is the bit pattern of sqrt(1/2)
_SQRT_HALF_BITS_F32 = int32(0x3F3504F3)
_SQRT_HALF_BITS_M2_F32 = int32(0x3F3504F3 - (2 << 23))  # the bits of sqrt(1/2) / 4
_MANT_MASK_F32 = int32(0x007FFFFF)
_SQRT_HALF_BITS_F64 = int64(0x3FE6A09E667F3BCD)
_MANT_MASK_F64 = int64(0x000FFFFFFFFFFFFF)
_LN2_F32 = float32(0.6931471805599453)
_LN2_HI_F64 = float64(6.93147180369123816490e-01)  # ln 2 to 32 bits: e * LN2_HI is exact
_LN2_LO_F64 = float64(1.90821492927058770002e-10)  # ln 2 - LN2_HI
_HALF_F32 = float32(0.5)
_ONE_F32 = float32(1.0)
_TWO_F32 = float32(2.0)
_FOUR_F32 = float32(4.0)
_ONE_F64 = float64(1.0)
_TWO_F64 = float64(2.0)
_FOUR_F64 = float64(4.0)
_MIN_NORMAL_F32 = float32(2.0**-126)
_I23 = int32(23)
_I52 = int64(52)
_I1 = int32(1)
_I2 = int32(2)


@pure
def horner(x, coeffs):
    """coeffs[0] + coeffs[1] x + ... by Horner's rule with fused multiply-adds."""
    acc = coeffs[len(coeffs) - 1]
    for k in range(len(coeffs) - 2, -1, -1):
        acc = fma(acc, x, coeffs[k])
    return acc


@pure
def _log_f32_of_bits(bits):
    """log_f32 of the float32 whose bit pattern is bits + the bits of sqrt(1/2)."""
    e = int32(bits >> _I23)  # arithmetic shift: the exponent relative to sqrt(1/2)
    m = i32_as_f32(int32((bits & _MANT_MASK_F32) + _SQRT_HALF_BITS_F32))
    f = m - _ONE_F32
    p = horner(f, _LOG1P_F32)
    log1p_f = fma(f * f, fma(f, p, -_HALF_F32), f)
    return fma(float32(e), _LN2_F32, log1p_f)


@pure
def log_f32(x):
    """Natural log of a positive normal float32 (no special cases: callers pass x >= 2**-126)."""
    return _log_f32_of_bits(int32(f32_as_i32(x) - _SQRT_HALF_BITS_F32))


@pure
def _log4_f32(y):
    """log_f32(4 y) for y >= 2**-126 (4 y normal and finite), without the multiply: the bit
    pattern of 4 y is y's with 2 added to the exponent field."""
    return _log_f32_of_bits(int32(f32_as_i32(y) - _SQRT_HALF_BITS_M2_F32))


@pure
def log_f64(x):
    """Natural log of a positive normal float64 (no special cases)."""
    bits = int64(f64_as_i64(x) - _SQRT_HALF_BITS_F64)
    e = float64(int64(bits >> _I52))
    m = i64_as_f64(int64((bits & _MANT_MASK_F64) + _SQRT_HALF_BITS_F64))
    f = m - _ONE_F64
    s = f / (_TWO_F64 + f)
    t = horner(s * s, _LOG1P_T_F64)
    log1p_f = fma(-s, f - t, f)
    return fma(e, _LN2_HI_F64, fma(e, _LN2_LO_F64, log1p_f))


@pure
def _rotate(n, s, c):
    """(sin, cos) of the angle (s, c) rotated by n quarter turns, without branches."""
    odd = (n & _I1) != 0
    sin_r = c if odd else s
    cos_r = s if odd else c
    sin_r = -sin_r if (n & _I2) != 0 else sin_r
    cos_r = -cos_r if ((n + _I1) & _I2) != 0 else cos_r
    return sin_r, cos_r


@pure
def sincos_quarter_f32(n, g):
    """(sin, cos) of (n + g) quarter turns, n integer, g in [-1/2, 1/2]."""
    g2 = g * g
    return _rotate(n, g * horner(g2, _SINQ_F32), horner(g2, _COSQ_F32))


@pure
def sincos_quarter_f64(n, g):
    g2 = g * g
    return _rotate(n, g * horner(g2, _SINQ_F64), horner(g2, _COSQ_F64))


@pure
def _ndtri_w_f32(p):
    """Giles's variable w = -log(4 p (1 - p)) for p in [2**-126, 1/2]."""
    return -log_f32(_FOUR_F32 * p * (_ONE_F32 - p))


@pure
def _ndtri_central_f32(p, w):
    return fma(_TWO_F32, p, -_ONE_F32) * horner(w, _NDTRI_C_F32)


@pure
def ndtri_lower_f32(p):
    """Normal quantile x <= 0 with Phi(x) = p, for p in [2**-126, 1/2]; branch-free."""
    p = max(p, _MIN_NORMAL_F32)
    w = _ndtri_w_f32(p)
    tail = -horner(math.sqrt(w) - _NDTRI_T_CENTER_F32, _NDTRI_T_F32)
    return _ndtri_central_f32(p, w) if w < _W_SPLIT_F32 else tail


@pure
def ndtri_central_f32(p):
    """``ndtri_lower_f32`` restricted to p >= NDTRI_CENTRAL_MIN_P (|x| < 2.9), same bits there.

    Skips the tail polynomial and its square root: the truncated normal uses it when no draw
    can reach the tail region (both bounds within about 2.9 std of the mean). w is formed as
    -log(4 y), y = p (1 - p), with the factor 4 added to y's exponent bits: fl(fl(4 p) (1 - p))
    = 4 fl(p (1 - p)) exactly, as 4 p is exact and y is a normal float here.
    """
    return _ndtri_central_f32(p, -_log4_f32(p * (_ONE_F32 - p)))


@pure
def _poly_at(x, table):
    return horner(x - table[0], table[1])


@pure
def ndtri_lower_f64(p):
    """Normal quantile x <= 0 with Phi(x) = p, for p in [1e-300, 1/2]."""
    w = -log_f64(_FOUR_F64 * p * (_ONE_F64 - p))
    if w < _W_SPLIT_B_F64:
        two_p_minus_1 = fma(_TWO_F64, p, -_ONE_F64)
        if w < _W_SPLIT_A_F64:
            return two_p_minus_1 * _poly_at(w, _NDTRI_CA_F64)
        return two_p_minus_1 * _poly_at(w, _NDTRI_CB_F64)
    s = math.sqrt(w)
    if s < _S_SPLIT_A_F64:
        return -_poly_at(s, _NDTRI_TA_F64)
    if s < _S_SPLIT_B_F64:
        return -_poly_at(s, _NDTRI_TB_F64)
    if s < _S_SPLIT_C_F64:
        return -_poly_at(s, _NDTRI_TC_F64)
    return -_poly_at(s, _NDTRI_TD_F64)


# The two central fits as one Horner sequence of 19 steps: region A's 16 coefficients padded
# with three zeros of the highest orders. fma(0, x, 0) = 0 and fma(+-0, x, c) = c exactly, so on region A the
# padded sequence rounds exactly as horner over A's own coefficients.
_NDTRI_CA_PAD_F64 = np.array(_NDTRI_CA_F64[1] + (0.0,) * (len(_NDTRI_CB_F64[1]) - len(_NDTRI_CA_F64[1])))
_NDTRI_CB_ARR_F64 = np.array(_NDTRI_CB_F64[1])
# ndtri_central_f64 agrees with ndtri_lower_f64 for w below this (the start of its tail fits)
NDTRI_CENTRAL_MAX_W_F64 = float(_W_SPLIT_B_F64)


@pure
def _horner_select(x, cond, ca, cb):
    """horner(x, ca) if cond else horner(x, cb), for coefficient arrays of one length: one
    Horner sequence whose coefficients are selected per value, without branches.

    Arrays, not tuples: a tuple indexed by the loop counter compiles to a switch per step,
    and with 19 steps LLVM then neither unrolls the loop nor vectorizes the loop around it;
    loads from a global (constant) array unroll and fold to constants.
    """
    n = ca.size
    acc = select(cond, ca[n - 1], cb[n - 1])
    for k in range(n - 2, -1, -1):
        acc = fma(acc, x, select(cond, ca[k], cb[k]))
    return acc


@pure
def ndtri_central_f64(p):
    """(x, central): ``ndtri_lower_f64(p)`` with the same bits where ``central`` (w < 6.25,
    p > ~0.00048), without branches, so a loop over it vectorizes; x is meaningless elsewhere.

    Both central fits run as one Horner sequence whose coefficients are selected per value
    (region A padded with leading zeros, which leave its roundings unchanged).
    """
    w = -log_f64(_FOUR_F64 * p * (_ONE_F64 - p))
    in_a = w < _W_SPLIT_A_F64
    x = w - select(in_a, _NDTRI_CA_F64[0], _NDTRI_CB_F64[0])
    acc = _horner_select(x, in_a, _NDTRI_CA_PAD_F64, _NDTRI_CB_ARR_F64)
    return fma(_TWO_F64, p, -_ONE_F64) * acc, w < _W_SPLIT_B_F64


_HALF_LOG_2PI = float64(0.91893853320467274178)
_LOG_2PI = float64(1.8378770664093454836)
_MILLS_TERMS = 40
_NEWTON_STEPS = 6
_MINUS_HALF_F64 = float64(-0.5)


@pure
def _mills_denominator(x):
    """1 / Mills ratio = phi(x) / Q(x), by the continued fraction x + 1/(x + 2/(x + 3/(x + ...))).

    40 terms reach float64 precision for x >= 8.
    """
    acc = x
    for k in range(_MILLS_TERMS, 0, -1):
        acc = x + float64(k) / acc
    return acc


@pure
def log_norm_sf_inverse(logq):
    """The x >= 8 with log Q(x) = logq, where Q is the normal upper tail and logq <= -35.

    Newton's method on log Q(x) = -x**2/2 - log(2 pi)/2 - log(d(x)), whose derivative is
    -d(x) (d from ``_mills_denominator``), from the asymptotic start x**2 ~ -2 logq -
    log(-2 logq) - log(2 pi). A fixed number of steps keeps it a pure function.
    """
    y = -2.0 * logq
    x = math.sqrt(y - log_f64(y) - _LOG_2PI)
    for _ in range(_NEWTON_STEPS):
        d = _mills_denominator(x)
        logq_x = fma(_MINUS_HALF_F64 * x, x, -log_f64(d) - _HALF_LOG_2PI)
        x = x + (logq_x - logq) / d
    return x
