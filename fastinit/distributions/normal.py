"""Normal by the Box-Muller transform: two words give two independent normals.

    r = sqrt(-2 log u),  u in (0, 1]  (``u01_f32_oc``: never 0, so log never sees 0)
    (z0, z1) = (r cos t, r sin t),  t = a uniform angle in quarter turns (``quarter_turn_*``)
    x = mean + std * z  (one fused multiply-add)

float32 uses one word for u (|z| <= 6.66) and one for the angle; float64 uses two words each
(53-bit u, |z| <= 8.57, and a 64-bit angle). log, sin and cos are fastinit's own branch-free
polynomials (special.py), so the loop vectorizes and CUDA rounds the same.
"""

from __future__ import annotations

import math

from numba import float32, float64

from .._intrinsics import fma
from .._jit import pure
from ..rng.convert import quarter_turn_f32, quarter_turn_f64, u01_f32_oc, u01_f64_oc
from .special import log_f32, log_f64, sincos_quarter_f32, sincos_quarter_f64

__all__ = ["normal_pair_f32", "normal_pair_f64", "NORMAL_MAX_Z_F32", "NORMAL_MAX_Z_F64"]

# Bounds on |z| = |r cos t|, |r sin t|: r is largest at the smallest u, 2**-32 (float32:
# sqrt(64 ln 2) = 6.6604) and 2**-53 (float64: sqrt(106 ln 2) = 8.5717); the margins cover
# log's < 1.25 ulp. The API refuses a mean and std whose mean + z std can leave the dtype.
NORMAL_MAX_Z_F32 = 6.661
NORMAL_MAX_Z_F64 = 8.572

_M2_F32 = float32(-2.0)
_M2_F64 = float64(-2.0)


@pure
def normal_pair_f32(wa, wb, mean, std):
    r = math.sqrt(_M2_F32 * log_f32(u01_f32_oc(wa)))
    n, g = quarter_turn_f32(wb)
    s, c = sincos_quarter_f32(n, g)
    return fma(r * c, std, mean), fma(r * s, std, mean)


@pure
def normal_pair_f64(wa, wb, wc, wd, mean, std):
    r = math.sqrt(_M2_F64 * log_f64(u01_f64_oc(wa, wb)))
    n, g = quarter_turn_f64(wc, wd)
    s, c = sincos_quarter_f64(n, g)
    return fma(r * c, std, mean), fma(r * s, std, mean)
