"""Finite parameters never give NaN, inf or a collapsed distribution (issue #14 items 4, 5).

Every sampler call with finite parameters either returns finite values inside the documented
interval, with the right distribution, or raises a one-line ValueError / TypeError naming the
parameter. The limits of the truncated normal are checked against their exact shapes:

- an interval narrow against std (or near the mean) has a nearly flat density: the sampler
  draws the uniform on [a, b] there (see samplers.truncated_normal), compared with the exact
  truncated-normal CDF;
- an interval far out in a tail has an exponential-like density: compared with the exact CDF
  in local coordinates.

Statistical checks are KS tests at fixed seeds against the exact CDF, thresholds at p = 1e-4
(a correct sampler fails one with probability 1e-4).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special as sc
from scipy import stats

import fastinit
from fastinit import dtypes

KS_P = 1e-4
N = 100_000
DTYPES = ("float32", "float64", "float16", "bfloat16")


def _values(x) -> np.ndarray:
    x = np.asarray(x) if str(x.dtype) != "fastinit.bfloat16" else x.numpy()
    return np.asarray(x).astype(np.float64)


def _local_cdf(mean, std, a, b):
    """The exact CDF of N(mean, std**2) truncated to finite [a, b], in local coordinates.

    With s = (x - a) / (b - a) in [0, 1], the density is proportional to
    exp(-(alpha + s w)**2 / 2) = exp(-alpha**2 / 2) exp(-s alpha w - s**2 w**2 / 2),
    w = beta - alpha: the second factor is evaluated without cancellation however narrow or
    far the interval is, and integrated on a fine grid (error < 1e-9 here).
    """
    alpha = a / std - mean / std
    w = (b - a) / std
    s = np.linspace(0.0, 1.0, 200_001)
    log_g = -s * alpha * w - (s * w) ** 2 / 2
    g = np.exp(log_g - log_g.max())
    cdf = np.concatenate([[0.0], np.cumsum((g[1:] + g[:-1]) / 2)])
    cdf /= cdf[-1]
    return lambda x: np.interp((np.asarray(x) - a) / (b - a), s, cdf)


def _exp_tail_cdf(mean, std, bound, side):
    """CDF of N(mean, std**2) truncated to [bound, inf) (side +1) or (-inf, bound] (side -1),
    in local coordinates t = |x - bound| / std: density exp(-near t - t**2 / 2)."""
    near = abs(bound / std - mean / std)

    def cdf(x):
        t = side * (np.asarray(x) - bound) / std
        # P(T <= t) = 1 - Q(near + t) / Q(near); far out, near + t would lose t, so the ratio
        # is taken from log Q(z) = -z**2 / 2 - log z + c + O(z**-2) (error O(t / near**3))
        if near > 100:
            log_ratio = -(near * t + t * t / 2) - np.log1p(t / near)
        else:
            log_ratio = sc.log_ndtr(-(near + t)) - sc.log_ndtr(-near)
        tail = np.exp(log_ratio)
        return 1.0 - tail if side > 0 else tail

    return cdf


def _ks_ok(x, cdf):
    return stats.kstest(x, cdf).pvalue > KS_P


# ---- item 4: truncated normal, narrow and far intervals ----------------------------------------

NARROW = [
    # (mean, std, a, b, dtype): the cases and their neighbours
    (0.0, 1.0, 0.0, 1e-30, "float32"),
    (0.0, 1.0, 0.0, 1e-30, "float64"),
    (0.0, 1e30, -1.0, 1.0, "float32"),
    (0.0, 1e30, -1.0, 1.0, "float64"),
    (0.0, 1e8, -1.0, 1.0, "float32"),
    (0.0, 1.0, 1e-8, 2e-8, "float32"),
    (0.0, 1e39, -1.0, 1.0, "float32"),  # std beyond float32: the flat limit needs no std
    (-1.0, 1.0, 0.0, 1e-6, "float32"),  # narrow at 1 std, values near 0: finer than the quantile
    (-1.0, 1.0, 0.0, 1e-14, "float64"),
    (-3.0, 1.0, 0.0, 3e-4, "float32"),
    (-8.0, 1.0, 0.0, 3e-3, "float32"),  # narrow, one side, tilted: not flat, not resolved in float32
    (-5.0, 1.0, 0.0, 2e-3, "float32"),
    (5.0, 1.0, -1e-3, 0.0, "float32"),
    (5.0, 2.0, 3.0, 3.0 + 1e-9, "float64"),
]


@pytest.mark.parametrize("mean,std,a,b,dtype", NARROW)
def test_truncated_normal_narrow_interval_is_exact(mean, std, a, b, dtype):
    x = _values(fastinit.truncated_normal(N, mean, std, a, b, seed=3, name="narrow", dtype=dtype))
    assert np.isfinite(x).all()
    assert x.min() >= a and x.max() <= b
    assert len(np.unique(x)) > N // 2  # nothing collapsed onto a few values
    assert _ks_ok(x, _local_cdf(mean, std, a, b))


def test_truncated_normal_wide_std_is_uniform_like():
    """The issue's (0, 1e8, -1, 1) in float32 gave all 0.0; it is U(-1, 1) to 1e-16, std 0.577."""
    x = _values(fastinit.truncated_normal(N, 0.0, 1e8, -1.0, 1.0, seed=5, name="wide"))
    se = math.sqrt(1 / 3) / math.sqrt(2 * N) * 2  # ~2 standard errors of the sample std (p ~ 0.05 each way)
    assert abs(x.std() - math.sqrt(1 / 3)) < 5 * se


FAR = [
    # (mean, std, bound, side, dtype): the exponential-like limit, values far from the mean
    (-1e8, 1.0, 0.0, +1, "float64"),  # rate 1e8: values ~ 1e-8, finer than ulp(mean)
    (1e8, 1.0, 0.0, -1, "float64"),
    (-1e5, 1.0, 0.0, +1, "float32"),
    (1e39, 1.0, 1.0, -1, "float32"),  # mean beyond float32; every value is ~1
    (-3e4, 2.0, 7.0, +1, "float64"),
]


@pytest.mark.parametrize("mean,std,bound,side,dtype", FAR)
def test_truncated_normal_far_tail_is_exact(mean, std, bound, side, dtype):
    a, b = (bound, math.inf) if side > 0 else (-math.inf, bound)
    x = _values(fastinit.truncated_normal(N, mean, std, a, b, seed=7, name="far", dtype=dtype))
    assert np.isfinite(x).all()
    assert x.min() >= a and x.max() <= b
    scale = std / abs(bound / std - mean / std)  # the exponential's mean
    if abs(bound) * np.finfo(dtype).eps > 50 * scale:  # P(x != bound) < e**-25: all round to the bound
        assert np.all(x == bound)
        return
    assert len(np.unique(x)) > N // 2
    assert _ks_ok(x, _exp_tail_cdf(mean, std, bound, side))


# ---- item 5: parameters whose values cannot be represented are refused ---------------------------

UNREPRESENTABLE = [
    # (sampler, args, dtype, the argument the message must name)
    ("normal", (0.0, 1e300), "float32", "std"),
    ("normal", (0.0, 1e308), "float64", "std"),
    ("normal", (0.0, 1e39), "bfloat16", "std"),
    ("normal", (0.0, 1e39), "float32", "std"),
    ("normal", (0.0, 1e6), "float16", "std"),
    ("normal", (1e5, 1.0), "float16", "mean"),
    ("normal", (1e308, 1e307), "float64", "std"),
    ("truncated_normal", (0.0, 1e308, -math.inf, math.inf), "float64", "std"),
    ("truncated_normal", (0.0, 2e307, 0.0, math.inf), "float64", "std"),
    ("truncated_normal", (0.0, 1e6, 0.0, math.inf), "float16", "std"),
    ("truncated_normal", (0.0, 1e39, -1e38, 1e38), "float32", "std"),
]


@pytest.mark.parametrize("sampler,args,dtype,argname", UNREPRESENTABLE)
def test_unrepresentable_parameters_are_refused(sampler, args, dtype, argname):
    with pytest.raises(ValueError) as info:
        getattr(fastinit, sampler)(4, *args, dtype=dtype)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{argname}="), message


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_largest_accepted_std_stays_finite(dtype):
    """Just inside the limit, the most extreme words give finite values (2**16 draws include
    the largest |z| only by chance, so the kernel's bound is checked on the words themselves)."""
    biggest = fastinit.dtypes.largest_finite(fastinit.dtypes.resolve_dtype(dtype))
    std = biggest / 9.0
    x = _values(fastinit.normal(2**16, 0.0, std, seed=1, name="edge", dtype=dtype))
    assert np.isfinite(x).all()


def test_normal_z_bounds_hold_at_the_extreme_word():
    from fastinit.distributions.normal import (
        NORMAL_MAX_Z_F32,
        NORMAL_MAX_Z_F64,
        normal_pair_f32,
        normal_pair_f64,
    )

    # u01_*_oc is smallest at the word 0; every angle word gives |z| <= r
    for wb in np.linspace(0, 2**32 - 1, 257).astype(np.uint64):
        z = normal_pair_f32(np.uint64(0), wb, np.float32(0.0), np.float32(1.0))
        assert max(abs(float(z[0])), abs(float(z[1]))) <= NORMAL_MAX_Z_F32
        z = normal_pair_f64(np.uint64(0), np.uint64(0), wb, wb, 0.0, 1.0)
        assert max(abs(z[0]), abs(z[1])) <= NORMAL_MAX_Z_F64
    assert (
        abs(float(normal_pair_f32(np.uint64(0), np.uint64(0), np.float32(0), np.float32(1))[0]))
        > NORMAL_MAX_Z_F32 - 1e-3
    )


# ---- item 5: std = 0 on every path ---------------------------------------------------------------

ZERO_STD = [
    ("truncated_normal lower/upper", lambda **kw: fastinit.truncated_normal((4, 3), 1.5, 0.0, lower=-2, upper=2, **kw), 1.5),
    ("truncated_normal lower/upper off-centre",
     lambda **kw: fastinit.truncated_normal((4, 3), 1.5, 0.0, lower=1, upper=3, **kw), 1.5),
    ("truncated_normal a/b", lambda **kw: fastinit.truncated_normal((4, 3), 1.5, 0.0, 1.0, 2.0, **kw), 1.5),
    ("truncated_normal lower/upper, mean not a dtype value",
     lambda **kw: fastinit.truncated_normal((4, 3), -0.0, 0.0, lower=-2, upper=2, **kw), 0.0),
    ("normal", lambda **kw: fastinit.normal((4, 3), 1.5, 0.0, **kw), 1.5),
] + [
    (f"variance_scaling {d}", functools.partial(fastinit.variance_scaling, (4, 3), 0.0, "fan_in", d), 0.0)
    for d in ("truncated_normal", "normal", "untruncated_normal", "uniform")
] + [
    ("lecun via variance_scaling fan_avg", lambda **kw: fastinit.variance_scaling((4, 3), 0.0, "fan_avg", **kw), 0.0),
    ("xavier_uniform gain 0", lambda **kw: fastinit.xavier_uniform((4, 3), 0.0, **kw), 0.0),
    ("xavier_normal gain 0", lambda **kw: fastinit.xavier_normal((4, 3), 0.0, **kw), 0.0),
    ("orthogonal gain 0", lambda **kw: fastinit.orthogonal((4, 3), 0.0, **kw), 0.0),
    ("sparse std 0", lambda **kw: fastinit.sparse((4, 3), 0.5, 0.0, **kw), 0.0),
]  # fmt: skip


@pytest.mark.parametrize("label,call,expected", ZERO_STD, ids=[c[0] for c in ZERO_STD])
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_std_gives_the_constant(label, call, expected, dtype):
    x = _values(call(seed=2, name="zero", dtype=dtype))
    assert np.all(x == expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_std_lower_upper_rounds_mean_once(dtype):
    """std 0 with lower/upper gives mean rounded to nearest (0.1 is no float32: it was refused)."""
    x = _values(fastinit.truncated_normal(3, 0.1, 0.0, lower=-1.0, upper=1.0, dtype=dtype))
    assert np.all(x == dtypes.round_to_dtype(0.1, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_lower_upper_interval_between_two_dtype_values(dtype):
    """std far below ulp(mean): [mean - 2 std, mean + 2 std] holds no dtype value, and every
    value rounds to the nearest one (it was refused, naming a and b, which were not passed)."""
    x = _values(fastinit.truncated_normal(3, 0.1, 1e-20, lower=-2.0, upper=2.0, dtype=dtype))
    assert np.all(x == dtypes.round_to_dtype(0.1, dtype))


def test_jax_zero_stddev():
    jax = pytest.importorskip("jax")
    import fastinit.jax as fj

    key = jax.random.PRNGKey(0)
    for init in (
        fj.truncated_normal(0.0),
        fj.truncated_normal(0.0, lower=0.5, upper=1.5),
        fj.normal(0.0),
        fj.variance_scaling(0.0, "fan_in", "truncated_normal"),
        fj.variance_scaling(0.0, "fan_avg", "uniform"),
    ):
        x = np.asarray(init(key, (5, 4)))
        assert x.shape == (5, 4) and np.all(x == 0.0)


def test_registry_zero_scale():
    for name, params in (
        ("truncated_normal", {"mean": 0.0, "std": 0.0}),
        ("variance_scaling", {"scale": 0.0}),
    ):
        init = fastinit.get_initializer(name, **params)
        x = _values(init((4, 3), seed=0, name="w"))
        assert np.all(x == 0.0)


# ---- item 6: the parameter fuzzer ------------------------------------------------------------------

_MAGNITUDES = [0.0, 5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 1e-100, 1e-45, 1.2e-38, 1e-30, 6e-8,
               1e-8, 1e-4, 0.5, 1.0, 2.0, 3.0, 11.0, 40.0, 1e4, 65504.0, 1e5, 1e8, 1e30, 3.4e38, 1e39, 1e100,
               1e300, 1.7976931348623157e308]  # fmt: skip
_reals = st.one_of(
    st.builds(lambda m, s: s * m, st.sampled_from(_MAGNITUDES), st.sampled_from([1.0, -1.0])),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-50, max_value=50),
)
_bounds = st.one_of(_reals, st.sampled_from([math.inf, -math.inf]))
_NAMES = ("mean", "std", "low", "high", "a", "b", "lower", "upper")
FUZZ = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


def _check(call, lo, hi, closed_hi=True):
    """``call`` returns finite values in [lo, hi] ([lo, hi) unless closed_hi), or raises a one-line
    ValueError / TypeError naming a parameter; anything else fails."""
    try:
        x = _values(call())
    except (ValueError, TypeError) as e:
        message = str(e)
        assert "\n" not in message
        assert any(f"{n}=" in message or f"{n} " in message for n in _NAMES), message
        return
    assert np.isfinite(x).all(), (x.min(), x.max())
    assert (x >= lo).all(), (x.min(), lo)
    assert (x <= hi).all() if closed_hi else ((x < hi) | (x == lo)).all(), (x.max(), hi)


@FUZZ
@given(mean=_reals, std=_reals.map(abs), dtype=st.sampled_from(DTYPES))
def test_fuzz_normal(mean, std, dtype):
    _check(lambda: fastinit.normal(16, mean, std, seed=1, name="f", dtype=dtype), -math.inf, math.inf)


@FUZZ
@given(low=_reals, high=_reals, dtype=st.sampled_from(DTYPES))
def test_fuzz_uniform(low, high, dtype):
    if low == high:  # the constant low, rounded up into dtype (uniform's docstring)
        low = high = fastinit.dtypes.ceil_to_dtype(low, dtype)
    _check(lambda: fastinit.uniform(16, low, high, seed=1, name="f", dtype=dtype), low, high, closed_hi=False)


@FUZZ
@given(mean=_reals, std=_reals.map(abs), a=_bounds, b=_bounds, dtype=st.sampled_from(DTYPES))
def test_fuzz_truncated_normal(mean, std, a, b, dtype):
    _check(lambda: fastinit.truncated_normal(16, mean, std, a, b, seed=1, name="f", dtype=dtype), a, b)


@FUZZ
@given(mean=_reals, std=_reals.map(abs), lower=_bounds, upper=_bounds, dtype=st.sampled_from(DTYPES))
def test_fuzz_truncated_normal_lower_upper(mean, std, lower, upper, dtype):
    with np.errstate(all="ignore"):
        lo, hi = mean + lower * std if std else mean, mean + upper * std if std else mean
    lo, hi = (-math.inf if math.isnan(lo) else lo), (math.inf if math.isnan(hi) else hi)
    dt = fastinit.dtypes.resolve_dtype(dtype)
    if std == 0:  # the constant mean, rounded once to dtype
        lo = hi = dtypes.round_to_dtype(mean, dtype)
    elif math.isfinite(lo + hi) and fastinit.dtypes.ceil_to_dtype(lo, dt) > fastinit.dtypes.floor_to_dtype(
        hi, dt
    ):
        lo = hi = dtypes.round_to_dtype(lo / 2 + hi / 2, dtype)  # between two dtype values: the nearest

    def call():
        return fastinit.truncated_normal(
            16, mean, std, lower=lower, upper=upper, seed=1, name="f", dtype=dtype
        )

    _check(call, lo, hi)
