"""The samplers' distributions against scipy.stats: KS tests, moments, support, independence.

All tests use fixed seeds and names, so they are deterministic; the thresholds say how often
a *correct* sampler would fail them at a random seed:

- KS / chi-square / contingency tests: p-value threshold 1e-4 (a correct sampler fails a given
  check with probability 1e-4, so ~1% for the ~90 such checks here together).
- Moments and correlations: |estimate - expected| <= 5 standard errors (two-sided normal
  p-value 5.7e-7 per check). Standard errors come from the reference distribution's own
  central moments (delta method), not from the sample.

Discreteness. float32/float64 outputs are compared with the continuous CDF: rounding a value
to float32 moves it by at most half an ulp, which moves the empirical CDF by at most
max(pdf) * ulp / 2. The worst case here (truncated normal on [30, inf) in std units: pdf 30,
ulp(30) = 1.9e-6) is 3e-5, against a KS critical distance of 2.2e-3 at n = 10**6 and p = 1e-4;
the truncation of float32 normals at |z| <= 6.66 (|z| <= 5.3 for the truncated normal, whose
u has 23 bits) removes a mass of at most 1.2e-7. bfloat16/float16 outputs have only 8/11 significant bits, so their CDF steps are
as large as the KS critical distance: they are compared with the *rounded* reference, the
distribution of round_to_nearest_even(X) clamped to the dtype's values in the interval, by a
chi-square test over the discrete support (bins merged to >= 10 expected counts) and by a KS
statistic on the two step CDFs (for a discrete reference the continuous KS p-value is
conservative: a correct sampler fails less often than the threshold says).
"""

import math
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np
import pytest
from scipy import integrate, stats
from scipy import special as sc

import fastinit

N = 10**6
KS_P = 1e-4  # p-value threshold for KS / chi-square tests (see module docstring)
Z = 5.0  # z-threshold for moments and correlations: two-sided p-value 5.7e-7
INF = math.inf


@dataclass(frozen=True)
class Case:
    """A sampler call and its scipy reference (a frozen distribution with loc/scale)."""

    id: str
    sampler: str  # "uniform" | "normal" | "truncated_normal"
    args: tuple
    kwargs: dict = field(default_factory=dict)

    @property
    def reference(self):
        if self.sampler == "uniform":
            low, high = self.args
            return stats.uniform(loc=low, scale=high - low)
        if self.sampler == "normal":
            mean, std = self.args
            return stats.norm(loc=mean, scale=std)
        mean, std, alpha, beta = self.std_bounds()
        return stats.truncnorm(alpha, beta, loc=mean, scale=std)  # bounds in std units

    def std_bounds(self):
        """(mean, std, alpha, beta): the truncation bounds in units of std about the mean."""
        mean, std, *ab = self.args
        if "lower" in self.kwargs:
            return mean, std, self.kwargs["lower"], self.kwargs["upper"]
        a, b = ab
        return mean, std, (a - mean) / std, (b - mean) / std

    def bounds(self):
        """The documented output interval (lo, hi) as reals: [low, high) or [a, b]."""
        if self.sampler == "uniform":
            return self.args
        if self.sampler == "normal":
            return -INF, INF
        mean, std, alpha, beta = self.std_bounds()
        return mean + alpha * std, mean + beta * std

    def cdf(self, x):
        """The reference CDF; for the truncated normal an equivalent, vectorized form (see
        truncnorm_cdf: scipy's truncnorm.cdf takes ~1.5 s per 10**6 points in the far tails)."""
        if self.sampler != "truncated_normal":
            return self.reference.cdf(x)
        mean, std, alpha, beta = self.std_bounds()
        return truncnorm_cdf((np.asarray(x, np.float64) - mean) / std, alpha, beta)

    def draw(self, dtype, n=N, seed=1234, name="stats"):
        fn = getattr(fastinit, self.sampler)
        x = fn(n, *self.args, **self.kwargs, seed=seed, name=name, dtype=dtype)
        return as_float64(x, dtype)

    def __str__(self):
        return self.id


def as_float64(x, dtype):
    if dtype == "bfloat16":
        assert x.numpy().dtype == ml_dtypes.bfloat16
        return x.numpy().astype(np.float64)
    return np.asarray(x).astype(np.float64)


def truncnorm_cdf(z, alpha, beta):
    """CDF of N(0, 1) truncated to [alpha, beta], accurate however far out the interval is:
    differences of tail probabilities are taken in log space on the side away from the mean.
    test_truncnorm_cdf_is_scipys checks it against scipy.stats.truncnorm."""
    z = np.clip(z, alpha, beta)
    with np.errstate(divide="ignore"):  # log of 0 at infinite bounds: exp(-inf) = 0 is right
        if alpha > 0:  # right of the mean: upper tails Q = 1 - Phi
            lq_alpha = sc.log_ndtr(-alpha)
            return -np.expm1(sc.log_ndtr(-z) - lq_alpha) / -np.expm1(sc.log_ndtr(-beta) - lq_alpha)
        if beta < 0:  # left of the mean: lower tails Phi
            lp_beta = sc.log_ndtr(beta)
            num = np.exp(sc.log_ndtr(z) - lp_beta) - np.exp(sc.log_ndtr(alpha) - lp_beta)
            return num / -np.expm1(sc.log_ndtr(alpha) - lp_beta)
    return (sc.ndtr(z) - sc.ndtr(alpha)) / (sc.ndtr(beta) - sc.ndtr(alpha))


U = "uniform"
G = "normal"
T = "truncated_normal"

CASES = [
    Case("uniform-default", U, (0.0, 1.0)),
    Case("uniform-(-3,5)", U, (-3.0, 5.0)),
    Case("uniform-(1e-3,2e-3)", U, (1e-3, 2e-3)),
    Case("normal-(0,1)", G, (0.0, 1.0)),
    Case("normal-(5,0.02)", G, (5.0, 0.02)),
    Case("normal-(-1e3,1e2)", G, (-1e3, 1e2)),
    Case("truncnorm-(0,1,-2,2)", T, (0.0, 1.0, -2.0, 2.0)),
    Case("truncnorm-(0,0.02,-0.04,0.04)", T, (0.0, 0.02, -0.04, 0.04)),
    Case("truncnorm-tiny-std-(0,0.002,-2,2)", T, (0.0, 0.002, -2.0, 2.0)),
    Case("truncnorm-shifted-(1,2,-0.5,4)", T, (1.0, 2.0, -0.5, 4.0)),
    Case("truncnorm-one-sided-(0,1,-0.5,inf)", T, (0.0, 1.0, -0.5, INF)),
    Case("truncnorm-one-sided-(0,1,-inf,0.3)", T, (0.0, 1.0, -INF, 0.3)),
    Case("truncnorm-mean-outside-(3,1,-1,1)", T, (3.0, 1.0, -1.0, 1.0)),
    Case("truncnorm-far-tail-8..9", T, (0.0, 1.0), dict(lower=8.0, upper=9.0)),
    Case("truncnorm-far-tail-mirrored--9..-8", T, (0.0, 1.0), dict(lower=-9.0, upper=-8.0)),
    # beyond ~11 sigma (mass < 2**-90): the float64 log-space tail path
    Case("truncnorm-tail-path-12..14", T, (0.0, 1.0), dict(lower=12.0, upper=14.0)),
    Case("truncnorm-tail-path-mirrored--14..-12", T, (0.0, 1.0), dict(lower=-14.0, upper=-12.0)),
    Case("truncnorm-tail-path-30..inf", T, (0.0, 1.0), dict(lower=30.0, upper=INF)),
    Case("truncnorm-tail-path-mean-outside-(100,1,-1,1)", T, (100.0, 1.0, -1.0, 1.0)),
]


@pytest.mark.parametrize("case", [c for c in CASES if c.sampler == T], ids=str)
def test_truncnorm_cdf_is_scipys(case):
    ref = case.reference
    x = ref.ppf(np.linspace(0, 1, 2001))
    np.testing.assert_allclose(case.cdf(x), ref.cdf(x), rtol=1e-9, atol=1e-12)


# ---- reference moments and their standard errors --------------------------------------------------


def standard_moments(case):
    """Mean and central moments mu_2..mu_6 of the reference in standardized units.

    Standardized: z = (x - loc) / scale. Integrals by quadrature over the reference's support
    cut at its 1e-13 quantiles (so that quad sees where the mass is).
    """
    ref = case.reference
    std_ref = ref.dist(*ref.args)  # loc 0, scale 1
    lo = max(std_ref.support()[0], std_ref.ppf(1e-13))
    hi = min(std_ref.support()[1], std_ref.isf(1e-13))

    def expect(g):
        value, _ = integrate.quad(
            lambda z: g(z) * std_ref.pdf(z), lo, hi, limit=200, epsabs=1e-13, epsrel=1e-10
        )
        return value

    mean = expect(lambda z: z)
    sd = math.sqrt(expect(lambda z: (z - mean) ** 2))
    # moments of (z - mean) / sd are O(1), so an absolute tolerance suits all of them
    mu = {k: sd**k * expect(lambda z, k=k: ((z - mean) / sd) ** k) for k in range(2, 7)}
    return mean, mu


def standard_errors(mu, n):
    """Asymptotic standard errors of the sample mean, variance and skewness (delta method).

    Influence functions, with y = x - mean:  mean: y;  variance: y**2 - mu2;
    skewness g1 = m3 / m2**1.5: (y**3 - 3 mu2 y - mu3) / mu2**1.5 - 1.5 mu3 (y**2 - mu2) / mu2**2.5.
    Their variances need mu2..mu6 (for the normal: 1/n, 2/n, 6/n).
    """
    m2, m3, m4, m5, m6 = (mu[k] for k in range(2, 7))
    var_a = m6 - 6 * m2 * m4 + 9 * m2**3 - m3**2  # E[(y^3 - 3 mu2 y - mu3)^2]
    var_b = m4 - m2**2  # E[(y^2 - mu2)^2]
    cov_ab = m5 - 4 * m2 * m3
    c1, c2 = m2**-1.5, 1.5 * m3 * m2**-2.5
    skew_var = c1**2 * var_a - 2 * c1 * c2 * cov_ab + c2**2 * var_b
    return math.sqrt(m2 / n), math.sqrt(var_b / n), math.sqrt(skew_var / n)


def test_standard_errors_of_the_normal():
    """The delta-method formulas reproduce the textbook values for N(0, 1)."""
    mean, mu = standard_moments(Case("n", G, (0.0, 1.0)))
    assert abs(mean) < 1e-12 and abs(mu[2] - 1) < 1e-10 and abs(mu[4] - 3) < 1e-9
    se = standard_errors(mu, 100)
    np.testing.assert_allclose(se, [math.sqrt(1 / 100), math.sqrt(2 / 100), math.sqrt(6 / 100)], rtol=1e-8)


def check_moments(case, x):
    """Failures (strings) of sample mean / variance / skewness against the reference."""
    ref = case.reference
    loc, scale = ref.kwds.get("loc", 0.0), ref.kwds.get("scale", 1.0)
    z = (x - loc) / scale
    mean, mu = standard_moments(case)
    se_mean, se_var, se_skew = standard_errors(mu, z.size)
    got_mean, got_var = z.mean(), z.var()
    got_skew = stats.skew(z)
    want_skew = mu[3] / mu[2] ** 1.5
    failures = []
    for what, got, want, se in [
        ("mean", got_mean, mean, se_mean),
        ("variance", got_var, mu[2], se_var),
        ("skewness", got_skew, want_skew, se_skew),
    ]:
        if not abs(got - want) <= Z * se:
            failures.append(f"{what}: {got:.6g} vs {want:.6g} ({(got - want) / se:+.1f} s.e.)")
    return failures


def check_support(case, x):
    lo, hi = case.bounds()
    failures = []
    if not np.all(np.isfinite(x)):
        failures.append(f"{np.sum(~np.isfinite(x))} non-finite values")
    if case.sampler == "uniform":
        inside = (x >= lo) & (x < hi)
    else:
        inside = (x >= lo) & (x <= hi)
    if not inside.all():
        bad = x[~inside]
        failures.append(f"{bad.size} values outside the interval ({lo}, {hi}), e.g. {bad[:4]}")
    return failures


# ---- float32 / float64: KS, moments, support ---------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_scipy(case, dtype):
    x = case.draw(dtype)
    failures = check_support(case, x)
    # KS p-value threshold 1e-4: a correct sampler fails this with probability 1e-4 per test
    ks = stats.kstest(x, case.cdf)
    if not ks.pvalue > KS_P:
        failures.append(f"KS statistic {ks.statistic:.3g}, p-value {ks.pvalue:.3g}")
    failures += check_moments(case, x)
    assert not failures, f"{case} {dtype}:\n" + "\n".join(failures)


# ---- bfloat16 / float16: against the rounded reference ------------------------------------------


def dtype_values(dtype):
    """All finite values of a 16-bit dtype, sorted, as float64 (+0 and -0 merged)."""
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    with np.errstate(invalid="ignore"):  # ml_dtypes warns when casting its NaNs
        v = h.view(ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16).astype(np.float64)
    return np.unique(v[np.isfinite(v)])


def rounded_reference(case, dtype):
    """(values, probabilities) of the documented output: X ~ reference, rounded to nearest in
    dtype, then clamped to the dtype's values inside the interval ([low, high) or [a, b])."""
    grid = dtype_values(dtype)
    edges = (grid[1:] + grid[:-1]) / 2  # rounding cells (exact ties carry no mass)
    cdf = np.concatenate([[0.0], case.cdf(edges), [1.0]])
    prob = np.diff(cdf)
    lo, hi = case.bounds()
    first = np.searchsorted(grid, lo, side="left")  # smallest value >= lo
    last = np.searchsorted(grid, hi, side="left" if case.sampler == "uniform" else "right") - 1
    prob[first] += prob[:first].sum()
    prob[last] += prob[last + 1 :].sum()
    prob[:first] = 0
    prob[last + 1 :] = 0
    return grid, prob


def chi_square_merged(expected, observed, min_expected=10.0):
    """Chi-square statistic and degrees of freedom, merging consecutive bins to >= min_expected."""
    nz = np.flatnonzero((expected > 0) | (observed > 0))
    e_bins, o_bins = [], []
    acc_e = acc_o = 0.0
    for e, o in zip(expected[nz[0] : nz[-1] + 1], observed[nz[0] : nz[-1] + 1], strict=True):
        acc_e += e
        acc_o += o
        if acc_e >= min_expected:
            e_bins.append(acc_e)
            o_bins.append(acc_o)
            acc_e = acc_o = 0.0
    if acc_e or acc_o:
        e_bins[-1] += acc_e
        o_bins[-1] += acc_o
    e_bins, o_bins = np.array(e_bins), np.array(o_bins)
    return float(np.sum((o_bins - e_bins) ** 2 / e_bins)), len(e_bins) - 1


LOW_PRECISION_CASES = [
    Case("uniform-default", U, (0.0, 1.0)),
    Case("uniform-(-3,5)", U, (-3.0, 5.0)),
    Case("uniform-(-0.1,0.1)", U, (-0.1, 0.1)),  # bounds that are not dtype values
    Case("normal-(0,1)", G, (0.0, 1.0)),
    Case("normal-(5,0.02)", G, (5.0, 0.02)),
    Case("truncnorm-(0,1,-2,2)", T, (0.0, 1.0, -2.0, 2.0)),
    Case("truncnorm-(0,0.02,-0.04,0.04)", T, (0.0, 0.02, -0.04, 0.04)),
    Case("truncnorm-far-tail-8..9", T, (0.0, 1.0), dict(lower=8.0, upper=9.0)),
    Case("truncnorm-tail-path-30..inf", T, (0.0, 1.0), dict(lower=30.0, upper=INF)),
]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("case", LOW_PRECISION_CASES, ids=str)
def test_low_precision_matches_rounded_reference(case, dtype):
    x = case.draw(dtype)
    failures = check_support(case, x)
    grid, prob = rounded_reference(case, dtype)
    idx = np.searchsorted(grid, x)
    assert np.all(grid[np.minimum(idx, grid.size - 1)] == x), "values that are not dtype values"
    observed = np.bincount(idx, minlength=grid.size).astype(np.float64)
    impossible = (observed > 0) & (prob == 0)
    if impossible.any():
        failures.append(
            f"{int(observed[impossible].sum())} values where the reference has no mass: "
            f"{grid[impossible][:6]}"
        )
    # chi-square p-value threshold 1e-4: a correct sampler fails this with probability 1e-4
    stat, dof = chi_square_merged(N * prob, observed)
    p_chi2 = stats.chi2.sf(stat, dof)
    if not p_chi2 > KS_P:
        worst = np.argsort(-np.abs(observed - N * prob))[:3]
        failures.append(
            f"chi-square {stat:.1f} on {dof} dof, p-value {p_chi2:.3g}; worst values "
            + ", ".join(f"{grid[i]!r}: {observed[i]:.0f} vs {N * prob[i]:.1f}" for i in worst)
        )
    # KS on the step CDFs, p-value threshold 1e-4 (conservative for a discrete reference)
    d = np.max(np.abs(np.cumsum(observed) / N - np.cumsum(prob)))
    p_ks = stats.kstwo.sf(d, N)
    if not p_ks > KS_P:
        failures.append(f"KS distance {d:.3g} to the rounded reference, p-value {p_ks:.3g}")
    assert not failures, f"{case} {dtype}:\n" + "\n".join(failures)


# ---- tiny std with absolute bounds: exactly N(0, std**2) -------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("std", [0.002, 1e-5])
def test_tiny_std_with_absolute_bounds_is_the_normal(std, dtype):
    """torch's trunc_normal_ failure mode: bounds -2, 2 with std 0.002 are ~1000 std away and
    must change nothing: no values at or near the bounds, normal shape (kurtosis 3)."""
    x = np.asarray(
        fastinit.truncated_normal(N, 0.0, std, -2.0, 2.0, seed=5, name="w", dtype=dtype), dtype=np.float64
    )
    # P(|Z| >= 7) = 2.6e-12 per value: a correct sampler has such a value with probability 2.6e-6
    assert np.sum(np.abs(x) >= 7 * std) == 0, (
        f"values piled towards the bounds: {x[np.abs(x) >= 7 * std][:5]}"
    )
    assert np.sum(np.abs(x) >= 1.0) == 0
    # KS p-value threshold 1e-4: a correct sampler fails this with probability 1e-4 per test
    assert stats.kstest(x, stats.norm(0.0, std).cdf).pvalue > KS_P
    z = x / std
    # normal: s.e. of the sample std sqrt(1/(2n)), of the sample kurtosis sqrt(24/n); 5 s.e.
    assert abs(z.std() - 1) < Z * math.sqrt(0.5 / N)
    kurtosis = stats.kurtosis(z, fisher=False)
    assert abs(kurtosis - 3) < Z * math.sqrt(24 / N), f"kurtosis {kurtosis}"


# ---- support in every dtype, including awkward parameters ------------------------------------------

SUPPORT_CASES = [
    Case("uniform-(0,1)", U, (0.0, 1.0)),
    Case("uniform-(1e-3,2e-3)", U, (1e-3, 2e-3)),
    Case("uniform-(-0.1,0.1)", U, (-0.1, 0.1)),
    Case("uniform-(-2,-0.999)", U, (-2.0, -0.999)),
    Case("uniform-(-1,0)", U, (-1.0, 0.0)),
    Case("uniform-narrow-(1,1+2**-7)", U, (1.0, 1.0078125)),
    Case("uniform-narrow-negative-(-1-2**-7,-1)", U, (-1.0078125, -1.0)),
    Case("truncnorm-(0,1,-2,2)", T, (0.0, 1.0, -2.0, 2.0)),
    Case("truncnorm-(0,0.02,-0.04,0.04)", T, (0.0, 0.02, -0.04, 0.04)),
    Case("truncnorm-tiny-std-(0,1e-6,-2,2)", T, (0.0, 1e-6, -2.0, 2.0)),
    Case("truncnorm-tiny-std-(0,1e-30,-1,1)", T, (0.0, 1e-30, -1.0, 1.0)),
    Case("truncnorm-narrow-(0,1,0.5,0.5001)", T, (0.0, 1.0, 0.5, 0.5001)),
    Case("truncnorm-narrow-negative-(0,1,-0.5001,-0.5)", T, (0.0, 1.0, -0.5001, -0.5)),
    Case("truncnorm-negative-bounds-(0,1,-3.001,-1.001)", T, (0.0, 1.0, -3.001, -1.001)),
    Case("truncnorm-mean-outside-(3,1,-1,1)", T, (3.0, 1.0, -1.0, 1.0)),
    Case("truncnorm-mean-far-above-(100,1,-1,1)", T, (100.0, 1.0, -1.0, 1.0)),
    Case("truncnorm-mean-far-below-(-100,1,-1,1)", T, (-100.0, 1.0, -1.0, 1.0)),
    Case("truncnorm-tiny-std-mean-outside-(0,1e-3,1,2)", T, (0.0, 1e-3, 1.0, 2.0)),
    Case("truncnorm-left-tail-(0,1,-inf,-40)", T, (0.0, 1.0, -INF, -40.0)),
    Case("truncnorm-tail-path-30..inf", T, (0.0, 1.0), dict(lower=30.0, upper=INF)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("case", SUPPORT_CASES, ids=str)
def test_values_inside_the_interval(case, dtype):
    x = case.draw(dtype, n=100_000, seed=9)
    failures = check_support(case, x)
    assert not failures, f"{case} {dtype}:\n" + "\n".join(failures)


# ---- independence ----------------------------------------------------------------------------------


def corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "first, second",
    [
        ((0, "layer.0.weight"), (0, "layer.1.weight")),
        ((0, "w"), (1, "w")),
        ((0, None), (0, "w")),
        ((2**64 - 1, "a"), (2**64 - 1, "b")),
    ],
    ids=["names", "seeds", "none-vs-name", "max-seed"],
)
def test_streams_are_uncorrelated(first, second, dtype):
    x = np.asarray(fastinit.normal(N, seed=first[0], name=first[1], dtype=dtype), np.float64)
    y = np.asarray(fastinit.normal(N, seed=second[0], name=second[1], dtype=dtype), np.float64)
    assert not np.array_equal(x, y)
    # correlation s.e. 1/sqrt(n): threshold 5 s.e., p-value 5.7e-7
    assert abs(corr(x, y)) < Z / math.sqrt(N)


# lag 1: neighbouring lanes (counters); 16, 32, 48: the other words of the same Philox block
# (float32: tile of 64 = 4 words x 16 lanes; float64: 32 = 2 values x 16 lanes); 64: next tile
LAGS = [1, 2, 15, 16, 17, 32, 48, 64]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "sampler, args",
    [(U, (0.0, 1.0)), (G, (0.0, 1.0)), (T, (0.0, 1.0, -2.0, 2.0))],
    ids=["uniform", "normal", "truncnorm"],
)
def test_autocorrelation(sampler, args, dtype):
    x = np.asarray(getattr(fastinit, sampler)(N, *args, seed=3, name="lags", dtype=dtype), np.float64)
    x = x - x.mean()
    for lag in LAGS:
        r = float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))
        # s.e. of a lag correlation 1/sqrt(n): threshold 5 s.e., p-value 5.7e-7
        assert abs(r) < Z / math.sqrt(N), f"lag {lag}: autocorrelation {r:.3g}"


def box_muller_pairs(x, dtype):
    """The two members of each Box-Muller pair (rng/layout.py): words (0, 1) and (2, 3) of a
    block are elements j, 16 + j and 32 + j, 48 + j of a 64-element float32 tile; a float64
    block gives elements j and 16 + j of a 32-element tile."""
    if dtype == "float32":
        t = x.reshape(-1, 4, 16)
        return np.concatenate([t[:, 0], t[:, 2]]).ravel(), np.concatenate([t[:, 1], t[:, 3]]).ravel()
    t = x.reshape(-1, 2, 16)
    return t[:, 0].ravel(), t[:, 1].ravel()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_box_muller_pairs_are_jointly_normal(dtype):
    x = np.asarray(fastinit.normal(2 * N, seed=8, name="pairs", dtype=dtype), np.float64)
    a, b = box_muller_pairs(x, dtype)
    assert a.size == N
    # uncorrelated: s.e. 1/sqrt(n), 5 s.e.
    assert abs(corr(a, b)) < Z / math.sqrt(N)
    # (a, b) standard bivariate normal <=> a**2 + b**2 ~ chi-square(2), the angle uniform on
    # (-pi, pi], and the two independent.
    r2 = a * a + b * b
    theta = np.arctan2(b, a)
    # KS p-value threshold 1e-4: a correct sampler fails each with probability 1e-4
    assert stats.kstest(r2, stats.chi2(2).cdf).pvalue > KS_P
    assert stats.kstest(theta, stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > KS_P
    # independence: 10 x 10 contingency table of radius deciles vs angle deciles,
    # chi-square p-value threshold 1e-4
    r_bin = np.minimum((stats.chi2(2).cdf(r2) * 10).astype(int), 9)
    t_bin = np.minimum(((theta + math.pi) / (2 * math.pi) * 10).astype(int), 9)
    table = np.bincount(r_bin * 10 + t_bin, minlength=100).reshape(10, 10)
    assert stats.chi2_contingency(table).pvalue > KS_P
