"""Uniform on [low, high): x = low + (high - low) * u, clamped to [lo, hi].

u is ``u01_f32_co`` (24 bits, [0, 1 - 2**-24]) or ``u01_f64_co`` (53 bits). The product-sum
is one fused multiply-add. The caller passes lo = low and hi = the largest value of the
output dtype below high, so rounding can never reach high: the interval is half-open in the
output dtype too.
"""

from __future__ import annotations

from .._intrinsics import fma
from .._jit import pure
from ..rng.convert import u01_f32_co, u01_f64_co

__all__ = ["uniform_f32", "uniform_f64"]


@pure
def uniform_f32(w, low, scale, lo, hi):
    return min(max(fma(u01_f32_co(w), scale, low), lo), hi)


@pure
def uniform_f64(wa, wb, low, scale, lo, hi):
    return min(max(fma(u01_f64_co(wa, wb), scale, low), lo), hi)
