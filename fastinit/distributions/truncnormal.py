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
their own (fastinit.api._truncnorm_regime). An interval the quantile cannot resolve to 1/4096
of its width is drawn by the uniform kernel where its density is flat to within that, or else
(one side of the mean) by the tail form moved to alpha' = 8 with the same bound and rate
alpha' / std. An interval beyond 4096 sigma (exponential) is moved to alpha' = 4096 likewise,
since mean + z std at |z| ~ 1e8 keeps only ulp(z) of the distribution.
"""

from __future__ import annotations

from numba import float32, float64

from .._intrinsics import fma
from .._jit import pure
from ..rng.convert import u01_f32_oo, u01_f64_oo
from .special import log_f64, log_norm_sf_inverse, ndtri_central_f32, ndtri_lower_f32, ndtri_lower_f64

__all__ = [
    "truncnorm_f32",
    "truncnorm_central_f32",
    "truncnorm_f64",
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
    """``truncnorm_f32`` when every p it can form is >= NDTRI_CENTRAL_MIN_P: the same bits."""
    u, v = u01_f32_oo(w)
    t = u * total
    left = t < mass_left
    p = fma(u, total, p_left) if left else fma(v, total, q_right)
    z = ndtri_central_f32(p)
    return fma(z if left else -z, std, mean)


@pure
def truncnorm_f64(wa, wb, mean, std, p_left, q_right, mass_left, total):
    u, v = u01_f64_oo(wa, wb)
    t = u * total
    left = t < mass_left
    p = fma(u, total, p_left) if left else fma(v, total, q_right)
    z = ndtri_lower_f64(p)
    return fma(z if left else -z, std, mean)


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
