"""The benchmark suite: samplers x dtypes x sizes x backends, with the peers in the same run.

The cases, buffers and operations are those of ``fastinit.benchmark`` (what ``fastinit bench``
times for users without pytest): fastinit into a touched buffer (``out=``), the plain fill of
the same buffer (the ceiling; also timed interleaved with fastinit, see conftest.py), and each
installed peer (numpy, torch, jax; cupy on a GPU) drawing the same distribution in the same
dtype. conftest.py prints the ratio table per group at the end.

Run:   python -m pytest benchmarks/test_suite.py --benchmark-only -o addopts="" [-k "normal and float32"]
Sizes: FASTINIT_BENCH_SIZES (comma list, default "2**20,N"; N = FASTINIT_BENCH_N, default 2**26)
Backends: cpu, and cuda when a GPU and fastinit's CUDA backend are usable (skipped otherwise).
"""

from __future__ import annotations

import itertools
import os
import time

import pytest

from fastinit import benchmark as bm

N = int(os.environ.get("FASTINIT_BENCH_N", 2**26))  # as conftest.py
SIZES = tuple(bm.parse_count(s) for s in os.environ.get("FASTINIT_BENCH_SIZES", f"2**20,{N}").split(","))
BACKENDS = ("cpu", "cuda")
IMPLS = ("fill", "fastinit") + bm.PEERS
LABELS = {"fill": "plain fill (numpy .fill)", "fastinit": "fastinit (out=)"}  # conftest's names
CASES = bm.cases(bm.SAMPLERS, bm.DTYPES)
PARAMS = list(itertools.product(BACKENDS, SIZES, CASES, IMPLS))

_backends: dict[str, object] = {}
_buffer: dict[tuple, object] = {}  # one buffer at a time: (backend, case, size) -> buffer


def _backend(name: str):
    if name not in _backends:
        try:
            _backends[name] = bm.backend(name)
        except ValueError as error:
            _backends[name] = error
    be = _backends[name]
    if isinstance(be, ValueError):
        pytest.skip(str(be))
    return be


def _buf(be, case, size):
    key = (be.name, case, size)
    if key not in _buffer:
        _buffer.clear()
        _buffer[key] = be.buffer(case, size)
    if _buffer[key] is None:
        pytest.skip(f"no {case.dtype} buffers on {be.name} with the installed packages")
    return _buffer[key]


def _synced(be, fn):
    if be.name == "cpu":
        return fn

    def run():
        fn()
        be.sync()

    return run


@pytest.mark.parametrize(
    "backend_name,size,case,impl", PARAMS,
    ids=[f"{b}-{bm._count_text(s)}-{c.sampler}-{c.dtype}-{i}" for b, s, c, i in PARAMS],
)  # fmt: skip
def test_suite(record, backend_name, size, case, impl):
    be = _backend(backend_name)
    if impl in bm.PEERS and impl not in bm.installed_peers(be.name):
        pytest.skip(f"{impl} is not installed" + (" (or runs on a GPU only)" if impl == "cupy" else ""))
    buf = _buf(be, case, size)
    if impl == "fill":
        op = be.fill(buf)
    elif impl == "fastinit":
        op = be.fastinit(case, buf)
    else:
        op = be.peer(impl, case, buf)
        if op is None:
            pytest.skip(f"{impl} has no {case.sampler} in {case.dtype} on {be.name}")
    fill = _synced(be, be.fill(buf)) if impl == "fastinit" else None
    group = f"{case.label}, {backend_name}, touched buffer, n={bm._count_text(size)}"
    label = LABELS.get(impl, impl)
    record(group, label, _synced(be, op), size, case.itemsize, rounds=5, fill=fill)
    time.sleep(getattr(op, "settle", 0.0))  # JAX's threads keep spinning: let them stop (benchmark.py)
