"""The one invariant: element i is a function of (key, i) alone.

Not of the thread count (1 thread vs several, in fresh processes and in-process), not of how
the work is split (``index=`` pieces of random sizes, the contiguous-run kernels vs the
strided per-element kernels, ``out=`` with non-contiguous destinations), and not of where the
elements sit (flat offsets around 2**32, 2**34, 2**40, checked against the NumPy reference
without ever allocating the full tensor). Everything is compared as raw bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pathlib
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastinit

REPO = pathlib.Path(__file__).resolve().parents[1]
DTYPES = ["float32", "float64", "float16", "bfloat16"]
SAMPLERS = {
    "uniform": lambda shape, **kw: fastinit.uniform(shape, -0.75, 3.0, **kw),
    "normal": lambda shape, **kw: fastinit.normal(shape, 0.25, 1.5, **kw),
    "truncated_normal": lambda shape, **kw: fastinit.truncated_normal(shape, 0.0, 1.0, -1.0, 3.0, **kw),
    "truncated_normal_tail": lambda shape, **kw: fastinit.truncated_normal(shape, 0.0, 1.0, 12.0, 14.0, **kw),
}


def _bytes(x):
    raw = x.raw if isinstance(x, fastinit.FastArray) else x
    return np.ascontiguousarray(raw).tobytes()


def _digests():
    """sha256 of many tensors: every sampler x dtype, sizes ~10**6 and odd, index= views."""
    out = {}
    for sampler, f in SAMPLERS.items():
        tail = sampler == "truncated_normal_tail"  # ~2 us a value: smaller sizes
        big = 10**4 + 3 if tail else 10**6
        rows, cols = (101, 99) if tail else (1001, 999)
        cases = {
            "n": ((big,), None),
            "odd": ((big + 37,), None),
            "2d": ((rows, cols), None),
            "slice": ((big,), slice(1_234, big - 7)),
            "step": ((rows, cols), (slice(None, None, 3), slice(None, None, -2))),
            "column": ((rows, cols), (Ellipsis, 50)),
        }
        for dtype in DTYPES:
            for case, (shape, index) in cases.items():
                x = f(shape, seed=5, name=f"inv.{sampler}", dtype=dtype, index=index)
                out[f"{sampler}/{dtype}/{case}"] = hashlib.sha256(_bytes(x)).hexdigest()
    return out


_CHILD = """
import importlib.util, json, sys, numba
spec = importlib.util.spec_from_file_location("inv", {path!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print(json.dumps({{"threads": numba.get_num_threads(), "digests": mod._digests()}}))
"""


def _child(threads):
    env = dict(os.environ)
    env.pop("NUMBA_NUM_THREADS", None)
    if threads is not None:
        env["NUMBA_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD.format(path=str(pathlib.Path(__file__).resolve()))],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- (a) thread count, in fresh processes -----------------------------------------------------


@pytest.mark.slow
def test_thread_count_does_not_matter_across_processes():
    one = _child(1)
    three = _child(3)  # more threads than CI's cores, and an odd split
    default = _child(None)
    assert one["threads"] == 1
    assert three["threads"] == 3
    assert default["threads"] == numba.config.NUMBA_NUM_THREADS
    assert len(one["digests"]) == len(SAMPLERS) * len(DTYPES) * 6
    assert one["digests"] == three["digests"]
    assert one["digests"] == default["digests"]
    assert one["digests"] == _digests()  # and this process, whatever its thread count


# ---- (b) how the work is split ------------------------------------------------------------------


def _random_cuts(n, rng):
    """Cut [0, n) into pieces of random sizes: tiny, around a tile, and long runs."""
    cuts, pos = [0], 0
    while pos < n:
        kind = rng.integers(0, 3)
        size = int(
            rng.integers(1, 70)
            if kind == 0
            else rng.integers(60, 300)
            if kind == 1
            else rng.integers(4096, 12_000)
        )
        pos = min(n, pos + size)
        cuts.append(pos)
    return cuts


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_pieces_concatenate_to_the_full_tensor(sampler, dtype):
    f = SAMPLERS[sampler]
    n = 200_003 if sampler != "truncated_normal_tail" else 30_011
    full = f((n,), seed=7, name="split", dtype=dtype)
    rng = np.random.default_rng(1234)
    cuts = _random_cuts(n, rng)
    assert len(cuts) > 6
    pieces = [
        f((n,), seed=7, name="split", dtype=dtype, index=slice(a, b)) for a, b in itertools.pairwise(cuts)
    ]
    assert b"".join(_bytes(p) for p in pieces) == _bytes(full)
    # the same tensor as 2-D, cut into row blocks and column blocks
    shape = (198, 1009)
    full2 = f(shape, seed=7, name="split", dtype=dtype).raw
    rows = _random_cuts(shape[0], np.random.default_rng(5))
    cols = [0, 1, 64, 65, 500, 1009]
    for r0, r1 in itertools.pairwise(rows):
        parts = [f(shape, seed=7, name="split", dtype=dtype, index=(slice(r0, r1), slice(c0, c1))).raw
                 for c0, c1 in itertools.pairwise(cols)]  # fmt: skip
        assert _bytes(np.concatenate(parts, axis=1)) == _bytes(full2[r0:r1])


def _max_threads():
    return numba.config.NUMBA_NUM_THREADS


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs more than one Numba thread")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_set_num_threads_in_process(sampler, dtype):
    f = SAMPLERS[sampler]
    tail = sampler == "truncated_normal_tail"
    n = 2 * 10**4 + 5 if tail else 10**6 + 5
    side = 100 if tail else 1000
    before = numba.get_num_threads()
    results = {}
    try:
        for threads in sorted({1, 2, _max_threads()}):
            numba.set_num_threads(threads)
            results[threads] = (
                _bytes(f((n,), seed=8, name="threads", dtype=dtype)),
                _bytes(f((n,), seed=8, name="threads", dtype=dtype, index=slice(None, None, 3))),
                _bytes(
                    f(
                        (side, side),
                        seed=8,
                        name="threads",
                        dtype=dtype,
                        index=(slice(1, None), slice(3, None)),
                    )
                ),
            )
    finally:
        numba.set_num_threads(before)
    assert len(results) >= 2
    first = results[1]
    for threads, res in results.items():
        assert res == first, f"{threads} threads differ from 1 thread"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_out_strided_destinations(sampler, dtype):
    # destinations that are not contiguous take the strided kernels (per-element values);
    # contiguous ones take the run kernels: both must give the same bytes
    import ml_dtypes

    npdt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    f = SAMPLERS[sampler]
    n = 50_001
    full = f((n,), seed=9, name="out", dtype=dtype).raw
    every_other = np.zeros((n, 2), npdt)[:, 1]
    reversed_ = np.zeros(n, npdt)[::-1]
    for out in (every_other, reversed_):
        f((n,), seed=9, name="out", out=out)
        assert _bytes(out.view(full.dtype)) == _bytes(full)
    full2 = f((301, 257), seed=9, name="out", dtype=dtype).raw
    transposed = np.zeros((257, 301), npdt).T
    f((301, 257), seed=9, name="out", out=transposed)
    assert _bytes(transposed.view(full2.dtype)) == _bytes(full2)
    # and a strided destination combined with a stepped source
    out = np.zeros((101, 2), npdt)[::-1, 0]
    f((301, 257), seed=9, name="out", out=out, index=(slice(None, None, 3), 100))
    assert _bytes(out.view(full2.dtype)) == _bytes(full2[::3, 100])


def test_out_torch_transposed_large():
    torch = pytest.importorskip("torch")
    full = fastinit.normal((700, 900), seed=10, name="torch").raw
    t = torch.zeros(900, 700).T
    fastinit.normal((700, 900), seed=10, name="torch", out=t)
    assert _bytes(t.contiguous().numpy()) == _bytes(full)


# ---- (c) big flat offsets against the NumPy reference -------------------------------------------

HUGE = (2**41,)
OFFSET_CASES = [
    slice(2**40, 2**40 + 1000),
    slice(2**32 - 500, 2**32 + 500),  # flat index 2**32
    slice(2**33 - 500, 2**33 + 500),  # float64: block index 2**32 (the counter's word 1 carries)
    slice(2**34 - 500, 2**34 + 500),  # float32: block index 2**32
    slice(2**41 - 700, None),  # the very end of a 2**41 tensor
    slice(2**40 + 3, 2**40 + 3 + 7 * 900, 7),  # stepped: the per-element kernel
    slice(2**34 + 500, 2**34 - 500, -3),  # stepped backwards across the carry
    slice(2**40 - 5000, 2**40 + 5000),  # long enough for the parallel run kernel
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", OFFSET_CASES, ids=lambda s: f"{s.start}:{s.stop}:{s.step}")
def test_big_offsets_match_reference(reference, index, dtype):
    got = fastinit.uniform(
        HUGE, seed=11, name="far", dtype=dtype, index=index
    )  # 2**41 values: never allocated
    flat = np.array(range(*index.indices(HUGE[0])), dtype=np.uint64)
    assert got.shape == flat.shape
    ref = reference.uniform(flat, seed=11, name="far", dtype=dtype)
    assert _bytes(got) == _bytes(ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_big_offsets_multi_dimensional(reference, dtype):
    shape = (2**20, 2**20, 16)  # 2**44 elements
    index = (2**20 - 1, slice(5, 9), slice(None, None, -1))
    got = fastinit.uniform(shape, seed=12, name="far2", dtype=dtype, index=index)
    assert got.shape == (4, 16)
    flat = np.array(
        [[(2**20 - 1) * 2**24 + j * 16 + k for k in range(15, -1, -1)] for j in range(5, 9)], np.uint64
    )
    ref = reference.uniform(flat.ravel(), seed=12, name="far2", dtype=dtype)
    assert _bytes(got) == _bytes(ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", ["normal", "truncated_normal", "truncated_normal_tail"])
@pytest.mark.parametrize("start", [2**34 - 3000, 2**40 + 17])
def test_big_offsets_run_and_element_kernels_agree(sampler, dtype, start):
    f = SAMPLERS[sampler]
    run = f(HUGE, seed=13, name="far", dtype=dtype, index=slice(start, start + 6000)).raw
    stepped = f(HUGE, seed=13, name="far", dtype=dtype, index=slice(start, start + 6000, 2)).raw
    assert _bytes(stepped) == _bytes(run[::2])
    backwards = f(HUGE, seed=13, name="far", dtype=dtype, index=slice(start + 5999, start - 1, -1)).raw
    assert _bytes(backwards) == _bytes(run[::-1])
    small = [f(HUGE, seed=13, name="far", dtype=dtype, index=slice(a, a + 1000)).raw
             for a in range(start, start + 6000, 1000)]  # fmt: skip
    assert b"".join(_bytes(s) for s in small) == _bytes(run)
