"""Truncated normal on [a, b] by the inverse CDF, exact in both tails.

With alpha = (a - mean) / std and beta = (b - mean) / std, the interval is split at
m = clip(0, alpha, beta). Each side is sampled from the tail probability nearer to it, which
float arithmetic represents with full relative precision however far out it is:

    left side  [alpha, m]:  p = Phi(alpha) + t,        x = ndtri(p)      (p <= 1/2)
    right side [m, beta]:   p = Q(beta) + (1 - u) T,   x = -ndtri(p)     (Q = 1 - Phi)

where u is uniform on (0, 1) with 1 - u exact (``u01_*_oo``), T is the mass of [alpha, beta]
and t = u T; the left side is taken when t < (mass of the left side). No draw is ever
rejected, so each element consumes exactly one value of its counter (the stream invariant).
Phi(alpha), Q(beta) and the masses are computed once per call in float64 by the caller.

When both bounds lie within about 2.9 std of the mean (Phi(alpha), Q(beta) >= 0.0018), no
p can reach the tail region of the quantile, and ``truncnorm_central_f32`` skips it: the same
bits, faster (the caller picks it per call, from the parameters alone).

When the whole interval lies beyond about 11 sigma (T < 2**-90), probabilities no longer fit
a float32 and the *tail* form is used instead, in float64 and in log space:

    log p = log Q(alpha') + log(r + (1 - u)(1 - r)),  r = Q(beta') / Q(alpha'),
    x = sign * Qinv(log p)

with the interval reflected to the right tail ([alpha', beta'], sign = -1 if it was on the
left) and Qinv by Newton's method on log Q (special.log_norm_sf_inverse). The caller clamps
every value to [a, b] (rounded into the output dtype), so the support is exact.

The limits are handled by the caller's choice of kernel and parameters, with no kernel of
their own (truncnormal_params.regime). An interval the quantile cannot resolve to 1/4096
of its width is drawn by the uniform kernel where its density is flat to within that, or else
(one side of the mean) by the tail form moved to alpha' = 8 with the same bound and rate
alpha' / std. An interval beyond 4096 sigma (exponential) is moved to alpha' = 4096 likewise,
since mean + z std at |z| ~ 1e8 keeps only ulp(z) of the distribution.
"""

from __future__ import annotations

from numba import float32, float64, int32, int64, uint64

from .._intrinsics import fma, i32_as_f32
from .._jit import pure
from ..rng.convert import u01_f32_oo, u01_f64_oo
from .special import (
    log_f64,
    log_norm_sf_inverse,
    ndtri_central_f32,
    ndtri_central_f64,
    ndtri_lower_f32,
    ndtri_lower_f64,
)

__all__ = [
    "truncnorm_f32",
    "truncnorm_central_f32",
    "truncnorm_central_f32_k",
    "truncnorm_central_k_left",
    "truncnorm_f64",
    "truncnorm_central_f64",
    "truncnorm_tail_f32",
    "truncnorm_tail_f64",
]

_ONE_F64 = float64(1.0)


@pure
def truncnorm_f32(w, mean, std, p_left, q_right, mass_left, total):
    u, v = u01_f32_oo(w)
    t = u * total
    left = t < mass_left
    p = fma(u, total, p_left) if left else fma(v, total, q_right)
    z = ndtri_lower_f32(p)
    return fma(z if left else -z, std, mean)


@pure
def truncnorm_central_f32(w, mean, std, p_left, q_right, mass_left, total):
    """``truncnorm_f32`` when every p it can form is >= NDTRI_CENTRAL_MIN_P: the same bits.

    A copy of truncnorm_f32 with the central quantile only, on purpose: it skips the tail
    polynomial and square root ``ndtri_lower_f32`` evaluates for every lane (a quarter fewer
    instructions per value in the vector loop)."""
    u, v = u01_f32_oo(w)
    t = u * total
    left = t < mass_left
    p = fma(u, total, p_left) if left else fma(v, total, q_right)
    z = ndtri_central_f32(p)
    return fma(z if left else -z, std, mean)


_U9 = uint64(9)
_LO23 = uint64(0x7FFFFF)
_ONE_BITS_F32 = uint64(0x3F800000)
_ONE_MINUS_2M24_F32 = float32(1.0 - 2.0**-24)
_TWO_23 = 1 << 23


@pure
def truncnorm_central_k_left(mass_left, total):
    """The k_left of ``truncnorm_central_f32_k``: how many of the 2**23 values k = w >> 9 take
    the left side in ``truncnorm_central_f32``, i.e. have fl(u total) < mass_left (u from
    ``u01_f32_oo``). Those k are a prefix: u grows with k and rounding is monotonic. Found by
    bisection in the same float32 arithmetic, once per call."""
    lo, hi = 0, _TWO_23
    while lo < hi:
        mid = (lo + hi) // 2
        u, _ = u01_f32_oo(uint64(mid) << _U9)
        if u * total < mass_left:
            lo = mid + 1
        else:
            hi = mid
    return lo


@pure
def truncnorm_central_f32_k(w, mean, std, p_left, q_right, k_left, total):
    """``truncnorm_central_f32`` with the same bits in fewer operations, for the CPU's loops.

    - left = k < k_left (``truncnorm_central_k_left``): an integer compare, no product;
    - the side's uniform is picked before it is made: u = (2k + 1) 2**-24 on the left,
      v = 1 - u = (2 (k ^ (2**23 - 1)) + 1) 2**-24 on the right, each built exactly as
      1 + k' 2**-23 (k' in the mantissa bits of 1.0) minus 1 - 2**-24 (Sterbenz: exact);
    - one fused multiply-add for p, with the operands of its side selected;
    - the sign of z moved onto std: fma(-z, std, mean) = fma(z, -std, mean) exactly.
    """
    k = w >> _U9
    left = int64(k) < k_left
    kk = k if left else k ^ _LO23
    uv = i32_as_f32(int32(kk | _ONE_BITS_F32)) - _ONE_MINUS_2M24_F32
    p = fma(uv, total, p_left if left else q_right)
    z = ndtri_central_f32(p)
    return fma(z, std if left else -std, mean)


@pure
def truncnorm_f64(wa, wb, mean, std, p_left, q_right, mass_left, total):
    u, v = u01_f64_oo(wa, wb)
    t = u * total
    left = t < mass_left
    p = fma(u, total, p_left) if left else fma(v, total, q_right)
    z = ndtri_lower_f64(p)
    return fma(z if left else -z, std, mean)


@pure
def truncnorm_central_f64(wa, wb, mean, std, p_left, q_right, mass_left, total):
    """(x, central): ``truncnorm_f64``'s value with the same bits where ``central`` (its p is
    outside the quantile's tail region), branch-free; the caller recomputes the others."""
    u, v = u01_f64_oo(wa, wb)
    t = u * total
    left = t < mass_left
    p = fma(u, total, p_left) if left else fma(v, total, q_right)
    z, central = ndtri_central_f64(p)
    return fma(z if left else -z, std, mean), central


@pure
def _tail(v, sign, logq_near, ratio, mean, std):
    rel = fma(v, _ONE_F64 - ratio, ratio)
    z = log_norm_sf_inverse(logq_near + log_f64(rel))
    return fma(sign * z, std, mean)


@pure
def truncnorm_tail_f32(w, sign, logq_near, ratio, mean, std):
    _, v = u01_f32_oo(w)
    return float32(_tail(float64(v), sign, logq_near, ratio, mean, std))


@pure
def truncnorm_tail_f64(wa, wb, sign, logq_near, ratio, mean, std):
    _, v = u01_f64_oo(wa, wb)
    return _tail(v, sign, logq_near, ratio, mean, std)
