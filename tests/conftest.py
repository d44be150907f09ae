"""Shared test helpers: an independent NumPy reference for ``uniform`` (fixture ``reference``),
and ``load_script``, which loads a script of tools/ or benchmarks/ as a module.

The reference is built only from ``fastinit.philox4x32`` (the NumPy Philox), ``derive_key``
and the element layout written out again from the docstring of rng/layout.py (it does not use
``counters_for``), so a test comparing it with ``fastinit.uniform`` checks the compiled
kernels, the layout and the converter formula at once.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
import types
from fractions import Fraction

import numpy as np
import pytest

import fastinit

TILE_LANES = 16
ROOT = pathlib.Path(__file__).resolve().parents[1]


def block_and_slot(index, words_per_value: int):
    """rng/layout.py: element i -> (Philox block index, value slot in the block)."""
    i = np.asarray(index, dtype=np.uint64)
    tile_size = np.uint64(TILE_LANES * (4 // words_per_value))
    tile, r = i // tile_size, i % tile_size
    slot, lane = r // np.uint64(TILE_LANES), r % np.uint64(TILE_LANES)
    return tile * np.uint64(TILE_LANES) + lane, slot.astype(np.int64)


def block_words(index, seed, name, words_per_value: int):
    """The four Philox words of the block holding element i, and the slot: ((n, 4), (n,))."""
    key = fastinit.derive_key(seed, name)
    block, slot = block_and_slot(np.ravel(index), words_per_value)
    counter = np.empty(block.shape + (4,), np.uint32)
    counter[:, 0] = (block & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    counter[:, 1] = (block >> np.uint64(32)).astype(np.uint32)
    counter[:, 2] = key.counter2
    counter[:, 3] = key.counter3
    words = fastinit.philox4x32(counter, np.array([key.key0, key.key1], np.uint32))
    return words.astype(np.uint64), slot


def fma_f32(a, b, c):
    """Correctly rounded float32 a*b + c for float32 arrays (NumPy has no fma).

    The float64 product of two float32 values is exact; the float64 sum s is then off by an
    exactly known error e (TwoSum). Rounding s to float32 equals rounding a*b + c, except when
    s is exactly halfway between two float32 values and e != 0: then e decides.
    """
    a, b, c = (np.asarray(x, np.float32).astype(np.float64) for x in (a, b, c))
    p = a * b
    s = p + c
    bv = s - p
    e = (p - (s - bv)) + (c - bv)
    r = s.astype(np.float32)
    r64 = r.astype(np.float64)
    other = np.where(r64 > s, np.nextafter(r, np.float32(-np.inf)), np.nextafter(r, np.float32(np.inf)))
    halfway = (e != 0) & ((r64 + other.astype(np.float64)) / 2 == s)
    fix = np.where(e > 0, np.maximum(r, other), np.minimum(r, other))
    return np.where(halfway, fix, r).astype(np.float32)


def fma_f64(a, b, c):
    """Correctly rounded float64 a*b + c, exactly, with fractions (int / int rounds correctly)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in (a, b, c)))
    out = [
        float(Fraction(x) * Fraction(y) + Fraction(z))
        for x, y, z in zip(a.ravel(), b.ravel(), c.ravel(), strict=True)
    ]
    return np.array(out, np.float64).reshape(a.shape)


@functools.cache
def finite_values(dtype_name: str) -> np.ndarray:
    """Every finite value of float16 or bfloat16, sorted, as float64."""
    if dtype_name == "float16":
        v = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64)
    elif dtype_name == "bfloat16":
        bits = np.arange(2**16, dtype=np.uint32) << np.uint32(16)
        bits = bits[(bits & np.uint32(0x7F800000)) != np.uint32(0x7F800000)]  # finite only
        v = bits.view(np.float32).astype(np.float64)
    else:
        raise ValueError(dtype_name)
    return np.unique(v[np.isfinite(v)])


def smallest_at_least(x: float, dtype_name: str) -> float:
    if dtype_name == "float64":
        return x
    if dtype_name == "float32":
        y = np.float32(x)
        return float(np.nextafter(y, np.float32(np.inf)) if float(y) < x else y)
    v = finite_values(dtype_name)
    return float(v[np.searchsorted(v, x, side="left")])


def largest_below(x: float, dtype_name: str) -> float:
    if dtype_name == "float64":
        return float(np.nextafter(x, -np.inf))
    if dtype_name == "float32":
        y = np.float32(x)
        return float(np.nextafter(y, np.float32(-np.inf)) if float(y) >= x else y)
    v = finite_values(dtype_name)
    return float(v[np.searchsorted(v, x, side="left") - 1])


def to_storage(x32: np.ndarray, dtype_name: str) -> np.ndarray:
    """float32 values rounded to nearest-even into dtype, as the storage FastArray.raw uses."""
    if dtype_name == "float32":
        return x32.astype(np.float32)
    if dtype_name == "float16":
        return x32.astype(np.float16)
    if dtype_name == "bfloat16":
        import ml_dtypes

        return x32.astype(ml_dtypes.bfloat16).view(np.uint16)
    raise ValueError(dtype_name)


def uniform_reference(index, low=0.0, high=1.0, *, seed=0, name=None, dtype="float32"):
    """fastinit.uniform's values at flat indices ``index``, from the documented formulas.

    float32 (and 16-bit, computed in float32): u = (w >> 8) 2**-24 from the block's word
    ``slot``; x = fma(u, f32(high - low), f32(low)), clamped to [the smallest dtype value >= low,
    the largest dtype value < high], then rounded once to the dtype. float64: u = k 2**-53 with
    k = (wa >> 5) 2**26 + (wb >> 6) from words 2 slot, 2 slot + 1.
    """
    index = np.ravel(np.asarray(index, dtype=np.uint64))
    lo, hi = smallest_at_least(low, dtype), largest_below(high, dtype)
    if low == high:
        hi = lo
    if dtype == "float64":
        words, slot = block_words(index, seed, name, 2)
        rows = np.arange(index.size)
        wa, wb = words[rows, 2 * slot], words[rows, 2 * slot + 1]
        k = ((wa >> np.uint64(5)) << np.uint64(26)) | (wb >> np.uint64(6))
        u = k.astype(np.float64) * 2.0**-53  # k < 2**53: exact
        x = fma_f64(u, high - low, low)
        return np.minimum(np.maximum(x, lo), hi)
    words, slot = block_words(index, seed, name, 1)
    w = words[np.arange(index.size), slot]
    u = (w >> np.uint64(8)).astype(np.float32) * np.float32(2.0**-24)  # 24-bit k: exact
    x = fma_f32(u, np.float32(high - low), np.float32(low))
    x = np.minimum(np.maximum(x, np.float32(lo)), np.float32(hi))
    return to_storage(x, dtype)


@pytest.fixture(scope="session")
def reference():
    """The helpers above, for tests that need an independent reference."""
    return types.SimpleNamespace(
        block_and_slot=block_and_slot,
        block_words=block_words,
        fma_f32=fma_f32,
        fma_f64=fma_f64,
        smallest_at_least=smallest_at_least,
        largest_below=largest_below,
        to_storage=to_storage,
        uniform=uniform_reference,
    )


def _no_gpu_reason() -> str | None:
    """Why tests marked ``cuda`` cannot run here, or None on a machine with a usable GPU."""
    import importlib.util
    import os

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "numba's CUDA simulator is on; tests marked cuda need a real GPU"
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed (pip install 'fastinit[cuda]')"
    from numba import cuda

    if not cuda.is_available():
        return "no CUDA GPU: numba.cuda.is_available() is False"
    return None


def pytest_collection_modifyitems(config, items):
    # Tests marked cuda need a real NVIDIA GPU; numba.cuda is imported only when some are collected.
    marked = [item for item in items if item.get_closest_marker("cuda")]
    reason = _no_gpu_reason() if marked else None
    for item in marked if reason else ():
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def load_script():
    """``load_script("tools/write_results.py")``: a script of the repository (path from its
    root) as a module. Each call runs the file again, so a test may patch what it gets."""

    def load(relative_path: str) -> types.ModuleType:
        path = ROOT / relative_path
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
