"""Philox4x32 against the Random123 known-answer vectors, on every implementation.

tests/data/philox4x32_kat.txt is a copy of Random123's own table (DEShawResearch/random123,
tests/kat_vectors and tests/old_kat_vectors; provenance in the file's header). The same table
runs through the NumPy reference ``fastinit.philox4x32``, through the compiled
``philox4x32_block`` called alone, and through it inside a user's ``prange`` loop where every
vector is replicated many times (so several threads compute each one). The compiled block is
then checked against the NumPy reference at random and extreme counters and keys.

The GPU's form of the rounds (uint32 words, products as (high, low) halves:
``philox4x32_rounds_u32``) runs through the same table and random counters on the CPU, with
the portable product and with the CUDA backend's own ``umulhi`` product, compiled here against
a stand-in declared as libdevice declares ``__nv_umulhi`` (int32 in, int32 out).
"""

from __future__ import annotations

import pathlib

import numba
import numpy as np
import pytest

import fastinit
from fastinit.rng.philox import (
    PHILOX_M0,
    PHILOX_M1,
    PHILOX_W0,
    PHILOX_W1,
    mul_hi_lo_u64,
    philox4x32_block,
    philox4x32_rounds_u32,
)

KAT_PATH = pathlib.Path(__file__).parent / "data" / "philox4x32_kat.txt"


def _load_kat():
    rows = []
    for line in KAT_PATH.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        assert fields[0] == "philox4x32", line
        rounds = int(fields[1])
        words = [int(f, 16) for f in fields[2:]]
        assert len(words) == 10, line
        rows.append((rounds, tuple(words[0:4]), tuple(words[4:6]), tuple(words[6:10])))
    return rows


KAT = _load_kat()
KAT_IDS = [f"r{r}-{i}" for i, (r, *_) in enumerate(KAT)]


def test_kat_table_is_complete():
    # Random123's kat_vectors (6 lines) + old_kat_vectors' philox4x32 lines: 110 vectors.
    assert len(KAT) == 110
    assert {r for r, *_ in KAT} == {7, 10}
    # the three classic vectors of each round count are present
    assert (10, (0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)) in KAT


def test_constants_are_random123s():
    # Random123 philox.h: PHILOX_M4x32_0/1 and PHILOX_W32_0/1 (golden ratio, sqrt(3) - 1)
    assert (PHILOX_M0, PHILOX_M1) == (0xD2511F53, 0xCD9E8D57)
    assert PHILOX_W0 == int((5**0.5 - 1) / 2 * 2**32) == 0x9E3779B9
    assert PHILOX_W1 == int((3**0.5 - 1) * 2**32) == 0xBB67AE85


# ---- (a) NumPy reference ----------------------------------------------------------------------


@pytest.mark.parametrize(("rounds", "counter", "key", "expected"), KAT, ids=KAT_IDS)
def test_numpy_reference_kat(rounds, counter, key, expected):
    out = fastinit.philox4x32(np.array(counter, np.uint32), np.array(key, np.uint32), rounds)
    assert out.dtype == np.uint32
    assert out.shape == (4,)
    assert [int(w) for w in out] == list(expected)


@pytest.mark.parametrize("rounds", [7, 10])
def test_numpy_reference_kat_vectorized(rounds):
    rows = [row for row in KAT if row[0] == rounds]
    counters = np.array([c for _, c, _, _ in rows], np.uint32)
    keys = np.array([k for _, _, k, _ in rows], np.uint32)
    expected = np.array([e for _, _, _, e in rows], np.uint32)
    np.testing.assert_array_equal(fastinit.philox4x32(counters, keys, rounds), expected)


def test_numpy_reference_default_is_10_rounds():
    row = next(row for row in KAT if row[0] == 10 and row[1] != (0, 0, 0, 0))
    _, counter, key, expected = row
    out = fastinit.philox4x32(np.array(counter, np.uint32), np.array(key, np.uint32))
    assert tuple(int(w) for w in out) == expected


# ---- (b) compiled block ---------------------------------------------------------------------


@pytest.mark.parametrize(("rounds", "counter", "key", "expected"), KAT, ids=KAT_IDS)
def test_compiled_block_kat(rounds, counter, key, expected):
    args = [np.uint64(w) for w in counter + key]
    out = philox4x32_block(*args, rounds)
    assert tuple(int(w) for w in out) == expected


@numba.njit(parallel=True)
def _philox_many(counters, keys, rounds, out):
    """A user's parallel loop calling the public compiled block once per row."""
    for i in numba.prange(counters.shape[0]):
        w0, w1, w2, w3 = philox4x32_block(
            counters[i, 0], counters[i, 1], counters[i, 2], counters[i, 3],
            keys[i, 0], keys[i, 1], rounds[i],
        )  # fmt: skip
        out[i, 0] = w0
        out[i, 1] = w1
        out[i, 2] = w2
        out[i, 3] = w3


def _run_many(counters, keys, rounds):
    out = np.zeros((counters.shape[0], 4), np.uint64)
    _philox_many(
        np.ascontiguousarray(counters, np.uint64),
        np.ascontiguousarray(keys, np.uint64),
        np.ascontiguousarray(rounds, np.int64),
        out,
    )
    return out


def test_compiled_block_kat_in_prange_many_threads():
    reps = 4099  # odd, so the vectors do not line up with any chunking of the loop
    counters = np.array([c for _, c, _, _ in KAT], np.uint64)
    keys = np.array([k for _, _, k, _ in KAT], np.uint64)
    rounds = np.array([r for r, _, _, _ in KAT], np.int64)
    expected = np.array([e for _, _, _, e in KAT], np.uint64)
    # interleave: row j holds KAT vector j % len(KAT), so every thread gets every vector
    idx = np.tile(np.arange(len(KAT)), reps)
    out = _run_many(counters[idx], keys[idx], rounds[idx])
    assert out.shape == (len(KAT) * reps, 4)
    mismatched = np.flatnonzero(np.any(out != expected[idx], axis=1))
    assert mismatched.size == 0, f"{mismatched.size} rows differ, first {mismatched[:5]}"


# ---- (c) compiled vs NumPy reference at random and extreme counters ------------------------


def _edge_counters():
    top = 2**32 - 1
    rows = []
    for hi in (0, 1, top - 1, top):
        for lo in (0, 1, 15, 16, top - 15, top - 1, top):
            rows.append((lo, hi, 0, 0))
            rows.append((lo, hi, top, top))
            rows.append((lo, hi, 0x243F6A88, 0x85A308D3))
    # block indices around the carry from the low to the high counter word (block = 2**32 k)
    for k in (1, 2, 2**31, top):
        for d in range(-20, 20):
            b = k * 2**32 + d
            rows.append((b % 2**32, b // 2**32, 0x13198A2E, 0x03707344))
    return np.array(rows, np.uint64)


@pytest.mark.parametrize("rounds", [0, 1, 7, 10, 13])
def test_compiled_matches_reference_random(rounds):
    rng = np.random.default_rng(20240607 + rounds)
    n = 20_000
    counters = rng.integers(0, 2**32, size=(n, 4), dtype=np.uint64)
    # a quarter of the rows with high words near 2**32 - 1
    counters[: n // 4, 1:] = 2**32 - 1 - rng.integers(0, 64, size=(n // 4, 3), dtype=np.uint64)
    edge = _edge_counters()
    counters = np.concatenate([counters, edge])
    keys = rng.integers(0, 2**32, size=(counters.shape[0], 2), dtype=np.uint64)
    keys[:8] = [[0, 0], [2**32 - 1, 2**32 - 1], [0, 2**32 - 1], [2**32 - 1, 0]] * 2
    keys[-len(edge) :: 3] = 2**32 - 1
    got = _run_many(counters, keys, np.full(counters.shape[0], rounds, np.int64))
    ref = fastinit.philox4x32(counters.astype(np.uint32), keys.astype(np.uint32), rounds)
    assert np.all(got < 2**32)
    np.testing.assert_array_equal(got, ref.astype(np.uint64))


def test_zero_rounds_is_identity():
    c = np.array([1, 2, 3, 0xFFFFFFFF], np.uint32)
    k = np.array([5, 6], np.uint32)
    np.testing.assert_array_equal(fastinit.philox4x32(c, k, 0), c)
    assert tuple(int(w) for w in philox4x32_block(*map(np.uint64, (*c, *k)), 0)) == tuple(c.tolist())


def test_one_round_formula_written_out():
    # One round by hand (philox.h): hi:lo = M * c, c' = (hi1^c1^k0, lo1, hi0^c3^k1, lo0).
    c0, c1, c2, c3, k0, k1 = 0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0
    p0, p1 = PHILOX_M0 * c0, PHILOX_M1 * c2
    expected = ((p1 >> 32) ^ c1 ^ k0, p1 & 0xFFFFFFFF, (p0 >> 32) ^ c3 ^ k1, p0 & 0xFFFFFFFF)
    out = fastinit.philox4x32(np.array([c0, c1, c2, c3], np.uint32), np.array([k0, k1], np.uint32), 1)
    assert tuple(int(w) for w in out) == expected


# ---- (d) argument validation and broadcasting ---------------------------------------------------

C4 = np.zeros(4, np.uint32)
K2 = np.zeros(2, np.uint32)


@pytest.mark.parametrize(
    ("counter", "key", "rounds", "error", "match"),
    [
        (np.zeros(4, np.int64), K2, 10, TypeError, "counter must be a uint32"),
        (np.zeros(4, np.uint64), K2, 10, TypeError, "counter must be a uint32"),
        (np.zeros(4, np.float32), K2, 10, TypeError, "counter must be a uint32"),
        ([0, 0, 0, 0], K2, 10, TypeError, "counter must be a uint32"),
        (C4, np.zeros(2, np.int32), 10, TypeError, "key must be a uint32"),
        (C4, np.zeros(2, np.uint16), 10, TypeError, "key must be a uint32"),
        (np.zeros(3, np.uint32), K2, 10, ValueError, r"counter must have shape \(\.\.\., 4\)"),
        (np.zeros((4, 2), np.uint32), K2, 10, ValueError, r"counter must have shape"),
        (np.uint32(0), K2, 10, ValueError, r"counter must have shape"),
        (C4, np.zeros(4, np.uint32), 10, ValueError, r"key must have shape \(\.\.\., 2\)"),
        (C4, np.zeros((2, 1), np.uint32), 10, ValueError, r"key must have shape"),
        (C4, K2, -1, ValueError, "rounds=-1"),
        (C4, K2, 1.5, ValueError, "rounds=1.5"),
        (C4, K2, True, ValueError, "rounds=True"),
        (C4, K2, "10", ValueError, "rounds='10'"),
    ],
)
def test_reference_validation(counter, key, rounds, error, match):
    with pytest.raises(error, match=match):
        fastinit.philox4x32(counter, key, rounds)


def test_reference_broadcasts_leading_dimensions():
    rng = np.random.default_rng(7)
    counters = rng.integers(0, 2**32, size=(5, 1, 4), dtype=np.uint64).astype(np.uint32)
    keys = rng.integers(0, 2**32, size=(3, 2), dtype=np.uint64).astype(np.uint32)
    out = fastinit.philox4x32(counters, keys)
    assert out.shape == (5, 3, 4)
    assert out.dtype == np.uint32
    for i in range(5):
        for j in range(3):
            np.testing.assert_array_equal(out[i, j], fastinit.philox4x32(counters[i, 0], keys[j]))
    # one key for many counters, and numpy integer rounds
    out2 = fastinit.philox4x32(counters[:, 0], keys[1], np.int64(10))
    np.testing.assert_array_equal(out2, out[:, 1])


def test_reference_does_not_modify_inputs():
    c = np.array([[1, 2, 3, 4]], np.uint32)
    k = np.array([5, 6], np.uint32)
    c0, k0 = c.copy(), k.copy()
    fastinit.philox4x32(c, k)
    np.testing.assert_array_equal(c, c0)
    np.testing.assert_array_equal(k, k0)


def test_reference_broadcast_mismatch_raises():
    with pytest.raises(ValueError):
        fastinit.philox4x32(np.zeros((3, 4), np.uint32), np.zeros((2, 2), np.uint32))


# ---- the GPU's form: uint32 words, products through mul_hi_lo ----------------------------------


def _umulhi_like_libdevice(a, b):
    """__nv_umulhi as numba-cuda declares it: int32 arguments and result, the high word's bits."""
    product = np.uint64(np.uint32(a)) * np.uint64(np.uint32(b))
    return np.int32(np.uint32(product >> np.uint64(32)))


def _gpu_form_products():
    """{label: compiled mul_hi_lo}: the portable one, and backends/cuda/device_code.py's umulhi one with its
    libdevice replaced by an int32-typed CPU stand-in (numba compiles the same typed code)."""
    import types

    from fastinit.backends import cuda as backend

    libdevice = types.ModuleType("fake_libdevice")
    libdevice.umulhi = numba.njit(numba.int32(numba.int32, numba.int32))(_umulhi_like_libdevice)
    umulhi_form = backend.device_code._mul_hi_lo_umulhi
    globals_ = dict(umulhi_form.__globals__, _libdevice=libdevice)
    umulhi_form = type(umulhi_form)(umulhi_form.__code__, globals_, umulhi_form.__name__)
    return {"portable": mul_hi_lo_u64, "umulhi": numba.njit(umulhi_form)}


@pytest.fixture(scope="module", params=["portable", "umulhi"])
def gpu_form_many(request):
    """A compiled loop running the uint32 rounds (with the given product) over many counters."""
    block = numba.njit(philox4x32_rounds_u32(_gpu_form_products()[request.param]))

    @numba.njit
    def many(counters, keys, rounds, out):
        for i in range(counters.shape[0]):
            c = counters[i]
            words = block(
                numba.uint32(c[0]), numba.uint32(c[1]), numba.uint32(c[2]), numba.uint32(c[3]),
                numba.uint32(keys[i, 0]), numba.uint32(keys[i, 1]), rounds[i],
            )  # fmt: skip
            for j in range(4):
                out[i, j] = numba.uint64(words[j])

    def run(counters, keys, rounds):
        out = np.zeros((counters.shape[0], 4), np.uint64)
        many(np.ascontiguousarray(counters, np.uint64), np.ascontiguousarray(keys, np.uint64),
             np.ascontiguousarray(rounds, np.int64), out)  # fmt: skip
        return out

    return run


def test_gpu_form_kat(gpu_form_many):
    counters = np.array([c for _, c, _, _ in KAT], np.uint64)
    keys = np.array([k for _, _, k, _ in KAT], np.uint64)
    rounds = np.array([r for r, _, _, _ in KAT], np.int64)
    expected = np.array([e for _, _, _, e in KAT], np.uint64)
    np.testing.assert_array_equal(gpu_form_many(counters, keys, rounds), expected)


@pytest.mark.parametrize("rounds", [1, 10])
def test_gpu_form_matches_reference_random(gpu_form_many, rounds):
    rng = np.random.default_rng(20261204 + rounds)
    counters = rng.integers(0, 2**32, size=(20_000, 4), dtype=np.uint64)
    counters[:5000, 1:] = 2**32 - 1 - rng.integers(0, 64, size=(5000, 3), dtype=np.uint64)
    counters = np.concatenate([counters, _edge_counters()])
    keys = rng.integers(0, 2**32, size=(counters.shape[0], 2), dtype=np.uint64)
    keys[:4] = [[0, 0], [2**32 - 1, 2**32 - 1], [0, 2**32 - 1], [2**32 - 1, 0]]
    got = gpu_form_many(counters, keys, np.full(counters.shape[0], rounds, np.int64))
    ref = fastinit.philox4x32(counters.astype(np.uint32), keys.astype(np.uint32), rounds)
    np.testing.assert_array_equal(got, ref.astype(np.uint64))


def test_gpu_form_runs_as_python_on_numpy_scalars():
    # the CUDA simulator could run it uncompiled: no uint32 wrap-around warnings, same words
    block = philox4x32_rounds_u32(mul_hi_lo_u64.py_func)
    c = [np.uint32(w) for w in (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344)]
    k = [np.uint32(0xFFFFFFFF), np.uint32(0xFFFFFFFE)]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = [int(w) for w in block(*c, *k, 10)]
    ref = fastinit.philox4x32(np.array(c, np.uint32), np.array(k, np.uint32), 10)
    assert got == ref.tolist()


def test_gpu_form_needs_a_product_function():
    with pytest.raises(TypeError, match="mul_hi_lo must be a function"):
        philox4x32_rounds_u32(0xD2511F53)
