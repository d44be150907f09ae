"""Word-to-float converters (fastinit/rng/convert.py) against their documented output sets.

Each converter is checked (1) at the edge words 0 and 0xFFFFFFFF (all four pairs for the
64-bit ones) against the exact values its docstring table implies, (2) on random and
evenly spread words for the documented interval and arithmetic form, and (3) against an
independent NumPy re-implementation of the formula, with exact equality (every converter's
result is a single correctly rounded operation on exactly known values, so exact equality is
what the docstring promises).
"""

from __future__ import annotations

from fractions import Fraction

import numba
import numpy as np
import pytest
from numba import types

from fastinit.rng import convert as C

TOP = 0xFFFFFFFF
U64 = np.uint64


# ---- compiled drivers: apply a converter to an array of words ------------------------------


def _map1(fn):
    @numba.njit
    def run(ws):
        out = np.empty(ws.size, np.float64)
        for i in range(ws.size):
            out[i] = fn(ws[i])
        return out

    return run


def _map1_pair(fn):
    @numba.njit
    def run(ws):
        out = np.empty((ws.size, 2), np.float64)
        for i in range(ws.size):
            a, b = fn(ws[i])
            out[i, 0] = a
            out[i, 1] = b
        return out

    return run


def _map2(fn):
    @numba.njit
    def run(wa, wb):
        out = np.empty(wa.size, np.float64)
        for i in range(wa.size):
            out[i] = fn(wa[i], wb[i])
        return out

    return run


def _map2_pair(fn):
    @numba.njit
    def run(wa, wb):
        out = np.empty((wa.size, 2), np.float64)
        for i in range(wa.size):
            a, b = fn(wa[i], wb[i])
            out[i, 0] = a
            out[i, 1] = b
        return out

    return run


RUN = {
    "u01_f32_co": _map1(C.u01_f32_co),
    "u01_f32_oc": _map1(C.u01_f32_oc),
    "u01_f32_oo": _map1_pair(C.u01_f32_oo),
    "quarter_turn_f32": _map1_pair(C.quarter_turn_f32),
    "u01_f64_co": _map2(C.u01_f64_co),
    "u01_f64_oc": _map2(C.u01_f64_oc),
    "u01_f64_oo": _map2_pair(C.u01_f64_oo),
    "quarter_turn_f64": _map2_pair(C.quarter_turn_f64),
}


def test_every_converter_is_covered():
    assert set(RUN) == set(C.__all__)


# ---- words -----------------------------------------------------------------------------------


def _words(n=1 << 16, seed=0):
    """Random words, evenly spread words, and the words next to every power of two."""
    rng = np.random.default_rng(seed)
    spread = np.arange(0, 2**32, 2**32 // 4099, dtype=np.uint64)
    near = [(1 << b) + d for b in range(32) for d in (-1, 0, 1) if 0 <= (1 << b) + d <= TOP]
    edges = np.array(
        [0, 1, 2, TOP - 1, TOP, 2**29 - 1, 2**29, 2**29 + 1, 3 * 2**30 - 2**29] + near, np.uint64
    )
    return np.concatenate([edges, spread, rng.integers(0, 2**32, size=n, dtype=np.uint64)])


def _pairs(n=1 << 16, seed=1):
    rng = np.random.default_rng(seed)
    edge = np.array([0, 1, 31, 32, 63, 64, 2**26, TOP - 64, TOP - 63, TOP - 1, TOP], np.uint64)
    wa, wb = np.meshgrid(edge, edge)
    wa = np.concatenate([wa.ravel(), rng.integers(0, 2**32, size=n, dtype=np.uint64)])
    wb = np.concatenate([wb.ravel(), rng.integers(0, 2**32, size=n, dtype=np.uint64)])
    return wa, wb


# ---- (1) edge words: exact values from the docstring table -----------------------------------

EDGE_1 = [
    # converter, word, expected (exact)
    ("u01_f32_co", 0, 0.0),
    ("u01_f32_co", TOP, 1 - 2.0**-24),
    ("u01_f32_co", 0xFF, 0.0),  # the low 8 bits are dropped
    ("u01_f32_co", 0x100, 2.0**-24),
    ("u01_f32_oc", 0, 2.0**-32),
    ("u01_f32_oc", 1, 2.0**-32),
    ("u01_f32_oc", 2, 3 * 2.0**-32),
    ("u01_f32_oc", TOP, 1.0),  # fl(2**31 - 1) = 2**31: 1 + 2**-32 rounds to 1
    ("u01_f32_oc", 2**31, 0.5),  # fl(2**30 * 2**-31 + 2**-32) = fl(0.5 + 2**-32) = 0.5
]

EDGE_1_PAIR = [
    ("u01_f32_oo", 0, (2.0**-24, 1 - 2.0**-24)),
    ("u01_f32_oo", TOP, (1 - 2.0**-24, 2.0**-24)),
    ("u01_f32_oo", 0x1FF, (2.0**-24, 1 - 2.0**-24)),  # the low 9 bits are dropped
    ("u01_f32_oo", 0x200, (3 * 2.0**-24, 1 - 3 * 2.0**-24)),
    ("u01_f32_oo", 2**31, (0.5 + 2.0**-24, 0.5 - 2.0**-24)),
    # angle w 2**-32 turns = (n + g) quarter turns
    ("quarter_turn_f32", 0, (0, 0.0)),
    ("quarter_turn_f32", TOP, (0, -(2.0**-30))),  # just below a full turn: n = 4 = 0 mod 4
    ("quarter_turn_f32", 2**30, (1, 0.0)),
    ("quarter_turn_f32", 2**31, (2, 0.0)),
    ("quarter_turn_f32", 3 * 2**30, (3, 0.0)),
    ("quarter_turn_f32", 2**29, (1, -0.5)),  # g = -1/2 exactly: the closed end
    # just below the open end 1/2: exact g = 1/2 - 2**-30 rounds to 0.5 in float32
    ("quarter_turn_f32", 2**29 - 1, (0, 0.5)),
    ("quarter_turn_f32", 2**29 - 64, (0, 0.5 - 2.0**-24)),
    ("quarter_turn_f32", 2**29 + 1, (1, -0.5)),  # -1/2 + 2**-30 rounds to -1/2
    ("quarter_turn_f32", 2**29 + 64, (1, -0.5 + 2.0**-24)),
    ("quarter_turn_f32", 1, (0, 2.0**-30)),
]

K53_TOP = 2**53 - 1
EDGE_2 = [
    # converter, (wa, wb), expected; k = (wa >> 5) 2**26 + (wb >> 6)
    ("u01_f64_co", (0, 0), 0.0),
    ("u01_f64_co", (TOP, TOP), K53_TOP * 2.0**-53),
    ("u01_f64_co", (0, TOP), (2**26 - 1) * 2.0**-53),
    ("u01_f64_co", (TOP, 0), (2**27 - 1) * 2**26 * 2.0**-53),
    ("u01_f64_co", (31, 63), 0.0),
    ("u01_f64_co", (32, 64), (2**26 + 1) * 2.0**-53),
    ("u01_f64_oc", (0, 0), 2.0**-53),
    ("u01_f64_oc", (TOP, TOP), 1.0),
    ("u01_f64_oc", (0, TOP), 2**26 * 2.0**-53),
    ("u01_f64_oc", (TOP, 0), ((2**27 - 1) * 2**26 + 1) * 2.0**-53),
]

K52_TOP = 2**52 - 1
EDGE_2_PAIR = [
    # u01_f64_oo: k = (wa >> 6) 2**26 + (wb >> 6), u = (2k + 1) 2**-53
    ("u01_f64_oo", (0, 0), (2.0**-53, 1 - 2.0**-53)),
    ("u01_f64_oo", (TOP, TOP), (1 - 2.0**-53, 2.0**-53)),
    ("u01_f64_oo", (0, TOP), ((2**27 - 1) * 2.0**-53, 1 - (2**27 - 1) * 2.0**-53)),
    ("u01_f64_oo", (TOP, 0), ((2**53 - 2**27 + 1) * 2.0**-53, (2**27 - 1) * 2.0**-53)),
    # quarter_turn_f64: angle (wa 2**32 + wb) 2**-64 turns
    ("quarter_turn_f64", (0, 0), (0, 0.0)),
    ("quarter_turn_f64", (TOP, TOP), (0, -(2.0**-62))),
    ("quarter_turn_f64", (0, TOP), (0, (2**32 - 1) * 2.0**-62)),
    ("quarter_turn_f64", (TOP, 0), (0, -(2.0**-30))),
    ("quarter_turn_f64", (2**30, 0), (1, 0.0)),
    ("quarter_turn_f64", (2**29, 0), (1, -0.5)),
    ("quarter_turn_f64", (2**29 - 1, TOP), (0, 0.5)),  # 1/2 - 2**-62 rounds to 0.5
    ("quarter_turn_f64", (3 * 2**30, 1), (3, 2.0**-62)),
]


def _exact(x):
    return Fraction(float(x))


@pytest.mark.parametrize(
    ("name", "w", "expected"), EDGE_1, ids=lambda v: hex(v) if isinstance(v, int) else None
)
def test_edge_words_f32(name, w, expected):
    fn = getattr(C, name)
    assert _exact(fn(U64(w))) == Fraction(expected)
    assert RUN[name](np.array([w], np.uint64))[0] == expected


@pytest.mark.parametrize(("name", "w", "expected"), EDGE_1_PAIR)
def test_edge_words_f32_pair(name, w, expected):
    got = getattr(C, name)(U64(w))
    assert tuple(_exact(x) for x in got) == tuple(Fraction(e) for e in expected)
    np.testing.assert_array_equal(RUN[name](np.array([w], np.uint64))[0], expected)


@pytest.mark.parametrize(("name", "ws", "expected"), EDGE_2)
def test_edge_words_f64(name, ws, expected):
    got = getattr(C, name)(U64(ws[0]), U64(ws[1]))
    assert _exact(got) == Fraction(expected)


@pytest.mark.parametrize(("name", "ws", "expected"), EDGE_2_PAIR)
def test_edge_words_f64_pair(name, ws, expected):
    got = getattr(C, name)(U64(ws[0]), U64(ws[1]))
    assert tuple(_exact(x) for x in got) == tuple(Fraction(e) for e in expected)


@pytest.mark.parametrize(
    ("name", "nargs", "return_type"),
    [
        ("u01_f32_co", 1, types.float32),
        ("u01_f32_oc", 1, types.float32),
        ("u01_f32_oo", 1, types.UniTuple(types.float32, 2)),
        ("quarter_turn_f32", 1, types.Tuple([types.int32, types.float32])),
        ("u01_f64_co", 2, types.float64),
        ("u01_f64_oc", 2, types.float64),
        ("u01_f64_oo", 2, types.UniTuple(types.float64, 2)),
        ("quarter_turn_f64", 2, types.Tuple([types.int32, types.float64])),
    ],
)
def test_return_types(name, nargs, return_type):
    # The float32 converters must compute in float32 (never widen to float64): the rounding
    # of each step is part of the stream.
    fn = getattr(C, name)
    fn(*[U64(1)] * nargs)
    assert fn.overloads[(types.uint64,) * nargs].signature.return_type == return_type


# ---- (2) documented intervals on many words, (3) independent NumPy formulas --------------------


def test_u01_f32_co():
    w = _words()
    got = RUN["u01_f32_co"](w)
    k = (w >> U64(8)).astype(np.float64)
    np.testing.assert_array_equal(got, k * 2.0**-24)  # k < 2**24: every value exact
    assert got.min() == 0.0 and got.max() == 1 - 2.0**-24
    assert np.all(got * 2**24 == np.floor(got * 2**24))
    assert np.all(np.diff(got[np.argsort(w, kind="stable")]) >= 0)  # monotone in w


def test_u01_f32_oc():
    w = _words()
    got = RUN["u01_f32_oc"](w)
    k = (w >> U64(1)).astype(np.float64)  # 31 bits: exact in float64
    fl_k = k.astype(np.float32).astype(np.float64)  # fl(k): one float32 rounding
    ref = (fl_k * 2.0**-31 + 2.0**-32).astype(np.float32)  # the float64 sum is exact (33 bits)
    np.testing.assert_array_equal(got, ref.astype(np.float64))
    assert got.min() == 2.0**-32 and got.max() == 1.0
    assert np.all(got > 0)  # never 0: log(u) is safe
    assert np.all(np.diff(got[np.argsort(w, kind="stable")]) >= 0)


def test_u01_f32_oo():
    w = _words()
    got = RUN["u01_f32_oo"](w)
    u, v = got[:, 0], got[:, 1]
    k = (w >> U64(9)).astype(np.float64)
    np.testing.assert_array_equal(u, (2 * k + 1) * 2.0**-24)
    np.testing.assert_array_equal(v, 1 - u)  # both exact: u + v == 1 with no rounding
    assert u.min() == 2.0**-24 and u.max() == 1 - 2.0**-24
    assert v.min() == 2.0**-24 and v.max() == 1 - 2.0**-24
    assert np.all((u * 2**24) % 2 == 1)  # odd multiples of 2**-24: symmetric about 1/2
    np.testing.assert_array_equal(u + v, 1.0)


def _quarter_exact(x, bits):
    """Exact (n, g * 2**(bits - 2)) of the angle x 2**-bits turns, with Python ints."""
    quarter = 1 << (bits - 2)
    shifted = x + quarter // 2
    n = (shifted // quarter) % 4
    return n, shifted % quarter - quarter // 2


def test_quarter_turn_f32():
    w = _words()
    got = RUN["quarter_turn_f32"](w)
    n, g = got[:, 0], got[:, 1]
    assert set(np.unique(n).tolist()) == {0, 1, 2, 3}
    assert np.all((-0.5 <= g) & (g <= 0.5))
    ref_n = np.empty(w.size, np.int64)
    ref_g = np.empty(w.size, np.float64)
    for j, x in enumerate(w.tolist()):
        qn, qg = _quarter_exact(x, 32)
        # the exact remainder is in [-1/2, 1/2) of a quarter turn, and (n + g) quarter turns
        # is the angle, modulo a full turn
        assert -(2**29) <= qg < 2**29
        assert ((qn << 30) + qg - x) % 2**32 == 0
        ref_n[j] = qn
        ref_g[j] = qg / 2**30  # exact in float64
    np.testing.assert_array_equal(n, ref_n)
    # g is the exact remainder rounded once to float32 (so 1/2 - 2**-30 becomes 1/2)
    np.testing.assert_array_equal(g, ref_g.astype(np.float32).astype(np.float64))


def test_u01_f64_co_and_oc():
    wa, wb = _pairs()
    co = RUN["u01_f64_co"](wa, wb)
    oc = RUN["u01_f64_oc"](wa, wb)
    k = [((a >> 5) << 26) | (b >> 6) for a, b in zip(wa.tolist(), wb.tolist(), strict=True)]
    assert max(k) == 2**53 - 1 and min(k) == 0
    np.testing.assert_array_equal(co, [float(Fraction(x, 2**53)) for x in k])
    np.testing.assert_array_equal(oc, [float(Fraction(x + 1, 2**53)) for x in k])
    assert co.min() == 0.0 and co.max() == 1 - 2.0**-53
    assert oc.min() == 2.0**-53 and oc.max() == 1.0
    np.testing.assert_array_equal(oc - co, 2.0**-53)  # same k, exact
    order = np.lexsort((wb, wa >> U64(5)))
    assert np.all(np.diff(co[order]) >= 0)  # monotone in (wa >> 5, wb), the bits it uses


def test_u01_f64_oo():
    wa, wb = _pairs()
    got = RUN["u01_f64_oo"](wa, wb)
    u, v = got[:, 0], got[:, 1]
    k = [((a >> 6) << 26) | (b >> 6) for a, b in zip(wa.tolist(), wb.tolist(), strict=True)]
    assert max(k) == 2**52 - 1 and min(k) == 0
    np.testing.assert_array_equal(u, [float(Fraction(2 * x + 1, 2**53)) for x in k])
    np.testing.assert_array_equal(v, [float(Fraction(2**53 - 2 * x - 1, 2**53)) for x in k])
    np.testing.assert_array_equal(u + v, 1.0)
    assert u.min() == 2.0**-53 and u.max() == 1 - 2.0**-53
    assert v.min() == 2.0**-53 and v.max() == 1 - 2.0**-53


def test_quarter_turn_f64():
    wa, wb = _pairs()
    got = RUN["quarter_turn_f64"](wa, wb)
    n, g = got[:, 0], got[:, 1]
    assert set(np.unique(n).tolist()) == {0, 1, 2, 3}
    assert np.all((-0.5 <= g) & (g <= 0.5))
    ref_n, ref_g = [], []
    for a, b in zip(wa.tolist(), wb.tolist(), strict=True):
        x = (a << 32) | b
        qn, qg = _quarter_exact(x, 64)
        assert ((qn << 62) + qg - x) % 2**64 == 0
        ref_n.append(qn)
        ref_g.append(float(Fraction(qg, 2**62)))  # correctly rounded: one rounding
    np.testing.assert_array_equal(n, ref_n)
    np.testing.assert_array_equal(g, ref_g)
