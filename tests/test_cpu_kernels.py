"""The CPU kernels' fast paths give the same bits as the per-element functions (issue 17).

- 16-bit outputs are rounded inside the sampling loop of full tiles; the ends of a run still
  go through a float32 scratch tile and a conversion loop: both must give the float32 values
  rounded once to nearest even.
- float64 truncated normal runs a branch-free pass over the quantile's central fits and redoes
  the values whose p falls in its tail region with the general function. Checked against the
  per-element kernel (a stepped ``index=`` runs ``_value_f64``, which never takes the fast path)
  for intervals with no tail values, rare ones, and many.
- float32 truncated normal (central) runs ``truncnorm_central_f32_k``: checked against
  ``truncnorm_central_f32`` for every one of the 2**23 values its word can give.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import fastinit
from fastinit import distributions as D
from fastinit.backends import cpu
from fastinit.backends.plan import FillPlan
from fastinit.distributions import special as S
from fastinit.distributions import truncnormal as TN
from fastinit.rng.streams import derive_key

N = 40_000  # 1,250 float64 tiles: wide intervals put a few tail values in many of them


def _bits(x):
    raw = x.raw if isinstance(x, fastinit.FastArray) else x
    return np.ascontiguousarray(raw).view(np.uint8)


@numba.njit(cache=False)
def _ndtri_both(p):
    central = np.empty(p.size, np.float64)
    flag = np.empty(p.size, np.bool_)
    lower = np.empty(p.size, np.float64)
    for i in range(p.size):
        central[i], flag[i] = S.ndtri_central_f64(p[i])
        lower[i] = S.ndtri_lower_f64(p[i])
    return central, flag, lower


@pytest.mark.slow
def test_ndtri_central_f64_gives_the_same_bits():
    rng = np.random.default_rng(17)
    p = np.concatenate(
        [
            rng.uniform(0.0, 0.5, 400_000),
            np.exp(rng.uniform(np.log(1e-6), np.log(0.5), 400_000)),
            np.nextafter(0.5, 0.0) - np.arange(64) * 2.0**-54,  # next to 1/2
            0.000483 * (1 + np.linspace(-1e-4, 1e-4, 2001)),  # the central region's end
            np.linspace(0.04, 0.07, 20_001),  # across w = 2, where the two central fits meet
        ]
    )
    central, flag, lower = _ndtri_both(p)
    assert flag.mean() > 0.5
    assert not flag[p < 0.00048].any() and flag[p > 0.000484].all()
    np.testing.assert_array_equal(central[flag].view(np.int64), lower[flag].view(np.int64))


@pytest.mark.parametrize(
    "a, b",
    [(-2.0, 2.0), (-4.0, 4.0), (-8.0, 8.0), (-1.0, 7.0), (0.5, 3.0), (-3.4, -3.3), (2.9, 3.5), (-6.0, 6.0)],
)
def test_truncated_normal_float64_fast_path_matches_per_element(a, b):
    kw = dict(seed=5, name="tn64", dtype="float64")
    full = fastinit.truncated_normal((N,), 0.25, 2.0, 0.25 + 2.0 * a, 0.25 + 2.0 * b, **kw).raw
    stepped = fastinit.truncated_normal(
        (N,), 0.25, 2.0, 0.25 + 2.0 * a, 0.25 + 2.0 * b, index=slice(1, None, 2), **kw
    ).raw
    assert full.min() >= 0.25 + 2.0 * a and full.max() <= 0.25 + 2.0 * b
    np.testing.assert_array_equal(_bits(stepped), _bits(full[1::2]))


def _params(dist):
    if dist == D.UNIFORM:
        return [-0.5, 2.0, -0.5, 1.5]
    if dist == D.NORMAL:
        return [0.1, 0.7, -1e30, 1e30]
    pl, qr = 0.022750131948179195, 0.022750131948179195  # Phi(-2), Q(2)
    return [0.0, 0.02, -0.04, 0.04, pl, qr, 0.5 - pl, 1.0 - 2 * pl]


@pytest.mark.parametrize("storage", [np.uint16, np.int16, np.float16])  # bfloat16 bits, float16
@pytest.mark.parametrize("dist", [D.UNIFORM, D.NORMAL, D.TRUNCNORM_CENTRAL, D.TRUNCNORM])
def test_sixteen_bit_fused_rounding_matches_rounding_the_float32_values(dist, storage):
    # 3 + 64 * 300 + 5 values from flat index 61: full tiles in the middle (rounded in the
    # sampling loop), partial ones at both ends (through the scratch and the conversion loop)
    n, start = 3 + 64 * 300 + 5, 61
    plan = FillPlan((), (), (), start, 0, n, 1, 1)
    params = np.zeros(D.N_PARAMS)
    params[: len(_params(dist))] = _params(dist)
    key = derive_key(9, "w").as_array()
    low = np.zeros(n, storage)
    cpu.fill(low, plan, dist, params, key)
    ref = np.zeros(n, np.float32)
    cpu.fill(ref, plan, dist, params, key)
    target = np.float16 if storage != np.uint16 else np.dtype(np.uint16)
    expected = cpu.round_to_storage(ref, target) if storage != np.uint16 else _bfloat16_bits_of(ref)
    np.testing.assert_array_equal(low.view(np.uint16), expected.view(np.uint16))


def _bfloat16_bits_of(x):
    """Round to nearest even, NumPy reference (the values here are finite)."""
    b = x.view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


@numba.njit(cache=False)
def _truncnorm_central_all_k(mean, std, p_left, q_right, mass_left, total):
    """For every k = w >> 9 (the bits the sampler uses): the bits of both formulations."""
    k_left = TN.truncnorm_central_k_left(mass_left, total)
    mismatches = 0
    for k in range(1 << 23):
        w = np.uint64(k) << np.uint64(9)
        a = TN.truncnorm_central_f32(w, mean, std, p_left, q_right, mass_left, total)
        b = TN.truncnorm_central_f32_k(w, mean, std, p_left, q_right, k_left, total)
        if a != b or np.signbit(a) != np.signbit(b):
            mismatches += 1
    return mismatches, k_left


@pytest.mark.slow  # every one of the 2**23 words, six times
@pytest.mark.parametrize(
    "a, b", [(-2.0, 2.0), (-1.0, 2.5), (0.0, 2.0), (-2.9, -0.5), (0.3, 0.30001), (-0.5, 2.9)]
)
def test_truncnorm_central_f32_k_gives_the_same_bits_for_every_k(a, b):
    from scipy.stats import norm

    m = min(max(0.0, a), b)
    p_left, q_right = norm.cdf(a), norm.sf(b)
    mass_left, mass_right = norm.cdf(m) - p_left, norm.sf(m) - q_right
    f = np.float32
    args = (f(0.25), f(0.02), f(p_left), f(q_right), f(mass_left), f(mass_left + mass_right))
    mismatches, k_left = _truncnorm_central_all_k(*args)
    assert mismatches == 0
    assert (k_left == 0) == (mass_left == 0)
