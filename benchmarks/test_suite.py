"""The benchmark suite: samplers x dtypes x sizes x backends, with the peers in the same run.

Each test is one ``fastinit.benchmark.run`` (what ``fastinit bench`` runs): fastinit into a
touched buffer (``out=``), the plain fill of the same buffer (the ceiling) and each installed
peer (numpy, torch, jax; cupy on a GPU) drawing the same distribution in the same dtype, in
interleaved rounds. conftest.py prints one ``fastinit bench`` table per backend and size.

Run:   python -m pytest benchmarks/test_suite.py -o addopts="" [-k "normal and float32"]
Sizes: FASTINIT_BENCH_SIZES (comma list, default "2**20,N"; N = FASTINIT_BENCH_N, default 2**26)
Backends: cpu, and cuda when a GPU and fastinit's CUDA backend are usable (skipped otherwise).
"""

from __future__ import annotations

import itertools
import os

import pytest

from fastinit import benchmark as bm

N = int(os.environ.get("FASTINIT_BENCH_N", 2**26))  # as conftest.py
SIZES = tuple(bm.parse_count(s) for s in os.environ.get("FASTINIT_BENCH_SIZES", f"2**20,{N}").split(","))
BACKENDS = ("cpu", "cuda")
CASES = bm.cases(bm.SAMPLERS, bm.DTYPES)
PARAMS = list(itertools.product(BACKENDS, SIZES, CASES))


@pytest.mark.parametrize(
    "backend_name,size,case", PARAMS, ids=[f"{b}-{s}-{c.sampler}-{c.dtype}" for b, s, c in PARAMS]
)
def test_suite(suite_results, backend_name, size, case):
    try:
        bm.backend(backend_name)
    except ValueError as error:
        pytest.skip(str(error))
    result = bm.run([case], size=size, rounds=5, device=backend_name)
    if not result.cases:
        pytest.skip(f"no {case.dtype} buffers on {backend_name} with the installed packages")
    suite_results.append(result)
