"""Truncated normal: the per-call parameters its kernels read (distributions/truncnormal.py).

``prepare`` takes the interval in units of std and picks how it is drawn, from the parameters
alone (never from the values): the inverse CDF (``TRUNCNORM``, or ``TRUNCNORM_CENTRAL`` where
no probability reaches the quantile's tail region), the log-space tail form
(``TRUNCNORM_TAIL``), or the uniform on [a, b] where the density is flat across an interval
too narrow to resolve (``regime``). It computes the probabilities and masses the kernel reads
in float64 with scipy, laid out as ``fastinit.distributions`` documents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import TRUNCNORM, TRUNCNORM_CENTRAL, TRUNCNORM_TAIL, UNIFORM
from .special import NDTRI_CENTRAL_MIN_P

__all__ = ["REACH", "TruncnormDraw", "prepare", "reach", "regime", "standardize", "tail_distance"]

# Below this mass the interval lies beyond ~11 sigma and its probabilities no longer fit a
# float32: the truncated normal switches to its log-space tail form (distributions/truncnormal).
_TAIL_MASS = 2.0**-90
# The truncated normal's inverse CDF is accurate to about eps (1 + |z|) in z (see regime),
# and an interval it resolves to worse than _NARROW of its width is drawn another way where that
# is closer. The tail form works between _TAIL_Z and _FAR_Z std (see regime).
_QUANTILE_EPS_F32 = 2.0**-21
_QUANTILE_EPS_F64 = 2.0**-50
_NARROW = 2.0**-12
_TAIL_Z = 8.0
_FAR_Z = 4096.0
# how far past the mean or the nearer bound (in std) the truncated normal's kernels can reach
REACH = 14.2


@dataclass(frozen=True)
class TruncnormDraw:
    """How an interval is drawn: ``regime`` ("inverse_cdf", "tail" or "uniform"), the
    distribution code the kernels dispatch on and its parameter values, in the order
    ``fastinit.distributions`` documents for that code."""

    regime: str
    code: int
    values: tuple[float, ...]


def reach(alpha: float, beta: float) -> tuple[float, float]:
    """The farthest values, in std from the mean, the kernels can produce on each side: a
    bound, or ``REACH`` std past the mean or the nearer bound (the smallest probability they
    form, 2**-143, has |z| < 14.1)."""
    return max(alpha, min(beta, 0.0) - REACH), min(beta, max(alpha, 0.0) + REACH)


def prepare(
    mean: float,
    std: float,
    a: float,
    b: float,
    lo: float,
    hi: float,
    *,
    alpha: float,
    beta: float,
    width: float,
    float32_compute: bool,
) -> TruncnormDraw:
    """The draw of N(mean, std**2) truncated to [a, b] (std > 0): alpha, beta are the bounds in
    std about the mean and width = beta - alpha as precisely as known; lo, hi the clamp
    interval in the output dtype. The caller validates the parameters."""
    from scipy import special  # imported here: it costs ~0.3 s, and only this sampler needs it

    split = min(max(0.0, alpha), beta)
    p_left = float(special.ndtr(alpha))
    q_right = float(special.ndtr(-beta))
    mass_left = float(special.ndtr(split) - special.ndtr(alpha))
    mass_right = float(special.ndtr(-split) - special.ndtr(-beta))
    total = mass_left + mass_right
    sign = 1.0 if alpha >= 0 else -1.0
    near, far = (alpha, beta) if sign > 0 else (-beta, -alpha)
    how = regime(alpha, beta, width, near, total, float32_compute)
    if how == "uniform":
        return TruncnormDraw(how, UNIFORM, (a, b - a, lo, hi))
    if how == "inverse_cdf":
        # every p formed lies between the bounds' tail probabilities and 1/2; when those are
        # not in the quantile's tail region, the kernel that skips it gives the same bits
        central = (
            float32_compute
            and (mass_left == 0 or p_left >= NDTRI_CENTRAL_MIN_P)
            and (mass_right == 0 or q_right >= NDTRI_CENTRAL_MIN_P)
        )
        code = TRUNCNORM_CENTRAL if central else TRUNCNORM
        return TruncnormDraw(how, code, (mean, std, lo, hi, p_left, q_right, mass_left, total))
    # One side of the mean, in log space: reflected to the right tail and, where it is not
    # already there, moved to a distance the tail form handles (see regime).
    target = tail_distance(near)
    if target != near:
        bound = a if sign > 0 else b
        far = target + width * (near / target)
        std = std * (target / near)
        near = target
        mean = bound - sign * near * std
    logq_near = float(special.log_ndtr(-near))
    ratio = 0.0 if math.isinf(far) else math.exp(float(special.log_ndtr(-far)) - logq_near)
    return TruncnormDraw(how, TRUNCNORM_TAIL, (mean, std, lo, hi, sign, logq_near, ratio))


def standardize(x: float, mean: float, std: float) -> float:
    """(x - mean) / std, also where x - mean overflows but the quotient does not."""
    d = x - mean
    if math.isinf(d) and not math.isinf(x):
        return x / std - mean / std
    return d / std


def tail_distance(near: float) -> float:
    """Where the tail form draws an interval whose nearer bound is ``near`` std from the mean:
    there if in [_TAIL_Z, _FAR_Z] (its Newton inverse needs >= 8; beyond _FAR_Z, mean + z std
    keeps only ulp(z) of the distribution), else the nearest end of that range."""
    return min(max(near, _TAIL_Z), _FAR_Z)


def regime(alpha: float, beta: float, width: float, near: float, total: float, float32_compute: bool) -> str:
    """How truncated_normal draws [alpha, beta]: "inverse_cdf", "tail" or "uniform".

    By default the inverse CDF, or the tail form when the mass is below _TAIL_MASS. Their
    error in z is about eps (1 + |z|) (special.py: the quantile's relative error 3.4e-7 in
    float32, 4e-16 in float64, plus the rounding of p). An interval narrower than 4096 such
    errors (``_NARROW``) is not resolved, and takes whichever of these is closer:

    - the uniform on [a, b]: its CDF is off by at most delta / 2 of the interval, delta the
      range of the log density over it;
    - on one side of the mean, the tail form (float64 inside) moved to distance
      t' = tail_distance(near) with the same bound and rate near / std: the log density
      -(near t + t**2 / 2) at t std past the bound becomes -(near t + t**2 / (2 k**2)),
      k = t' / near, so the CDF is off by at most t**2 |1 - 1/k**2| / 4 over the t that
      carries the mass (at most the width, and 40 / near: e**-40 lies beyond), plus the tail
      form's own error.

    The resolution test keeps the bits of every interval that was already resolved.
    """
    # the tail form's error in z: its own at distance t', scaled back by k = t' / near
    tail_error = math.inf
    if near > 0:
        k = tail_distance(near) / near
        tail_error = _QUANTILE_EPS_F64 * (1.0 + tail_distance(near)) * k
    if total >= _TAIL_MASS:
        default = "inverse_cdf"
        eps = _QUANTILE_EPS_F32 if float32_compute else _QUANTILE_EPS_F64
        error = eps * (1.0 + min(max(abs(alpha), abs(beta)), max(near, 0.0) + 9.0))
    else:
        default, error = "tail", tail_error
    if math.isinf(width) or error <= _NARROW * width:
        return default
    if width == 0:  # narrower than float64 resolves, in units of std
        return "uniform"
    if alpha >= 0 or beta <= 0:  # one side of the mean: (beta**2 - alpha**2) / 2
        delta = width * abs(alpha + beta) / 2
    else:
        delta = max(alpha * alpha, beta * beta) / 2
    uniform = delta / 2
    if near <= 0:
        return "uniform"
    t = min(width, 40.0 / near)
    tail = t * t * abs(1.0 - 1.0 / (k * k)) / 4 + tail_error / width
    return "uniform" if uniform <= tail else "tail"
