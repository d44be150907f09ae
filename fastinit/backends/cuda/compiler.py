"""Compiling the CUDA kernels: ``load`` imports numba.cuda on first use, binds the device code
to it and wraps every kernel for compilation on first launch (``KERNELS``); ``signatures``
lists the argument types each kernel is launched with."""

from __future__ import annotations

from ..._jit import CUDA_KERNEL, SIMULATED_CUDA_KERNEL
from ...cuda_runtime import cuda_runtime, is_simulator
from . import device_code
from .device_code import PY_KERNELS

__all__ = ["KERNELS", "load", "kernels", "signatures"]

KERNELS: dict = {}  # kernel name -> compile-on-demand kernel, filled by load()


def load(context: str = "device='cuda'"):
    """Import numba.cuda and compile-on-demand wrappers of the kernels (once); returns
    numba.cuda. Raises ValueError when numba-cuda or a GPU is missing (cuda_runtime.cuda_runtime),
    starting with ``context``."""
    if KERNELS:
        return device_code.cuda
    cuda = cuda_runtime(context=context)
    device_code.bind(cuda)
    options = SIMULATED_CUDA_KERNEL if is_simulator() else CUDA_KERNEL
    KERNELS.update({name: cuda.jit(**options)(kernel) for name, kernel in PY_KERNELS.items()})
    return cuda


def signatures() -> dict:
    """The argument types each kernel is launched with, by kernel: what a GPU compiles (and
    what tests/test_cuda_ptx.py compiles to PTX; tests/cuda_sim checks the list is complete).

    >>> from fastinit.backends import cuda
    >>> {name: len(sigs) for name, sigs in cuda.signatures().items() if "dense" not in name}
    {'fill32': 2, 'fill64': 1, 'scatter': 4}
    >>> sorted(name for name in cuda.signatures() if "dense" in name)[:3]
    ['fill32_dense_central', 'fill32_dense_central_bf16', 'fill32_dense_central_f16']
    """
    from numba import types

    i64 = types.int64
    plan = (types.int64[::1], i64, i64, i64, i64, i64, i64, i64)  # desc .. dstep
    runs = plan[:-2]  # desc .. n: the dense kernels' runs have unit steps
    p, key = types.UniTuple(types.float64, 8), types.UniTuple(types.uint64, 4)
    return {
        "fill32": [(out, i64, *plan, i64, p, key) for out in (types.float32[::1], types.uint16[::1])],
        "fill64": [(types.float64[::1], *plan, i64, p, key)],
        **{
            name: [
                (types.uint16[::1] if name.endswith(("_bf16", "_f16")) else types.float32[::1], *runs, p, key)
            ]
            for name in PY_KERNELS
            if name.startswith("fill32_dense_")
        },
        **{
            name: [(types.float64[::1], *runs, p, key)]
            for name in PY_KERNELS
            if name.startswith("fill64_dense_")
        },
        "scatter": [
            (out, i64, src, *plan)
            for out, src in (
                (types.float32[::1], types.float32[::1]),
                (types.float64[::1], types.float64[::1]),
                (types.uint16[::1], types.uint16[::1]),
                (types.uint16[::1], types.float32[::1]),
            )
        ],
    }


def kernels() -> dict:
    """The kernels (fill32, fill64, their dense forms, scatter), for tests and benchmarks."""
    load()
    return dict(KERNELS)
