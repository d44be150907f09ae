"""Fit the polynomial approximations used by fastinit/distributions/special.py.

Run ``python tools/fit_special.py`` (needs mpmath) to regenerate
``fastinit/distributions/_coefficients.py``. Every fit is a Chebyshev interpolant computed
with mpmath at 60 digits in the variable ``t = (x - center) / half_width``, converted to
powers of ``u = x - center`` (so the kernels evaluate ``horner(x - center, coeffs)``), and
rounded once to float32 or float64. The max relative error of the rounded polynomial against
the mpmath reference, sampled densely, is printed and written beside each table.

Why these forms (all branch-free in float32, so LLVM can vectorize them):

- log: x = 2**e * m with m in [sqrt(1/2), sqrt(2)), f = m - 1.
  float32: log1p(f) = f - f**2/2 + f**3 * P(f)  (no division).
  float64: log1p(f) = f - s * (f - T(s**2)), s = f / (2 + f)  (the atanh form; f is exact,
  so only the small correction term carries rounding error).
- sin/cos of a quarter turn: the angle is n quarter turns plus g in [-1/2, 1/2) quarter turns;
  sin(pi g / 2) = g * S(g**2), cos(pi g / 2) = C(g**2).
- normal quantile (ndtri) for p <= 1/2, in Giles's variable w = -log(4 p (1 - p))
  (M. Giles, "Approximating the erfinv function", GPU Computing Gems, 2011), which removes the
  singularity at p = 0: central region x = (2p - 1) * P(w); tail regions x = -Q(sqrt(w)).
  Our own fits, with regions extended to p = 2**-126 (float32) and p = 1e-308 (float64).
"""

from __future__ import annotations

import datetime
import inspect
import pathlib
import sys

import mpmath as mp

mp.mp.dps = 60
OUT = pathlib.Path(__file__).resolve().parents[1] / "fastinit" / "distributions" / "_coefficients.py"


def to_float(x, bits):
    import numpy as np

    return float(np.float32(float(x))) if bits == 32 else float(x)


# mpmath >= 1.4 takes asc=True (lowest order first) and warns without it; 1.3 knows only the
# highest-order-first lists. The two helpers give lowest order first on both.
_HAS_ASC = "asc" in inspect.signature(mp.chebyfit).parameters


def _chebyfit_ascending(f, n):
    if _HAS_ASC:
        return mp.chebyfit(f, [-1, 1], n, error=True, asc=True)[0]
    return mp.chebyfit(f, [-1, 1], n, error=True)[0][::-1]


def _polyval_ascending(coeffs, x):
    return mp.polyval(coeffs, x, asc=True) if _HAS_ASC else mp.polyval(coeffs[::-1], x)


def fit(f, a, b, degree, center=None):
    """Coefficients (lowest order first, mpf) of a degree-`degree` fit of f on [a, b] in u = x - center.

    The Chebyshev interpolant is computed in t = (x - mid) / half on [-1, 1], then re-expanded
    exactly (at 60 digits) in powers of u = x - center.
    """
    a, b = mp.mpf(a), mp.mpf(b)
    mid, half = (a + b) / 2, (b - a) / 2
    center = mid if center is None else mp.mpf(center)
    p_t = _chebyfit_ascending(lambda t: f(mid + half * t), degree + 1)
    # t = (u + d) / half with d = center - mid: expand sum_k p_k ((u + d) / half)**k in u
    d = center - mid
    q = [mp.mpf(0)] * (degree + 1)
    for k, pk in enumerate(p_t):
        scale = pk / half**k
        for j in range(k + 1):
            q[j] += scale * mp.binomial(k, j) * d ** (k - j)
    return center, q


def max_rel_error(f, coeffs, center, a, b, bits, n=2000, form=lambda x, p: p):
    rounded = [mp.mpf(to_float(c, bits)) for c in coeffs]
    worst = mp.mpf(0)
    for i in range(n + 1):
        x = mp.mpf(a) + (mp.mpf(b) - a) * i / n
        exact = f(x)
        if exact == 0:
            continue
        approx = form(x, _polyval_ascending(rounded, x - center))
        worst = max(worst, abs(approx / exact - 1))
    return worst


def ndtri(p):
    """Normal quantile for p <= 1/2 at 60 digits (log-space Newton for tiny p)."""
    if p > mp.mpf("1e-40"):
        return -mp.sqrt(2) * mp.erfinv(1 - 2 * p)
    logp = mp.log(p)
    x0 = -mp.sqrt(-2 * logp - mp.log(-2 * logp) - mp.log(2 * mp.pi))
    return mp.findroot(lambda x: mp.log(mp.ncdf(x)) - logp, x0)


def p_of_w(w):
    """The p <= 1/2 with -log(4 p (1 - p)) = w."""
    e = mp.exp(-w)
    return e / (2 * (1 + mp.sqrt(1 - e)))


def ndtri_w(w):
    return ndtri(p_of_w(w))


LOG_LO, LOG_HI = mp.sqrt(0.5) - 1, mp.sqrt(2) - 1


def log_f32_poly(f):
    return (mp.log1p(f) - f + f * f / 2) / f**3 if f != 0 else mp.mpf(1) / 3


def log_f64_t(z):
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) - 2 * s) / s if z != 0 else mp.mpf(0)


def sinq(z):
    return mp.sin(mp.pi / 2 * mp.sqrt(z)) / mp.sqrt(z) if z != 0 else mp.pi / 2


def cosq(z):
    return mp.cos(mp.pi / 2 * mp.sqrt(z))


def ndtri_central(w):
    p = p_of_w(w)
    return ndtri(p) / (2 * p - 1) if w != 0 else mp.sqrt(2 * mp.pi) / 2


def ndtri_tail(s):
    return -ndtri_w(s * s)


# name, function, domain, degree, bits, error form (x, poly) -> approximation of the quantity
# the error is measured on, center (None: middle of the domain)
S32 = 9.4  # sqrt(-log(4 * 2**-126)) = 9.31
S64 = 26.7  # sqrt(-log(4 * 1e-308)) = 26.6
TABLES = [
    (
        "LOG1P_F32",
        log_f32_poly,
        (LOG_LO, LOG_HI),
        7,
        32,
        lambda f, p: f - f * f / 2 + f**3 * p,
        lambda f: mp.log1p(f),
        0,
    ),
    ("SINQ_F32", sinq, (0, 0.25), 3, 32, None, None, 0),
    ("COSQ_F32", cosq, (0, 0.25), 4, 32, None, None, 0),
    ("NDTRI_CENTRAL_F32", ndtri_central, (0, 5), 9, 32, None, None, 0),
    ("NDTRI_TAIL_F32", ndtri_tail, (mp.sqrt(5), S32), 13, 32, None, None, None),
    (
        "LOG1P_T_F64",
        log_f64_t,
        (0, (LOG_HI / (2 + LOG_HI)) ** 2),
        9,
        64,
        lambda z, t: 2 * mp.sqrt(z) + mp.sqrt(z) * t,
        lambda z: 2 * mp.atanh(mp.sqrt(z)),
        0,
    ),
    ("SINQ_F64", sinq, (0, 0.25), 7, 64, None, None, 0),
    ("COSQ_F64", cosq, (0, 0.25), 8, 64, None, None, 0),
    ("NDTRI_CENTRAL_A_F64", ndtri_central, (0, 2), 15, 64, None, None, None),
    ("NDTRI_CENTRAL_B_F64", ndtri_central, (2, 6.25), 18, 64, None, None, None),
    ("NDTRI_TAIL_A_F64", ndtri_tail, (2.5, 4), 17, 64, None, None, None),
    ("NDTRI_TAIL_B_F64", ndtri_tail, (4, 8), 21, 64, None, None, None),
    ("NDTRI_TAIL_C_F64", ndtri_tail, (8, 14), 18, 64, None, None, None),
    ("NDTRI_TAIL_D_F64", ndtri_tail, (14, S64), 16, 64, None, None, None),
]


def main(argv):
    only = set(argv[1:])
    lines = [
        '"""Polynomial coefficients for fastinit/distributions/special.py.',
        "",
        f"Generated by tools/fit_special.py on {datetime.date.today()}; do not edit by hand.",
        "Each table is (CENTER, coefficients lowest order first) for horner(x - CENTER, ...).",
        '"""',
        "",
    ]
    for name, f, (a, b), degree, bits, form, exact, center in TABLES:
        if only and name not in only:
            continue
        c0, coeffs = fit(f, a, b, degree, center)
        if form is None:
            err = max_rel_error(f, coeffs, c0, a, b, bits)
        else:
            err = max_rel_error(exact, coeffs, c0, a, b, bits, form=form)
        print(
            f"{name:24s} degree {degree:2d} on [{mp.nstr(a, 6)}, {mp.nstr(b, 6)}]: "
            f"max rel error {mp.nstr(err, 3)}",
            file=sys.stderr,
        )
        body = ", ".join(repr(to_float(c, bits)) for c in coeffs)
        lines.append(
            f"# degree {degree} on [{mp.nstr(a, 8)}, {mp.nstr(b, 8)}], "
            f"max relative error after rounding {mp.nstr(err, 3)}"
        )
        lines.append(f"{name} = ({to_float(c0, bits)!r}, ({body}))")
        lines.append("")
    if not only:
        OUT.write_text("\n".join(lines))
        print(f"wrote {OUT}", file=sys.stderr)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv)
