"""The one place where JIT options are set.

Two kinds of compiled code exist in fastinit:

``pure``
    Per-element functions of the rng/ and distributions/ layers: integer rounds, word-to-float
    converters, special functions. They are plain ``numba.njit`` functions so that the same
    source compiles for the CPU kernels and, through numba-cuda (which can call ``@njit``
    functions from a kernel), for the CUDA kernels. Options:

    - ``cache=True``: a second process loads the machine code instead of compiling again.
    - ``error_model="numpy"``: no Python-style ZeroDivisionError checks. Those checks add a
      branch to every division, and a branch in the loop body stops LLVM from vectorizing.
    - ``boundscheck=False``: likewise, no branches on indexing.
    - ``fastmath=False``: never reassociate or contract. The exact sequence of roundings is
      part of the stream contract (CPU and CUDA must produce the same bits); every fused
      multiply-add is written explicitly with ``_intrinsics.fma``.
    - ``inline="always"``: inlined at Numba IR level. LLVM does not inline calls between
      separately compiled Numba functions, and a call in a loop body stops vectorization.

``loop``
    The per-tile loops of the backends: compiled as ordinary (not inlined) functions, each
    called once per tile of 64 values, so the call costs nothing while the leaf ``pure``
    functions are inlined into them. Inlining these too multiplies compile time (a kernel
    that inlined every distribution took minutes to compile).

``KERNEL``
    Options for the parallel CPU fill kernels in ``backends/cpu.py`` (the only place that
    applies them): the same as above plus ``parallel=True`` (``prange`` over tiles) and
    ``nogil=True`` so a caller's threads (e.g. a checkpoint writer) can overlap with them.
    They are run through ``cpu.launch``, which serializes them under Numba's ``workqueue``
    threading layer (not thread-safe: concurrent launches abort the process).
"""

from __future__ import annotations

import numba

_COMMON = dict(cache=True, error_model="numpy", boundscheck=False, fastmath=False)

PURE = dict(_COMMON, inline="always", nogil=True)
LOOP = dict(_COMMON, nogil=True)
KERNEL = dict(_COMMON, parallel=True, nogil=True)
SERIAL_KERNEL = dict(_COMMON, nogil=True)
# for functions users hand to fastinit (custom schemes): not cached on disk, since Numba
# cannot cache closures over them; the user's function keeps Python's semantics
# (error_model="python": a division by zero raises ZeroDivisionError instead of giving 0 or inf)
KERNEL_NOCACHE = dict(KERNEL, cache=False)
USER_FUNCTION = dict(SERIAL_KERNEL, cache=False, error_model="python")


def pure(fn):
    """Compile a per-element function with the package's options (see module docstring)."""
    return numba.njit(**PURE)(fn)


def loop(fn):
    """Compile a per-tile loop function (not inlined; see module docstring)."""
    return numba.njit(**LOOP)(fn)


# The CUDA kernels (backends/cuda/compiler.py). No LTO: NVVM writes the PTX the driver
# assembles (the PTX tests/test_cuda_ptx.py inspects), and there is nothing to link. Kernels are
# compiled without fastmath, so NVVM keeps IEEE division and square root (prec-div=1,
# prec-sqrt=1, ftz=0) and fuses only the explicit fmas. The simulator takes no ``lto``.
CUDA_KERNEL = dict(cache=True, lto=False)
SIMULATED_CUDA_KERNEL = dict(cache=True)
# The Philox rounds under the simulator, compiled for the CPU (the simulator would otherwise run
# them as Python); a closure over the multiply, so not cacheable on disk.
SIMULATED_DEVICE_FUNCTION = dict(cache=False)
