"""Tests of the CUDA backend under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``).

The simulator replaces ``numba.cuda`` for the whole process and must be switched on before
``numba.cuda`` is first imported, while the rest of the suite checks what ``device="cuda"``
does without a GPU. So these tests run only in a pytest process started with the simulator on
(``NUMBA_ENABLE_CUDASIM=1 python3 -m pytest tests/cuda_sim``, part of the README's test command
and of CI); any other pytest process skips this folder at collection, doctests included.

The simulator runs each CUDA thread as a Python thread (a few thousand per second here), so
shapes are small: a few hundred elements, enough for partial tiles at both ends of a run.
What it checks is the kernels' own logic (grid-stride loop, tile/lane/slot arithmetic, index
plans, stores, out= views, streams and events as fastinit calls them) byte for byte against
the CPU backend; the per-element arithmetic is the same compiled code on both sides here, and
tests/test_cuda_ptx.py checks what the GPU compiler does with it.
"""

import os

import numpy as np
import pytest

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"

if not SIMULATOR:
    collect_ignore_glob = ["*.py"]


@pytest.fixture(scope="session", autouse=True)
def _simulator_is_on():
    from fastinit.cuda_runtime import is_simulator

    assert is_simulator(), "tests/cuda_sim must run with NUMBA_ENABLE_CUDASIM=1 (see conftest.py)"


@pytest.fixture(scope="session")
def cuda():
    from numba import cuda

    return cuda


def _host_bytes(x) -> bytes:
    if hasattr(x, "copy_to_host"):  # FastArray (any device), simulated device arrays
        return np.ascontiguousarray(x.copy_to_host()).tobytes()
    return np.ascontiguousarray(x).tobytes()


@pytest.fixture(scope="session")
def host_bytes():
    """bytes of a FastArray (CPU or CUDA) or a simulated device array, in C order."""
    return _host_bytes
