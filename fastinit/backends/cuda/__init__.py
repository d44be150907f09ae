"""The CUDA backend: the CPU kernels' per-element functions, one work item per Philox block.

Imported only when ``device="cuda"`` is used; ``numba.cuda`` itself is imported by ``load()``
(never by ``import fastinit``). This package is the only place that applies ``numba.cuda.jit``.

Modules, one job each:

- ``device_code``: the device functions and kernels (plain Python) and ``bind``;
- ``compiler``: ``load`` (import numba.cuda, compile the kernels on first use), ``signatures``;
- ``launch``: launch geometry and the plan's upload; ``fill`` and ``scatter`` along a FillPlan;
- ``memory``: a CUDA ``out=`` (FastArray, DLPack, CUDA array interface, simulator) as an
  ``OutView`` the kernels write;
- ``writes``: sampling into a new FastArray or an ``OutView`` and storing given values, with
  the streams ordered around each write.

Layout (rng/layout.py): the work item for tile t, lane j computes the Philox block
t * 16 + j and stores its values: float32 outputs (and bfloat16 / float16, computed in
float32) at elements t*64 + k*16 + j for k = 0..3, float64 outputs at t*32 + k*16 + j for
k = 0, 1. Per k, a warp stores two runs of 16 consecutive values: full 32-byte sectors. Each
thread takes work items in a grid-stride loop, so any grid and block size cover the range and
no value depends on which thread computed it (tests/cuda_sim/ runs several geometries
and compares the bytes).

What to fill is a ``FillPlan`` (backends/plan.py: an outer multi-index times a run of n
elements, with source and destination steps):

- both steps 1 (whole tensors, ``index=`` without steps, any ``out=`` whose rows are
  contiguous): one work item per Philox block of each run; values of a block that fall
  outside the run (the partial tiles at both ends) are not stored;
- otherwise (``index=`` with steps, transposed or strided ``out=``): one work item per
  element, which computes its block's words and only its own value.

Every intended multiply-add is an explicit ``fma`` (llvm.fma -> ``fma.rn``), division and
square root are IEEE (``div.rn``, ``sqrt.rn``: NVVM's defaults prec-div=1, prec-sqrt=1, ftz=0,
since the kernels are compiled without fastmath), and the kernels are compiled without LTO, so the PTX that tests/test_cuda_ptx.py
inspects is what the driver assembles. Contraction can happen at two places, and that test
checks both for every kernel signature (``signatures()``):

- NVVM (``-fma=1`` by default): compiling with ``-fma=0`` gives the same instructions (only
  the rounding suffix of plain ``mul``/``add`` changes), so NVVM fused nothing;
- ptxas, which may fuse a ``mul`` and an ``add``/``sub`` that carry no rounding suffix: the
  only such pair in the PTX is ``-2.0 * logq`` feeding a subtraction (the far-tail truncated
  normal, distributions/special.py ``log_norm_sf_inverse``), a product by a power of two, which
  is exact, so fusing it changes no bit.

Hence the GPU computes the CPU's bytes, exactly, for every sampler (uniform, normal, truncated
normal, 16-bit outputs included); see README.md, "CUDA". Checked on a GPU by
tests/test_cuda_gpu.py (every sampler and dtype, 10**8 elements each); in CI, under numba's
CUDA simulator, the kernels' index arithmetic and layout are checked byte for byte against the
CPU backend (tests/cuda_sim/).
"""

from .compiler import kernels, load, signatures
from .device_code import PY_KERNELS, STORE_BF16, STORE_F16, STORE_SAME
from .launch import BLOCK_SIZE, DENSE_MIN_ITEMS, fill, fixed_geometry, general_kernels_only, scatter
from .memory import device_out, out_dtype, out_index, writable_out
from .writes import deliver, fill_array, fill_out

__all__ = [
    "load",
    "kernels",
    "signatures",
    "fill",
    "scatter",
    "fill_array",
    "fill_out",
    "deliver",
    "writable_out",
    "device_out",
    "out_dtype",
    "out_index",
    "fixed_geometry",
    "general_kernels_only",
    "PY_KERNELS",
    "BLOCK_SIZE",
    "DENSE_MIN_ITEMS",
    "STORE_SAME",
    "STORE_BF16",
    "STORE_F16",
]
