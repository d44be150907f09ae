"""Per-value helpers both backends compile: a distribution's value from its Philox word(s)
and the 8 float64 parameters ``p``, clamped to the output's interval.

The CPU kernels (backends/cpu.py) call them inside their tile loops and per element; the CUDA
kernels (backends/cuda/) call the very same functions, so both targets run the same operations
in the same order and produce the same bits. ``p`` holds (mean or low, std or scale, lo, hi,
p_left, q_right, mass_left, total); see api.py for how each sampler fills it.
"""

from __future__ import annotations

from numba import float32

from .._jit import loop, pure
from ..distributions.truncnormal import (
    truncnorm_central_f32,
    truncnorm_f32,
    truncnorm_f64,
    truncnorm_tail_f32,
    truncnorm_tail_f64,
)

__all__ = [
    "clamp",
    "f32_params",
    "truncnorm_f32_at",
    "truncnorm_central_f32_at",
    "tail_f32_at",
    "truncnorm_f64_at",
    "tail_f64_at",
]


@pure
def clamp(x, lo, hi):
    return min(max(x, lo), hi)


@pure
def f32_params(p):
    """The 8 parameters as a tuple of float32 (loaded once, before a loop)."""
    return (
        float32(p[0]), float32(p[1]), float32(p[2]), float32(p[3]),
        float32(p[4]), float32(p[5]), float32(p[6]), float32(p[7]),
    )  # fmt: skip


@pure
def truncnorm_f32_at(w, q):
    """Truncated normal, float32, of word w; q: ``f32_params(p)``."""
    return clamp(truncnorm_f32(w, q[0], q[1], q[4], q[5], q[6], q[7]), q[2], q[3])


@pure
def truncnorm_central_f32_at(w, q):
    """As truncnorm_f32_at for an interval whose quantiles stay central (the same values)."""
    return clamp(truncnorm_central_f32(w, q[0], q[1], q[4], q[5], q[6], q[7]), q[2], q[3])


@loop
def tail_f32_at(w, p):
    """Truncated normal far in a tail, float32, of word w."""
    v = truncnorm_tail_f32(w, p[4], p[5], p[6], p[0], p[1])
    return clamp(v, float32(p[2]), float32(p[3]))


@loop
def truncnorm_f64_at(wa, wb, p):
    """Truncated normal, float64, of the word pair (wa, wb)."""
    v = truncnorm_f64(wa, wb, p[0], p[1], p[4], p[5], p[6], p[7])
    return clamp(v, p[2], p[3])


@loop
def tail_f64_at(wa, wb, p):
    """Truncated normal far in a tail, float64, of the word pair (wa, wb)."""
    return clamp(truncnorm_tail_f64(wa, wb, p[4], p[5], p[6], p[0], p[1]), p[2], p[3])
