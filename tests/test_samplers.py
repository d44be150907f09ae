"""The public samplers: values against independent references, index=, out=, input checks.

References are built from ``fastinit.philox4x32`` (NumPy), ``derive_key`` and the element
layout written out from rng/layout.py's docstring (tests/conftest.py), never from the
library's compiled code or its ``counters_for``.
"""

from __future__ import annotations

import array
import math
import re
import warnings
from fractions import Fraction

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import prange, uint64
from scipy import special

import fastinit
from fastinit import FastArray
from fastinit.distributions.normal import normal_pair_f32
from fastinit.rng.convert import u01_f32_co
from fastinit.rng.philox import philox4x32_block

DTYPES = ["float32", "float64", "float16", "bfloat16"]
SAMPLERS = {
    "uniform": lambda shape, **kw: fastinit.uniform(shape, -1.5, 2.25, **kw),
    "normal": lambda shape, **kw: fastinit.normal(shape, 0.5, 2.0, **kw),
    "truncated_normal": lambda shape, **kw: fastinit.truncated_normal(shape, 0.25, 1.0, -1.5, 2.5, **kw),
}
HYPOTHESIS = settings(derandomize=True, max_examples=50, deadline=None, database=None)


def _ulp(x, dtype):
    return np.spacing(np.abs(np.asarray(x, dtype))).astype(np.float64)


def _storage_bytes(x):
    return np.ascontiguousarray(x).tobytes()


# ---- (a) values against independent references ------------------------------------------------

UNIFORM_CASES = [
    # seed, name, shape, low, high
    (0, None, (1000,), 0.0, 1.0),
    (1, "layer.weight", (37, 29), 0.0, 1.0),
    (2**64 - 1, "w", (3, 5, 67), -1.5, 2.25),
    (7, "", (2049,), 0.1, 0.7),  # neither end representable: clamp and fma rounding matter
    (8, "b", (513,), -3e-5, 1e3),  # the product and low far apart: the sum is inexact
    (9, "c", (4, 4), 5.0, 5.0),  # low == high: the constant low
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("seed", "name", "shape", "low", "high"), UNIFORM_CASES)
def test_uniform_matches_reference(reference, seed, name, shape, low, high, dtype):
    got = fastinit.uniform(shape, low, high, seed=seed, name=name, dtype=dtype)
    assert got.shape == shape and got.dtype.name == dtype
    n = int(np.prod(shape))
    ref = reference.uniform(np.arange(n), low, high, seed=seed, name=name, dtype=dtype)
    # exact: the reference emulates the one fused multiply-add exactly (conftest.fma_f32 /
    # fma_f64), then the same clamp and the same single rounding
    assert _storage_bytes(got.raw.reshape(-1)) == _storage_bytes(ref)
    lo, hi = reference.smallest_at_least(low, dtype), reference.largest_below(high, dtype)
    values = got.numpy().astype(np.float64)
    if low < high:
        assert values.min() >= lo and values.max() <= hi < high
    else:
        assert np.all(values == lo)


def test_fma_emulation_is_correctly_rounded(reference):
    # the helper the uniform reference relies on: checked against the definition of
    # round-to-nearest-even, on random triples and on constructed near-halfway cases
    # (float64 sum exactly halfway between two float32 values, with a nonzero error)
    rng = np.random.default_rng(3)
    a = rng.standard_normal(3000).astype(np.float32)
    b = (rng.standard_normal(3000) * 10.0 ** rng.integers(-8, 8, 3000)).astype(np.float32)
    c = (rng.standard_normal(3000) * 10.0 ** rng.integers(-8, 8, 3000)).astype(np.float32)
    one_minus = np.float32(1 - 2**-23)
    one_plus = np.float32(1 + 2**-23)
    special_cases = [
        (8 * one_plus, 8 * one_minus, np.float32(2**30 + 2**7)),  # 2**30 + 2**7 + 2**6 - 2**-40
        (-8 * one_plus, 8 * one_minus, np.float32(-(2**30 + 2**7))),
        (8 * one_plus, 8 * one_minus, np.float32(2**30)),
        (np.float32(2**-12) * one_plus, np.float32(2**-12) * one_minus, np.float32(1 + 2**-23)),
    ]
    a = np.concatenate([a, [s[0] for s in special_cases]]).astype(np.float32)
    b = np.concatenate([b, [s[1] for s in special_cases]]).astype(np.float32)
    c = np.concatenate([c, [s[2] for s in special_cases]]).astype(np.float32)
    got = reference.fma_f32(a, b, c)
    for x, y, z, r in zip(a, b, c, got, strict=True):
        exact = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
        below = np.nextafter(r, np.float32(-np.inf))
        above = np.nextafter(r, np.float32(np.inf))
        err = abs(Fraction(float(r)) - exact)
        for other in (below, above):
            d = abs(Fraction(float(other)) - exact)
            assert err < d or (err == d and int(r.view(np.uint32)) % 2 == 0), (x, y, z)
    # the halfway cases really are the ones naive double rounding gets wrong
    naive = (a[-4:].astype(np.float64) * b[-4:] + c[-4:]).astype(np.float32)
    assert np.sum(naive != got[-4:]) >= 2


def _normal_reference_f32(reference, index, seed, name):
    """Box-Muller in float64 from the words the layout assigns (returns z, r).

    u = fl32(fl32(k) 2**-31 + 2**-32) with k = wa >> 1 (u01_f32_oc); the angle is
    (n + g) quarter turns with n, g from the other word (quarter_turn_f32; g rounded to
    float32 as the docstring says); slot even -> r cos, odd -> r sin.
    """
    words, slot = reference.block_words(index, seed, name, 1)
    rows = np.arange(words.shape[0])
    wa, wb = words[rows, slot & ~1], words[rows, slot | 1]
    k = (wa >> np.uint64(1)).astype(np.float64)
    u = (k.astype(np.float32).astype(np.float64) * 2.0**-31 + 2.0**-32).astype(np.float32)
    r = np.sqrt(-2.0 * np.log(u.astype(np.float64)))
    x = wb.astype(np.int64)
    n = ((x + 2**29) // 2**30) % 4
    g = ((((x + 2**29) % 2**30) - 2**29) / 2**30).astype(np.float32).astype(np.float64)
    s0, c0 = np.sin(g * np.pi / 2), np.cos(g * np.pi / 2)
    sin = np.choose(n, [s0, c0, -s0, -c0])  # rotate by n quarter turns
    cos = np.choose(n, [c0, -s0, -c0, s0])
    return np.where(slot % 2 == 0, r * cos, r * sin), r


def _normal_reference_f64(reference, index, seed, name):
    """As above with 53-bit u = (k + 1) 2**-53 and the 64-bit angle, in long double."""
    words, slot = reference.block_words(index, seed, name, 2)
    wa, wb, wc, wd = (words[:, j] for j in range(4))
    k = ((wa >> np.uint64(5)) << np.uint64(26)) | (wb >> np.uint64(6))
    u = (k + np.uint64(1)).astype(np.float64) * 2.0**-53
    L = np.longdouble
    r = np.sqrt(-2 * np.log(u.astype(L)))
    x = (wc << np.uint64(32)) | wd
    n = (((x + np.uint64(2**61)) >> np.uint64(62)) & np.uint64(3)).astype(np.int64)
    g = (((x + np.uint64(2**61)) % np.uint64(2**62)).astype(np.int64) - 2**61).astype(np.float64) * 2.0**-62
    half_pi = L("1.570796326794896619231321691639751442")
    s0, c0 = np.sin(g.astype(L) * half_pi), np.cos(g.astype(L) * half_pi)
    sin = np.choose(n, [s0, c0, -s0, -c0])
    cos = np.choose(n, [c0, -s0, -c0, s0])
    return np.where(slot == 0, r * cos, r * sin).astype(np.float64), r.astype(np.float64)


@pytest.mark.parametrize(
    ("seed", "name", "mean", "std"), [(1, "w", 0.0, 1.0), (5, None, 0.5, 2.0), (2**40, "x", -3.0, 0.02)]
)
def test_normal_f32_matches_box_muller(reference, seed, name, mean, std):
    n = 100_000
    got = fastinit.normal(n, mean, std, seed=seed, name=name).raw.astype(np.float64)
    z, r = _normal_reference_f32(reference, np.arange(n), seed, name)
    x = mean + std * z
    # Bound, from the documented accuracies: log < 2 ulp and sqrt/product 1/2 ulp each give
    # <= 4 float32 ulp of z; sin/cos have absolute error < 2**-24, times r; then the final
    # fma rounds once more (1 ulp of x; mean and std are float32-exact here). Measured
    # max here: ~3.2 ulp of z.
    tol = std * (4 * _ulp(z, np.float32) + r * 2.0**-24) + _ulp(x, np.float32)
    err = np.abs(got - x)
    assert np.all(err <= tol), f"max err / tol = {(err / tol).max()} at {np.argmax(err / tol)}"
    assert np.abs(z).max() <= 6.66 + 1e-6  # the documented float32 range of |z|


@pytest.mark.parametrize(("seed", "name", "mean", "std"), [(1, "w", 0.0, 1.0), (6, "y", 0.5, 2.0)])
def test_normal_f64_matches_box_muller(reference, seed, name, mean, std):
    if np.finfo(np.longdouble).nmant < 63:
        pytest.skip("needs an 80-bit long double for a reference more accurate than float64")
    n = 50_000
    got = fastinit.normal(n, mean, std, seed=seed, name=name, dtype="float64").raw
    z, r = _normal_reference_f64(reference, np.arange(n), seed, name)
    x = mean + std * z
    # log_f64 < 2 ulp, sincos absolute error < 2**-53 (times r), roundings: <= 4 ulp of z,
    # plus 1 ulp of x for the fma. Measured max: 3 ulp of z.
    tol = std * (4 * _ulp(z, np.float64) + r * 2.0**-53) + _ulp(x, np.float64)
    err = np.abs(got - x)
    assert np.all(err <= tol), f"max err / tol = {(err / tol).max()}"
    assert np.abs(z).max() <= 8.58


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("sampler", ["normal", "truncated_normal"])
def test_low_precision_is_float32_rounded_once(reference, sampler, dtype):
    # computed in float32 and rounded to nearest-even once (the bounds -1.5, 2.5 are exact in
    # every dtype, so the clamp in the output dtype changes nothing)
    f = SAMPLERS[sampler]
    x32 = f(20_000, seed=4, name="w", dtype="float32").raw
    got = f(20_000, seed=4, name="w", dtype=dtype).raw
    assert _storage_bytes(got) == _storage_bytes(reference.to_storage(x32, dtype))


TRUNCNORM_CASES = [
    # mean, std, a, b
    (0.0, 1.0, -2.0, 2.0),
    (0.5, 2.0, -1.0, 4.0),
    (0.0, 0.002, -2.0, 2.0),  # tiny std with absolute bounds: really N(0, 0.002**2)
    (0.0, 1.0, -1.0, 8.0),
    (0.0, 1.0, 3.0, 8.0),  # only the right side
    (0.0, 1.0, -np.inf, -3.0),  # one-sided, left tail
    (1.0, 1.0, -np.inf, np.inf),  # no truncation at all
    (0.0, 1.0, 8.0, 9.0),  # 8 sigma: still the normal path (mass ~ 6e-16)
]


def _truncnorm_u(reference, index, seed, name, dtype):
    """u, 1 - u of u01_*_oo from the element's word(s): (2k + 1) 2**-24 or 2**-53."""
    if dtype == "float32":
        words, slot = reference.block_words(index, seed, name, 1)
        k = (words[np.arange(words.shape[0]), slot] >> np.uint64(9)).astype(np.float64)
        u = (2 * k + 1) * 2.0**-24
    else:
        words, slot = reference.block_words(index, seed, name, 2)
        rows = np.arange(words.shape[0])
        wa, wb = words[rows, 2 * slot], words[rows, 2 * slot + 1]
        k = ((wa >> np.uint64(6)) << np.uint64(26)) | (wb >> np.uint64(6))
        u = (2 * k.astype(np.float64) + 1) * 2.0**-53  # 2k + 1 < 2**53: exact
    return u, 1 - u


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("mean", "std", "a", "b"), TRUNCNORM_CASES)
def test_truncated_normal_matches_ndtri(reference, mean, std, a, b, dtype):
    n = 50_000
    got = fastinit.truncated_normal(n, mean, std, a, b, seed=2, name="t", dtype=dtype).raw.astype(np.float64)
    u, v = _truncnorm_u(reference, np.arange(n), 2, "t", dtype)
    # the documented p (distributions/truncnormal.py), in float64 with scipy
    alpha, beta = (a - mean) / std, (b - mean) / std
    m = min(max(0.0, alpha), beta)
    p_left, q_right = special.ndtr(alpha), special.ndtr(-beta)
    total = (special.ndtr(m) - p_left) + (special.ndtr(-m) - q_right)
    left = u * total < special.ndtr(m) - p_left
    p = np.where(left, p_left + u * total, q_right + v * total)
    z = np.where(left, special.ndtri(p), -special.ndtri(p))
    x = np.clip(mean + std * z, a, b)
    # ndtri_lower_f32 has relative error ~2e-7 and p is rounded to float32 (~6e-8 relative,
    # which near p = 1/2 is an absolute 1.5e-7 in z); float64: ~1e-15. Measured max:
    # 1.1e-6 std (float32), 2.2e-15 std (float64).
    rel = 5e-7 if dtype == "float32" else 1e-14
    tol = std * rel * (1 + np.abs(z)) + _ulp(x, dtype)
    err = np.abs(got - x)
    assert np.all(err <= tol), f"max err / tol = {(err / tol).max()}"
    assert got.min() >= a and got.max() <= b


TAIL_CASES = [
    (0.0, 1.0, 12.0, 13.0),
    (0.0, 1.0, -13.0, -12.0),  # reflected: the left tail
    (0.0, 1.0, 40.0, np.inf),  # Q(40) ~ 4e-350 underflows float64: log space only
    (0.0, 1.0, -np.inf, -40.0),
    (1.0, 0.01, 1.15, 2.0),  # 15 sigma with a small std
    (0.0, 1.0, 11.5, 11.6),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("mean", "std", "a", "b"), TAIL_CASES)
def test_truncated_normal_tail_matches_scipy(reference, mean, std, a, b, dtype):
    n = 20_000
    got = fastinit.truncated_normal(n, mean, std, a, b, seed=3, name="t", dtype=dtype).raw.astype(np.float64)
    _, v = _truncnorm_u(reference, np.arange(n), 3, "t", dtype)
    alpha, beta = (a - mean) / std, (b - mean) / std
    sign = 1.0 if alpha >= 0 else -1.0
    near, far = (alpha, beta) if sign > 0 else (-beta, -alpha)
    # p = Q(far) + v (Q(near) - Q(far)), in logs: log Q(near) + log(r + v (1 - r))
    log_q = special.log_ndtr(-near)
    log_r = special.log_ndtr(-far) - log_q
    log_p = log_q + np.log(np.exp(log_r) + v * -np.expm1(log_r))
    x = np.clip(mean + std * sign * -special.ndtri_exp(log_p), a, b)
    # float32: computed in float64 and rounded once; float64: scipy's ndtri_exp itself is
    # good to ~3e-16 here (it drifts to ~6e-13 near 1000 sigma, so those are not used)
    tol = _ulp(x, np.float32) if dtype == "float32" else 4e-15 * np.abs(x)
    err = np.abs(got - x)
    assert np.all(err <= tol), f"max err / tol = {(err / tol).max()}"
    assert got.min() >= a and got.max() <= b


# ---- (b) index= ---------------------------------------------------------------------------


@st.composite
def shape_and_index(draw):
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
    per_dim = []
    for n in shape:
        kinds = ["full", "slice", "int"] if n else ["full", "slice"]
        kind = draw(st.sampled_from(kinds))
        if kind == "full":
            per_dim.append(slice(None))
        elif kind == "int":
            i = draw(st.integers(-n, n - 1))
            per_dim.append(np.int64(i) if draw(st.booleans()) else i)
        else:
            bound = st.none() | st.integers(-n - 2, n + 2)
            step = st.none() | st.sampled_from([1, 2, 3, -1, -2, -3])
            per_dim.append(slice(draw(bound), draw(bound), draw(step)))
    form = draw(st.sampled_from(["tuple", "drop_trailing", "ellipsis", "bare"]))
    if form == "drop_trailing":
        while per_dim and per_dim[-1] == slice(None):
            per_dim.pop()
        index = tuple(per_dim)
    elif form == "ellipsis":
        at = draw(st.integers(0, len(per_dim)))
        width = draw(st.integers(0, len(per_dim) - at))
        # ... stands for a run of full slices: make the dims it replaces full
        for j in range(at, at + width):
            per_dim[j] = slice(None)
        index = tuple(per_dim[:at]) + (Ellipsis,) + tuple(per_dim[at + width :])
    elif form == "bare" and len(per_dim) >= 1:
        index = per_dim[0]  # not a tuple: a single int or slice
    else:
        index = tuple(per_dim)
    return shape, index


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_index_equals_full_tensor_indexed(sampler, dtype):
    f = SAMPLERS[sampler]

    @HYPOTHESIS
    @given(shape_and_index())
    def check(case):
        shape, index = case
        full = f(shape, seed=11, name="idx", dtype=dtype).raw
        expected = full[index]
        got = f(shape, seed=11, name="idx", dtype=dtype, index=index)
        assert got.shape == expected.shape
        assert got.dtype.name == dtype
        assert _storage_bytes(got.raw) == _storage_bytes(expected)

    check()


LARGE_INDEX_CASES = [
    ((100_000,), (slice(12_345, 99_999),)),  # one long run starting inside a tile
    ((100_000,), slice(None, None, 7)),
    ((100_000,), slice(None, None, -1)),
    ((100_000,), slice(-5000, 3, -3)),
    ((3, 5000), (slice(1, None), slice(17, 4950))),
    ((3, 5000), (Ellipsis, slice(None, None, -1))),
    ((2, 3, 4097), (1, slice(None), slice(5, 4102))),
    ((2, 3, 4097), (slice(None, None, -1), Ellipsis, slice(64, 4160))),
    ((5, 6000), (slice(None), 4099)),  # a column: step 6000 through the flat index
    ((4, 3, 2, 4100), (Ellipsis, 0, slice(None))),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize(("shape", "index"), LARGE_INDEX_CASES)
def test_index_large_runs(sampler, dtype, shape, index):
    f = SAMPLERS[sampler]
    full = f(shape, seed=12, name="big", dtype=dtype).raw
    got = f(shape, seed=12, name="big", dtype=dtype, index=index)
    assert got.shape == full[index].shape
    assert _storage_bytes(got.raw) == _storage_bytes(full[index])


@pytest.mark.parametrize("rows", [2**20, 2**22])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_index_beyond_2_32_rows(reference, sampler, dtype, rows):
    # shape (rows, 8192): 2**33 or 2**35 elements, never allocated. The last three rows sit
    # at flat offsets ~2**33 / ~2**35, where the block index passes 2**32 (float64 at 2**33,
    # float32 beyond 2**34) and the counter's high word is in use.
    cols = 2**13
    shape = (rows, cols)
    f = SAMPLERS[sampler]
    tail = f(shape, seed=13, name="huge", dtype=dtype, index=(slice(rows - 3, None), slice(None)))
    assert tail.shape == (3, cols)
    for j, row in enumerate(range(rows - 3, rows)):
        alone = f(shape, seed=13, name="huge", dtype=dtype, index=(row,))
        assert _storage_bytes(alone.raw) == _storage_bytes(tail.raw[j])
        halves = [f(shape, seed=13, name="huge", dtype=dtype, index=(row - rows, slice(lo, hi)))
                  for lo, hi in ((0, 4097), (4097, None))]  # fmt: skip
        assert b"".join(_storage_bytes(h.raw) for h in halves) == _storage_bytes(tail.raw[j])
    if sampler == "uniform":
        flat = np.arange((rows - 3) * cols, rows * cols, dtype=np.uint64)
        ref = reference.uniform(flat, -1.5, 2.25, seed=13, name="huge", dtype=dtype)
        assert _storage_bytes(tail.raw) == _storage_bytes(ref)


# ---- (c) out= --------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                "bfloat16": torch.bfloat16}  # fmt: skip


def _torch_storage(t):
    """A torch tensor's values as the storage FastArray.raw uses (bf16: its bits)."""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def _numpy_out(dtype, shape):
    if dtype == "bfloat16":
        import ml_dtypes

        return np.full(shape, 7, ml_dtypes.bfloat16)
    return np.full(shape, 7, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_out_numpy(sampler, dtype):
    f = SAMPLERS[sampler]
    expected = f((33, 70), seed=21, name="o", dtype=dtype).raw
    out = _numpy_out(dtype, (33, 70))
    result = f((33, 70), seed=21, name="o", out=out)  # dtype inferred from out
    assert result is out
    assert _storage_bytes(out) == _storage_bytes(expected)
    out2 = _numpy_out(dtype, (33, 70))
    assert f((33, 70), seed=21, name="o", dtype=dtype, out=out2) is out2  # dtype given, same
    assert _storage_bytes(out2) == _storage_bytes(expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_numpy_non_contiguous_leaves_the_rest(dtype):
    expected = fastinit.normal((20, 30), seed=22, name="o", dtype=dtype).raw
    base = _numpy_out(dtype, (40, 61))
    before = base.copy()
    view = base[::-2, 1::2]  # negative and positive steps
    assert view.shape == (20, 30)
    fastinit.normal((20, 30), seed=22, name="o", out=view)
    assert _storage_bytes(view) == _storage_bytes(expected.view(view.dtype))
    untouched = np.ones(base.shape, bool)
    untouched[::-2, 1::2] = False
    assert _storage_bytes(base[untouched]) == _storage_bytes(before[untouched])


@pytest.mark.parametrize("layout", ["contiguous", "T", "every_other_column", "offset"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_out_torch(sampler, dtype, layout):
    f = SAMPLERS[sampler]
    shape = (24, 130)
    expected = f(shape, seed=23, name="t", dtype=dtype).raw
    tdt = TORCH_DTYPES[dtype]
    if layout == "contiguous":
        base = torch.full(shape, 7.0, dtype=tdt)
        out = base
    elif layout == "T":
        base = torch.full(shape[::-1], 7.0, dtype=tdt)
        out = base.T
    elif layout == "every_other_column":
        base = torch.full((shape[0], 2 * shape[1]), 7.0, dtype=tdt)
        out = base[:, ::2]
    else:  # a view that starts inside its storage (nonzero offset)
        base = torch.full((shape[0] + 1, shape[1] + 2), 7.0, dtype=tdt)
        out = base[1:, 1:-1]
    before = base.clone()
    assert tuple(out.shape) == shape
    result = f(shape, seed=23, name="t", out=out)
    assert result is out
    assert _storage_bytes(_torch_storage(out.contiguous())) == _storage_bytes(expected)
    if layout == "every_other_column":
        assert torch.equal(base[:, 1::2], before[:, 1::2])  # the skipped columns untouched


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_out_array_and_memoryview(dtype):
    code = {"float32": "f", "float64": "d"}[dtype]
    expected = fastinit.truncated_normal(60, seed=24, name="m", dtype=dtype).raw
    a = array.array(code, [0.0] * 60)
    assert fastinit.truncated_normal(60, seed=24, name="m", out=a) is a
    assert a.tobytes() == expected.tobytes()
    m = memoryview(bytearray(60 * expected.itemsize)).cast(code, (6, 10))
    assert fastinit.truncated_normal((6, 10), seed=24, name="m", out=m) is m
    assert m.tobytes() == expected.tobytes()
    m2 = memoryview(np.zeros((6, 10), dtype))
    assert fastinit.truncated_normal((6, 10), seed=24, name="m", out=m2) is m2
    assert m2.tobytes() == expected.tobytes()


def test_out_fastarray():
    out = FastArray.empty((5, 7), "bfloat16")
    assert fastinit.uniform((5, 7), seed=25, out=out) is out
    assert out.tobytes() == fastinit.uniform((5, 7), seed=25, dtype="bfloat16").tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_out_with_index(sampler, dtype):
    f = SAMPLERS[sampler]
    full = f((9, 40), seed=26, name="oi", dtype=dtype).raw
    index = (slice(1, 8, 3), slice(None, None, -1))
    out = _numpy_out(dtype, (3, 40))
    assert f((9, 40), seed=26, name="oi", index=index, out=out) is out
    assert _storage_bytes(out) == _storage_bytes(full[index])
    t = torch.zeros(40, 3, dtype=TORCH_DTYPES[dtype]).T
    f((9, 40), seed=26, name="oi", index=index, out=t)
    assert _storage_bytes(_torch_storage(t.contiguous())) == _storage_bytes(full[index])


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_dtype_inferred_matters_for_uniform_bounds(dtype):
    # the clamp interval depends on the output dtype, so out's dtype must be used for it:
    # in bfloat16 / float16 most u near 1 - 2**-24 would round up to high = 1 without it
    n = 200_000
    expected = fastinit.uniform(n, 0.0, 1.0, seed=27, dtype=dtype).raw
    out = _numpy_out(dtype, n)
    fastinit.uniform(n, 0.0, 1.0, seed=27, out=out)
    assert _storage_bytes(out) == _storage_bytes(expected)
    assert out.astype(np.float64).max() < 1.0


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_out_zero_dim(sampler):
    # a 0-d destination, e.g. one element of a bigger tensor addressed by ints
    f = SAMPLERS[sampler]
    expected = f((4, 5), seed=28, name="z").raw[2, 3]
    out = np.full((), 7.0, np.float32)
    assert f((4, 5), seed=28, name="z", index=(2, 3), out=out) is out
    assert out == expected
    out0 = np.full((), 7.0, np.float32)
    f((), seed=28, name="z", out=out0)
    assert out0 == f((), seed=28, name="z").raw


def test_out_zero_dim_torch():
    t = torch.full((), 7.0)
    fastinit.uniform((), seed=29, out=t)
    assert t.item() == float(fastinit.uniform((), seed=29).raw)


# ---- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_zero_dim_and_zero_size_shapes(sampler, dtype):
    f = SAMPLERS[sampler]
    scalar = f((), seed=30, name="s", dtype=dtype)
    assert scalar.shape == () and scalar.size == 1
    assert scalar.raw.tobytes() == f(1, seed=30, name="s", dtype=dtype).raw.tobytes()
    assert f(5, seed=30, name="s", dtype=dtype).shape == (5,)  # an int shape
    for shape in [(0,), (3, 0), (0, 4, 2), (2, 3, 0, 1)]:
        x = f(shape, seed=30, name="s", dtype=dtype)
        assert x.shape == shape and x.size == 0 and x.dtype.name == dtype
        assert f(shape, seed=30, name="s", out=_numpy_out(dtype, shape)).shape == shape
    assert f([2, np.int64(3)], seed=30, name="s", dtype=dtype).shape == (2, 3)


# ---- (d) bad input -------------------------------------------------------------------------

BAD_CALLS = [
    # (callable, error, message pattern)
    (lambda: fastinit.uniform((2, -1)), ValueError, r"shape=\(2, -1\) has a negative dimension"),
    (lambda: fastinit.uniform(-3), ValueError, "shape"),
    (lambda: fastinit.uniform((2, 1.5)), TypeError, "shape.*only ints"),
    (lambda: fastinit.uniform((2, True)), TypeError, "shape.*only ints"),
    (lambda: fastinit.uniform(2.0), TypeError, "shape must be an int or a tuple"),
    (lambda: fastinit.uniform(None), TypeError, "shape must be an int or a tuple"),
    (lambda: fastinit.uniform("ab"), TypeError, "shape"),
    (lambda: fastinit.normal(3, 0.0, -1.0), ValueError, "std=-1.0 must be >= 0"),
    (lambda: fastinit.normal(3, 0.0, float("nan")), ValueError, "std is NaN"),
    (lambda: fastinit.normal(3, float("inf"), 1.0), ValueError, "mean=inf must be finite"),
    (lambda: fastinit.normal(3, "0", 1.0), TypeError, "mean must be a real number"),
    (lambda: fastinit.truncated_normal(3, 0.0, -0.5), ValueError, "std=-0.5"),
    (lambda: fastinit.truncated_normal(3, 0.0, 1.0, 1.0, 1.0), ValueError, "a must be < b"),
    (lambda: fastinit.truncated_normal(3, 0.0, 1.0, 2.0, -2.0), ValueError, "a must be < b"),
    (lambda: fastinit.truncated_normal(3, 0.0, 1.0, float("nan"), 1.0), ValueError, "a is NaN"),
    (
        lambda: fastinit.truncated_normal(3, 0.0, 1.0, -1.0, 2.0, lower=-1.0),
        ValueError,
        "either as a/b.*or as lower/upper",
    ),
    (lambda: fastinit.truncated_normal(3, upper=-3.0), ValueError, "lower must be < upper"),
    (
        lambda: fastinit.truncated_normal(3, 0.0, 1.0, 1e-30, 2e-30, dtype="float16"),
        ValueError,
        "no float16 value",
    ),
    (lambda: fastinit.uniform(3, 1.0, 0.0), ValueError, "low=1.0 must be <= high=0.0"),
    (lambda: fastinit.uniform(3, 0.0, float("inf")), ValueError, "high=inf must be finite"),
    (lambda: fastinit.uniform(3, -1e308, 1e308, dtype="float64"), ValueError, "overflows"),
    (lambda: fastinit.uniform(3, 1.0 + 1e-4, 1.0 + 2e-4, dtype="float16"), ValueError, "no float16 value"),
    (lambda: fastinit.uniform(3, dtype="int8"), TypeError, "dtype='int8' is not supported"),
    (lambda: fastinit.uniform(3, dtype=np.int32), TypeError, "dtype=.* is not supported"),
    (lambda: fastinit.normal(3, dtype="complex64"), TypeError, "dtype='complex64' is not supported"),
    (lambda: fastinit.uniform(3, device="tpu"), ValueError, "device='tpu' is not supported"),
    (lambda: fastinit.uniform(3, device=0), TypeError, "device must be a str"),
    (
        lambda: fastinit.uniform(3, device="cuda"),
        ValueError,
        "device='cuda': (no CUDA GPU is available|fastinit's CUDA backend needs the numba-cuda package)",
    ),
    (lambda: fastinit.normal(3, device="cuda:1"), ValueError, "device='cuda:1': (no CUDA GPU|.*numba-cuda)"),
    (lambda: fastinit.uniform(3, seed=-1), ValueError, r"seed=-1 is out of range"),
    (lambda: fastinit.uniform(3, seed=2**64), ValueError, "seed=.* is out of range"),
    (lambda: fastinit.normal(3, seed=0.5), TypeError, "seed must be an int"),
    (lambda: fastinit.normal(3, name=b"w"), TypeError, "name must be a str or None"),
    (lambda: fastinit.uniform((3, 4), index=(0, 4)), ValueError, r"index\[1\]=4 is out of bounds"),
    (lambda: fastinit.uniform((3, 4), index=(-4,)), ValueError, r"index\[0\]=-4 is out of bounds"),
    (
        lambda: fastinit.uniform((3, 4), index=(0, 0, 0)),
        ValueError,
        "index has 3 entries but the tensor has 2",
    ),
    (lambda: fastinit.uniform((3, 4), index=(..., 0, ...)), ValueError, "at most one Ellipsis"),
    (lambda: fastinit.uniform((3, 4), index=slice(None, None, 0)), ValueError, r"index\[0\] has step 0"),
    (lambda: fastinit.uniform((3, 4), index=(0, 1.0)), TypeError, r"index\[1\] must be an int or a slice"),
    (
        lambda: fastinit.uniform((3, 4), index=(slice(0.5, None),)),
        TypeError,
        r"index\[0\] has a non-integer start",
    ),
    (lambda: fastinit.uniform((3, 4), index=(True,)), TypeError, r"index\[0\]"),
    (lambda: fastinit.uniform((3, 4), index=([0, 1],)), TypeError, r"index\[0\]"),
    (lambda: fastinit.uniform((), index=(0,)), ValueError, "index has 1 entries but the tensor has 0"),
    (
        lambda: fastinit.uniform((3, 4), out=np.empty((4, 3), np.float32)),
        ValueError,
        r"out has shape \(4, 3\) but the result has shape \(3, 4\)",
    ),
    (
        lambda: fastinit.uniform((3, 4), index=(0,), out=np.empty((3, 4), np.float32)),
        ValueError,
        "out has shape",
    ),
    (
        lambda: fastinit.uniform((3, 4), dtype="float64", out=np.empty((3, 4), np.float32)),
        TypeError,
        "out has dtype float32 but dtype=float64",
    ),
    (
        lambda: fastinit.normal((3, 4), dtype="bfloat16", out=np.empty((3, 4), np.float16)),
        TypeError,
        "out has dtype float16",
    ),
    (lambda: fastinit.normal((3, 4), out=np.empty((3, 4), np.int32)), TypeError, "out has dtype int32"),
    (lambda: fastinit.normal((3, 4), out=np.empty((3, 4), np.uint16)), TypeError, "out has dtype uint16"),
    (lambda: fastinit.normal((3,), out=[0.0, 0.0, 0.0]), TypeError, "out must be a NumPy array"),
    (lambda: fastinit.normal((3,), out=b"abcdefghijkl"), ValueError, "out is a read-only buffer"),
]


def _read_only():
    a = np.zeros((3, 4), np.float32)
    a.flags.writeable = False
    return a


BAD_OUT = [
    (_read_only, ValueError, "out is read-only"),
    (
        lambda: np.broadcast_to(np.zeros(4, np.float32), (3, 4)),
        ValueError,
        "out is read-only",
    ),  # also read-only
    (
        lambda: np.lib.stride_tricks.as_strided(np.zeros(4, np.float32), (3, 4), (0, 4)),
        ValueError,
        "out has stride 0 along axis 0",
    ),
    (
        lambda: np.lib.stride_tricks.as_strided(np.zeros(8, np.float32), (3, 4), (4, 4)),
        ValueError,
        "out has overlapping memory",
    ),
    (lambda: np.zeros((3, 4), ">f4"), ValueError, "out has non-native byte order"),
    (lambda: torch.zeros(3, 4, requires_grad=True), TypeError, "out requires grad"),
    (lambda: torch.zeros(3, 4, dtype=torch.int32), TypeError, "out has DLPack dtype"),
]


@pytest.mark.parametrize(
    ("call", "error", "match"), BAD_CALLS, ids=[re.sub(r"[^\w=<>.-]+", "_", m)[:48] for _, _, m in BAD_CALLS]
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize(
    ("make", "error", "match"), BAD_OUT, ids=[re.sub(r"[^\w=<>.-]+", "_", m)[:48] for _, _, m in BAD_OUT]
)
def test_bad_out(sampler, make, error, match):
    out = make()

    def snapshot():
        return out.detach().clone().numpy() if isinstance(out, torch.Tensor) else out.copy()

    before = snapshot()
    with pytest.raises(error, match=match):
        SAMPLERS[sampler]((3, 4), out=out)
    np.testing.assert_array_equal(snapshot(), before)  # nothing was written


def test_jax_array_out_is_refused():
    jnp = pytest.importorskip("jax.numpy")
    out = jnp.zeros((3, 4), jnp.float32)
    for f in SAMPLERS.values():
        with pytest.raises(TypeError, match="out is a JAX array; JAX arrays are immutable"):
            f((3, 4), out=out)


def test_bool_parameters_are_refused():
    with pytest.raises(TypeError, match="low must be a real number"):
        fastinit.uniform(3, True, 2.0)
    with pytest.raises(TypeError, match="std must be a real number"):
        fastinit.normal(3, 0.0, True)


@pytest.mark.parametrize(("low", "high"), [(0.0, 1e39), (-1e39, 1e39), (-1e39, 0.0)])
def test_uniform_range_beyond_float32(low, high):
    """A finite [low, high) wider than float32 can hold: either refused with a ValueError that
    names low/high, or sampled in range, without NaN and not collapsed onto one value."""
    with warnings.catch_warnings():
        # the RuntimeWarning this currently also emits is test_no_numpy_warning_...'s subject
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            x = fastinit.uniform(10_000, low, high, seed=1, dtype="float32").raw
        except ValueError as error:
            assert "low" in str(error) or "high" in str(error)
            return
    assert not np.isnan(x).any()
    assert np.unique(x).size > 1000
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize(("dtype", "bound"), [("float16", 1e5), ("float32", 1e39), ("bfloat16", 1e39)])
def test_truncation_bounds_beyond_the_dtype_range(dtype, bound):
    # bounds that the output dtype cannot hold clamp nothing: the same values as no bounds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x = fastinit.truncated_normal(1000, 0.0, 1.0, -bound, bound, seed=2, dtype=dtype)
    expected = fastinit.truncated_normal(1000, 0.0, 1.0, -np.inf, np.inf, seed=2, dtype=dtype)
    assert x.tobytes() == expected.tobytes()


@pytest.mark.parametrize(
    "call",
    [
        lambda: fastinit.truncated_normal(10, 0.0, 1.0, -1e5, 1e5, dtype="float16"),
        lambda: fastinit.truncated_normal(10, 0.0, 1.0, -1e39, 1e39, dtype="float32"),
        lambda: fastinit.uniform(10, 0.0, 1e5, dtype="float16"),
    ],
    ids=["truncated_normal-f16", "truncated_normal-f32", "uniform-f16"],
)
def test_no_numpy_warning_for_arguments_beyond_the_dtype_range(call):
    # the argument preparation must not leak NumPy's "overflow encountered in cast"
    # RuntimeWarning (under filterwarnings=error it replaces the result or a clear error);
    # a uniform interval the dtype cannot hold is refused with a ValueError naming the bound
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            call()
        except ValueError as error:
            assert "high=" in str(error) or "low=" in str(error)


def test_std_zero_gives_the_mean():
    assert np.all(fastinit.normal(10, 1.25, 0.0).raw == 1.25)
    assert np.all(fastinit.truncated_normal(10, 1.25, 0.0, -2.0, 2.0).raw == 1.25)
    assert np.all(fastinit.truncated_normal(10, 5.0, 0.0, -2.0, 2.0).raw == 2.0)  # clamped into [a, b]


# ---- (e) the public compiled building blocks compose in a user's parallel kernel ----------------


@numba.njit(parallel=True)
def _user_tiles(key, t0, ntiles, out_uniform, out_normal):
    """What a user writes: tile t, lane j is block (t0 + t) * 16 + j; word k of that block
    goes to element 16 k + j of the tile (rng/layout.py); a normal pair takes words (0, 1)
    and (2, 3)."""
    for t in prange(ntiles):
        for j in range(16):
            block = (uint64(t0) + uint64(t)) * uint64(16) + uint64(j)
            w0, w1, w2, w3 = philox4x32_block(
                block & uint64(0xFFFFFFFF), block >> uint64(32), key[2], key[3], key[0], key[1], 10
            )
            base = t * 64 + j
            out_uniform[base] = u01_f32_co(w0)
            out_uniform[base + 16] = u01_f32_co(w1)
            out_uniform[base + 32] = u01_f32_co(w2)
            out_uniform[base + 48] = u01_f32_co(w3)
            x0, x1 = normal_pair_f32(w0, w1, np.float32(0.0), np.float32(1.0))
            x2, x3 = normal_pair_f32(w2, w3, np.float32(0.0), np.float32(1.0))
            out_normal[base] = x0
            out_normal[base + 16] = x1
            out_normal[base + 32] = x2
            out_normal[base + 48] = x3


@pytest.mark.slow  # the first call compiles the user kernel (~6 s)
@pytest.mark.parametrize("t0", [0, 3, 2**28 - 2, 2**30 + 5])
def test_user_kernel_composes_public_blocks(t0):
    ntiles = 200
    seed, name = 31, "compose"
    key = fastinit.derive_key(seed, name).as_array()
    u = np.empty(ntiles * 64, np.float32)
    z = np.empty(ntiles * 64, np.float32)
    _user_tiles(key, t0, ntiles, u, z)
    start = t0 * 64
    shape = (max(start + ntiles * 64, 1),)
    index = slice(start, start + ntiles * 64)
    # tiles at 2**28 - 2 ... cross block index 2**32: the counter's high word becomes 1
    assert _storage_bytes(u) == _storage_bytes(fastinit.uniform(shape, seed=seed, name=name, index=index).raw)
    assert _storage_bytes(z) == _storage_bytes(fastinit.normal(shape, seed=seed, name=name, index=index).raw)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "bfloat16"])
def test_uniform_interval_as_documented_with_a_low_just_above_a_bfloat16_value(dtype):
    """docs/schemes.md#output-intervals: values lie in [low, high) after rounding, except that in
    bfloat16 the lower end is low rounded to float32 first. 1/64 as float64 computes it (torch's
    Linear bound at fan_in 4096) sits just below 1/64, a float32 and bfloat16 value."""
    b = 1 / math.sqrt(4096.0) * math.sqrt(3.0) * math.sqrt(2.0 / (1 + 5))
    assert b < 1 / 64
    x = np.asarray(fastinit.uniform((1 << 20,), -b, b, seed=1, dtype=dtype)).astype(np.float64)
    assert x.max() < b
    if dtype == "bfloat16":
        assert x.min() >= float(np.float32(-b)) == -1 / 64
        assert x.min() == -1 / 64  # reached: 2**20 draws put some mass on the lowest value
    else:
        assert x.min() >= -b
