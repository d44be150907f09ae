"""float32 -> bfloat16 / float16 rounding (fastinit.distributions.rounding) against references.

References: ``ml_dtypes.bfloat16`` and NumPy's ``astype(np.float16)``, both IEEE round to
nearest, ties to even, with overflow to infinity and float16 subnormals.

Inputs, all as float32 bit patterns:
- a stride through all 2**32 patterns (every 4099th, ~10**6 values: 4099 is odd, so the stride
  visits every residue of the low 16 bits, and every exponent of both signs);
- every combination of the kept bits (top 16 for bfloat16, top 19 for float16) with the
  dropped bits at 0, 1, 2, half - 2 .. half + 2 and all ones - 1, all ones;
- every rounding-boundary class, exhaustively: for *every* bfloat16 / float16 value v, the
  float32 values within a few ulps of v and of the midpoint between v and its successor
  (ties to even and to odd, carries into the exponent, largest finite, the overflow thresholds,
  float16's smallest normal 2**-14 and all its subnormals, +-0, +-inf);
- all 2**24 - 2 NaN patterns (both signs, every payload): the result must be a quiet NaN.
  NaNs are compared by NaN-ness, not bits (payloads are not specified).

An exhaustive check of all 2**32 patterns is left out: NumPy's float16 conversion alone takes
~6 s per 2**26 values here (~6.5 min for all), and the classes above cover every way the
rounding can go.
"""

import ml_dtypes
import numba
import numpy as np
import pytest

from fastinit.distributions.rounding import bfloat16_bits, float16_bits


@numba.njit(parallel=True)
def _apply(bits, which):
    """Apply bfloat16_bits (which=0) or float16_bits (which=1) to float32 bit patterns."""
    x = bits.view(np.float32)
    out = np.empty(bits.size, np.uint16)
    if which == 0:
        for i in numba.prange(bits.size):
            out[i] = bfloat16_bits(x[i])
    else:
        for i in numba.prange(bits.size):
            out[i] = float16_bits(x[i])
    return out


def ours(fmt, bits):
    return _apply(np.ascontiguousarray(bits, np.uint32), 0 if fmt == "bfloat16" else 1)


def reference(fmt, bits):
    x = np.ascontiguousarray(bits, np.uint32).view(np.float32)
    target = ml_dtypes.bfloat16 if fmt == "bfloat16" else np.float16
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(target).view(np.uint16)


def is_nan16(fmt, h):
    """NaN-ness of 16-bit patterns: exponent all ones and a nonzero mantissa."""
    exp_mask, mant_mask = (0x7F80, 0x007F) if fmt == "bfloat16" else (0x7C00, 0x03FF)
    h = h.astype(np.uint32)
    return ((h & exp_mask) == exp_mask) & ((h & mant_mask) != 0)


def assert_matches_reference(fmt, bits):
    bits = np.asarray(bits, np.uint32)
    got, want = ours(fmt, bits), reference(fmt, bits)
    got_nan, want_nan = is_nan16(fmt, got), is_nan16(fmt, want)
    bad = (got_nan != want_nan) | (~want_nan & (got != want))
    if bad.any():
        i = np.flatnonzero(bad)[:8]
        rows = [
            f"{b:#010x} ({v!r}): got {g:#06x}, want {w:#06x}"
            for b, v, g, w in zip(bits[i], bits[i].view(np.float32), got[i], want[i], strict=True)
        ]
        pytest.fail(f"{fmt}: {bad.sum()} of {bits.size} differ, e.g.\n" + "\n".join(rows))


FORMATS = ["bfloat16", "float16"]


def all_values16(fmt):
    """Every finite value of fmt as float32 bit patterns (exact), both signs."""
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    with np.errstate(invalid="ignore"):  # ml_dtypes warns when casting its NaNs
        values = h.view(ml_dtypes.bfloat16 if fmt == "bfloat16" else np.float16).astype(np.float32)
    return values[np.isfinite(values)].view(np.uint32)


def neighbourhood(center_bits, k):
    """Bit patterns center - k .. center + k (float32 ulps of the same sign), clipped."""
    offs = np.arange(-k, k + 1, dtype=np.int64)
    b = center_bits.astype(np.int64)[:, None] + offs[None, :]
    # stay within the same sign half (the patterns of +-0 neighbour the other sign's ones)
    lo = (center_bits.astype(np.int64) & 0x80000000)[:, None]
    b = np.clip(b, lo, lo + 0x7FFFFFFF)
    return np.unique(b.astype(np.uint32))


def boundary_cases(fmt):
    """float32 patterns at and around every fmt value and every midpoint between neighbours."""
    values = all_values16(fmt)
    # successor in magnitude of each value (same sign): the next 16-bit pattern up
    h = np.arange(1 << 16, dtype=np.uint32)
    kind = ml_dtypes.bfloat16 if fmt == "bfloat16" else np.float16
    with np.errstate(invalid="ignore"):  # NaN patterns; dropped below
        v = h.astype(np.uint16).view(kind).astype(np.float64)
        nxt = ((h & 0x7FFF) + 1 | (h & 0x8000)).astype(np.uint16).view(kind).astype(np.float64)
        keep = np.isfinite(v) & ((h & 0x7FFF) < 0x7FFF)
        mid = (v[keep] + nxt[keep]) / 2  # exact in float64; exact in float32 too (checked)
    # the midpoint beyond the largest finite value (the overflow threshold) is the one
    # between max and "max + ulp": 65520 for float16, 0x7F7F8000 for bfloat16
    finite_mid = mid[np.isfinite(mid)]
    assert np.all(finite_mid.astype(np.float32).astype(np.float64) == finite_mid)
    overflow = 65520.0 if fmt == "float16" else float(np.uint32(0x7F7F8000).view(np.float32))
    extra = np.array(
        [
            overflow,
            -overflow,
            65504.0,
            -65504.0,
            2.0**-14,
            -(2.0**-14),
            2.0**-24,
            2.0**-25,
            -(2.0**-25),
            0.0,
            -0.0,
            np.inf,
            -np.inf,
        ],
        np.float32,
    )
    centers = np.concatenate([values, finite_mid.astype(np.float32).view(np.uint32), extra.view(np.uint32)])
    return neighbourhood(np.unique(centers), 3)


def test_boundary_cases_cover_the_classes():
    """The boundary set really contains the classes the module docstring lists."""
    for fmt in FORMATS:
        bits = boundary_cases(fmt)
        x = bits.view(np.float32)
        assert np.isinf(x).sum() == 2 and (x == 0).sum() == 2
        if fmt == "float16":
            for t in (65520.0, 2.0**-14, 2.0**-25, 1.5 * 2.0**-24):  # overflow, min normal, ties
                assert np.isin(np.float32(t), x) and np.isin(np.nextafter(np.float32(t), np.float32(0)), x)
        assert len(bits) > 700_000


@pytest.mark.parametrize("fmt", FORMATS)
def test_stride_through_all_patterns(fmt):
    bits = np.arange(0, 1 << 32, 4099, dtype=np.uint64).astype(np.uint32)
    assert_matches_reference(fmt, bits)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_boundary_class(fmt):
    assert_matches_reference(fmt, boundary_cases(fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_all_upper_halves_near_the_cut(fmt):
    """Every combination of the kept bits with the dropped bits near 0, 1/2 and 1 ulp.

    bfloat16 keeps the top 16 bits of every float32; float16 (normal range) the top 19. The
    dropped bits run through 0, 1, 2, half - 2 .. half + 2, all ones - 1, all ones.
    """
    drop = 16 if fmt == "bfloat16" else 13
    half = 1 << (drop - 1)
    low = np.array(
        [0, 1, 2, half - 2, half - 1, half, half + 1, half + 2, 2 * half - 2, 2 * half - 1], np.uint32
    )
    kept = np.arange(1 << (32 - drop), dtype=np.uint32) << np.uint32(drop)
    bits = (kept[:, None] | low[None, :]).ravel()
    assert_matches_reference(fmt, bits)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_nan_is_a_quiet_nan(fmt):
    mant = np.arange(1, 1 << 23, dtype=np.uint32)
    bits = np.concatenate([0x7F800000 | mant, 0xFF800000 | mant]).astype(np.uint32)
    got = ours(fmt, bits)
    assert np.all(is_nan16(fmt, got)), "a NaN input gave a non-NaN output"
    quiet = 0x0040 if fmt == "bfloat16" else 0x0200  # top mantissa bit (documented: quiet)
    assert np.all(got & quiet), "a NaN input gave a signaling NaN"


@pytest.mark.parametrize("fmt", FORMATS)
def test_specials_exactly(fmt):
    """+-0, +-inf, largest finite and overflow, written out (independent of the references)."""

    def f32(bits):
        return np.uint32(bits).view(np.float32)

    if fmt == "bfloat16":
        table = [
            (0.0, 0x0000),
            (-0.0, 0x8000),
            (np.inf, 0x7F80),
            (-np.inf, 0xFF80),
            (1.0, 0x3F80),
            (f32(0x7F7F0000), 0x7F7F),  # largest finite
            (f32(0x7F7F7FFF), 0x7F7F),  # just below the overflow tie
            (f32(0x7F7F8000), 0x7F80),  # the tie, odd below: to even, which is inf
            (f32(0xFF7F8000), 0xFF80),
            (f32(0x3F808000), 0x3F80),  # tie, even below: down
            (f32(0x3F818000), 0x3F82),  # tie, odd below: up
            (f32(0x00008000), 0x0000),  # tie between +0 and the smallest subnormal
            (f32(0x00018000), 0x0002),
        ]
    else:
        table = [
            (0.0, 0x0000),
            (-0.0, 0x8000),
            (np.inf, 0x7C00),
            (-np.inf, 0xFC00),
            (1.0, 0x3C00),
            (65504.0, 0x7BFF),
            (np.nextafter(np.float32(65520), np.float32(0)), 0x7BFF),
            (65520.0, 0x7C00),
            (-65520.0, 0xFC00),
            (2.0**-14, 0x0400),
            (2.0**-24, 0x0001),
            (2.0**-25, 0x0000),  # tie between 0 and the smallest subnormal: to even (0)
            (-(2.0**-25), 0x8000),
            (np.nextafter(np.float32(2.0**-25), np.float32(1)), 0x0001),
            (1.5 * 2.0**-24, 0x0002),  # tie between subnormals 1 and 2: to even (2)
            (2.5 * 2.0**-24, 0x0002),  # tie between 2 and 3: to even (2)
            (2.0**-14 - 2.0**-25, 0x0400),  # the top subnormal tie rounds up to 2**-14
            (1.0 + 2.0**-11, 0x3C00),  # normal tie, even below: down
            (1.0 + 3 * 2.0**-11, 0x3C02),  # normal tie, odd below: up
        ]
    x = np.array([v for v, _ in table], np.float32)
    got = ours(fmt, x.view(np.uint32))
    want = np.array([h for _, h in table], np.uint16)
    np.testing.assert_array_equal(got, want)


def test_callable_from_python():
    """The functions are plain @njit functions: they compose in a user's prange loop (every
    test above goes through _apply) and can also be called from Python."""
    x = np.float32(1.00390625)  # 1 + 2**-8: a bfloat16 tie, even below -> 1.0
    assert bfloat16_bits(x) == 0x3F80
    assert float16_bits(np.float32(1.0)) == 0x3C00
