"""Orthogonal initialization: a whole-matrix operation above the per-element samplers.

A Gaussian matrix A is drawn through the public sampler (so A is a pure function of
(seed, name) like every other stream), factored A = QR by LAPACK (multithreaded BLAS), and
Q's columns are multiplied by sign(diag R), which makes Q Haar-distributed on the orthogonal
group (Mezzadri 2007, "How to generate random matrices from the classical compact groups").
The tall orientation is factored (so the work is along the smaller dimension) and transposed
back when the matrix is wide.

Flattening, as the source conventions do it:

- torch (default, ``column_axis=None``): rows = shape[0], cols = the product of the rest
  (``torch.nn.init.orthogonal_``).
- JAX (``column_axis=k``): cols = shape[k], rows = the product of the rest, and the result is
  moved back so axis k holds the columns (``jax.nn.initializers.orthogonal``).

``batch_dims=b`` treats the first b dimensions as a batch of independent matrices (each from
its own part of the Gaussian stream), factored in parallel.

Threads: a factorization below 2048 x 2048 elements runs LAPACK on one BLAS thread (batches
factor several at once instead). On a small machine, BLAS threads started right after the
Numba kernel that drew A compete with its still-spinning OpenMP threads; measured here, a
512 x 256 QR then took 20 ms to 1.6 s instead of 5 ms.

Reproducibility: A is bit-reproducible everywhere; Q agrees across machines and thread counts
to float rounding (LAPACK's blocked algorithms may sum in a different order), ~1e-6 in float32.

On a GPU (``device="cuda"``, or a CUDA ``out``) A is drawn on the device (the same bits as on
the CPU) and factored there by cuSOLVER, through CuPy (``qr="cupy"``) or torch
(``qr="torch"``); the sign fix, gain, layout and ``index=`` selection run on the device too.
By default the framework of ``out`` is used, else CuPy when installed, else torch.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import driver, dtypes, samplers
from ..array import check_addressable
from ..cuda_runtime import device_ordinal
from ..typing import ArrayOut, DeviceLike, DTypeLike, IndexLike, QRBackend, RealLike, SeedLike, ShapeLike
from .record import Prediction, Scheme

__all__ = ["orthogonal", "delta_orthogonal", "single_blas_thread", "factorization_threads", "RECORDS"]

_MULTITHREAD_QR = 2048 * 2048  # elements from which one factorization gets all BLAS threads


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """BLAS runs on one thread inside the block (its thread pool is restored after it).

    For BLAS work interleaved with fastinit's parallel fills: started right after a Numba
    kernel, BLAS threads compete with its still-spinning threads (module docstring)."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


@contextlib.contextmanager
def factorization_threads(elements: int) -> Iterator[None]:
    """The BLAS threads a QR factorization of a matrix of ``elements`` elements should use,
    inside the block: one below 2048 x 2048 elements (several small ones factor in parallel
    instead), all of them from there."""
    with single_blas_thread() if elements < _MULTITHREAD_QR else contextlib.nullcontext():
        yield


def _qr_haar(a: np.ndarray) -> np.ndarray:
    """Q of a tall matrix (m >= n) with the sign(diag R) fix, via LAPACK geqrf + orgqr."""
    from scipy.linalg import lapack

    geqrf, orgqr = lapack.get_lapack_funcs(("geqrf", "orgqr"), (a,))
    n = a.shape[1]
    af = np.asfortranarray(a)
    # Workspace queries first (lwork=-1 leaves the matrix untouched): with the minimal
    # workspace LAPACK falls back to its unblocked BLAS-2 algorithms, several times slower.
    lwork = int(geqrf(af, lwork=-1, overwrite_a=True)[2][0].real)
    qr, tau, _, info = geqrf(af, lwork=max(lwork, n), overwrite_a=True)
    if info != 0:
        raise RuntimeError(f"LAPACK geqrf failed with info={info}")
    signs = np.sign(np.diagonal(qr)).astype(a.dtype)
    lwork = int(orgqr(qr, tau, lwork=-1, overwrite_a=True)[1][0].real)
    q, _, info = orgqr(qr, tau, lwork=max(lwork, n), overwrite_a=True)
    if info != 0:
        raise RuntimeError(f"LAPACK orgqr failed with info={info}")
    q *= signs  # column j times sign(R[j, j])
    return q


def _qr_haar_torch(a: np.ndarray) -> np.ndarray:
    """As _qr_haar, with torch.linalg.qr (MKL's LAPACK in torch's x86 CPU builds)."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            "orthogonal(qr='torch') needs torch: pip install torch (or use qr='scipy')"
        ) from None
    q, r = torch.linalg.qr(torch.from_numpy(a))
    q.mul_(torch.sign(torch.diagonal(r)))
    return q.numpy()


QR_BACKENDS = {"scipy": _qr_haar, "torch": _qr_haar_torch}


# ---- on a GPU -------------------------------------------------------------------------------


_CUDA_QR_HINT = "pip install cupy-cuda13x (or cupy-cuda12x), or a CUDA build of torch"


def _torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _gpu_qr_default(out) -> str:
    """The framework of out when it is a torch / CuPy array, else CuPy if installed, else torch
    if it is installed with CUDA; an ImportError naming what to install otherwise."""
    import importlib.util

    module = type(out).__module__ if out is not None else ""
    if module.startswith("torch"):
        return "torch"
    if module.startswith("cupy"):
        return "cupy"
    if importlib.util.find_spec("cupy") is not None:
        return "cupy"
    if importlib.util.find_spec("torch") is None:
        raise ImportError(
            "orthogonal on a GPU factors the matrix with cuSOLVER through CuPy or torch, and neither "
            f"is installed: {_CUDA_QR_HINT}"
        )
    if not _torch_has_cuda():
        import torch

        raise ImportError(
            "orthogonal on a GPU factors the matrix with cuSOLVER through CuPy or torch: CuPy is not "
            f"installed and torch {torch.__version__} cannot use CUDA here (a CPU-only build, or no "
            f"GPU for it); {_CUDA_QR_HINT}"
        )
    return "torch"


class _TorchGPU:
    def __init__(self, index: int):
        try:
            import torch
        except ImportError:
            raise ImportError(
                f"orthogonal(qr='torch') on a GPU needs torch with CUDA: {_CUDA_QR_HINT}"
            ) from None
        if not torch.cuda.is_available():
            raise ImportError(
                f"orthogonal(qr='torch') on a GPU needs torch with CUDA, and torch {torch.__version__} cannot "
                f"use CUDA here (a CPU-only build, or no GPU for it); {_CUDA_QR_HINT}"
            )
        self.xp, self.device = torch, torch.device("cuda", index)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=getattr(self.xp, np.dtype(dtype).name), device=self.device)

    def haar(self, a):
        """Q with the sign(diag R) fix of each tall (rows >= cols) matrix of a batch."""
        q, r = self.xp.linalg.qr(a)
        return q.mul_(self.xp.sign(self.xp.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2))

    def transpose(self, a):
        return a.mT

    def moveaxis(self, a, source, destination):
        return self.xp.movedim(a, source, destination)

    def select(self, a, selection):
        # torch slices take no negative steps: pick each axis with an index tensor instead
        axis = 0
        for item in selection:
            if isinstance(item, int):
                a = a.select(axis, item)
                continue
            n = a.shape[axis]
            start, stop, step = item.indices(n)
            if (start, stop, step) != (0, n, 1):
                picks = self.xp.arange(start, stop, step, device=self.device)
                a = self.xp.index_select(a, axis, picks)
            axis += 1
        return a.contiguous()


class _CupyGPU:
    def __init__(self, index: int):
        try:
            import cupy
        except ImportError:
            raise ImportError(
                "orthogonal(qr='cupy') needs CuPy: pip install cupy-cuda13x (or cupy-cuda12x)"
            ) from None
        self.xp, self.index = cupy, index

    def empty(self, shape, dtype):
        with self.xp.cuda.Device(self.index):
            return self.xp.empty(shape, dtype=dtype)

    def haar(self, a):
        xp = self.xp
        with xp.cuda.Device(self.index):
            out = xp.empty_like(a)
            for b in range(a.shape[0]):  # (batched QR needs a recent CuPy)
                q, r = xp.linalg.qr(a[b])
                out[b] = q * xp.sign(xp.diagonal(r))[None, :]
            return out

    def transpose(self, a):
        return self.xp.swapaxes(a, -1, -2)

    def moveaxis(self, a, source, destination):
        return self.xp.moveaxis(a, source, destination)

    def select(self, a, selection):
        with self.xp.cuda.Device(self.index):
            return self.xp.ascontiguousarray(a[selection])


# qr= name -> the class doing the device work (array allocation, batched QR with the sign fix,
# layout moves, index selection); tests substitute a NumPy-backed one under the CUDA simulator
GPU_QR = {"torch": _TorchGPU, "cupy": _CupyGPU}


def _haar_matrices(gaussian: np.ndarray, qr: str = "scipy") -> np.ndarray:
    """Orthogonalize each tall (rows >= cols) matrix of a (batch, rows, cols) stack."""
    batch, rows, cols = gaussian.shape
    factor = QR_BACKENDS[qr]
    if batch == 1:  # no stacking copy for the common single matrix
        with factorization_threads(rows * cols):
            return factor(gaussian[0])[None]
    out = np.empty_like(gaussian)

    def one(b):
        out[b] = factor(gaussian[b])

    with factorization_threads(rows * cols):
        if rows * cols >= _MULTITHREAD_QR:
            for b in range(batch):  # big matrices: the BLAS threads do the parallel work
                one(b)
        else:  # small ones: one BLAS thread each, several matrices at once
            with ThreadPoolExecutor(max_workers=min(batch, os.cpu_count() or 1)) as pool:
                list(pool.map(one, range(batch)))
    return out


class _HostQR:
    """GPU_QR's interface on NumPy arrays, factoring with LAPACK (``QR_BACKENDS[qr]``)."""

    def __init__(self, qr: str):
        self.qr = qr

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def haar(self, a):
        return _haar_matrices(a, self.qr)

    def transpose(self, a):
        return np.swapaxes(a, -1, -2)

    def moveaxis(self, a, source, destination):
        return np.moveaxis(a, source, destination)

    def select(self, a, selection):
        return a[selection]


@dataclass(frozen=True)
class _Factoring:
    """The matrices ``orthogonal`` factors for one call: ``rows`` x ``cols`` each, one per
    batch element the index touches (``flat_batch``: their flat positions in the batch, in
    order); ``coords`` are the index's coordinates per dimension of ``shape``."""

    shape: tuple[int, ...]
    batch_dims: int
    column_axis: int | None
    rows: int
    cols: int
    flat_batch: list[int]
    coords: list[np.ndarray]


def _orthogonal_values(ops, m: _Factoring, gain: float, compute, *, seed, name, index):
    """The selected values of ``orthogonal``, computed with ``ops`` (``_HostQR`` or a
    ``GPU_QR`` class): the Gaussian batch, its Haar factors times gain, laid out as the shape."""
    batch_shape, mshape = m.shape[: m.batch_dims], m.shape[m.batch_dims :]
    nbatch = len(m.flat_batch)
    gaussian = ops.empty((nbatch, m.rows, m.cols), compute)
    per_matrix = m.rows * m.cols
    total = math.prod(batch_shape) * per_matrix
    start = 0
    while start < nbatch:  # one sampler call per run of consecutive batch elements
        stop = start + 1
        while stop < nbatch and m.flat_batch[stop] == m.flat_batch[stop - 1] + 1:
            stop += 1
        first = m.flat_batch[start]
        samplers.normal((total,), seed=seed, name=name, dtype=compute, out=gaussian[start:stop].reshape(-1),
                        index=slice(first * per_matrix, (first + stop - start) * per_matrix))  # fmt: skip
        start = stop
    # the tall orientation is factored (the work is along the smaller dimension)
    tall = m.rows >= m.cols
    q = ops.haar(gaussian if tall else ops.transpose(gaussian))
    q = q if tall else ops.transpose(q)
    if gain != 1.0:
        q = q * compute(gain)
    if m.column_axis is None:
        full = q.reshape((nbatch, *mshape))
    else:
        rest = tuple(d for i, d in enumerate(mshape) if i != m.column_axis)
        full = ops.moveaxis(q.reshape((nbatch, *rest, m.cols)), -1, 1 + m.column_axis)
    # Select the indexed elements with basic slicing: the batch elements generated are already
    # the selected ones, in order; ints on batch dimensions drop them.
    full = full.reshape(tuple(len(c) for c in m.coords[: m.batch_dims]) + mshape)
    wanted = driver.normalized_index(m.shape, index)
    selection = (
        tuple(0 if isinstance(w, int) else slice(None) for w in wanted[: m.batch_dims])
        + wanted[m.batch_dims :]
    )
    return ops.select(full, selection)


def orthogonal(
    shape: ShapeLike,
    gain: RealLike = 1.0,
    *,
    column_axis: int | None = None,
    batch_dims: int = 0,
    qr: QRBackend | None = None,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """A (semi-)orthogonal matrix, Haar-distributed, times ``gain``.

    Default flattening is torch's (dim 0 against the rest); ``column_axis`` gives JAX's. If the
    matrix is tall its columns are orthonormal, if wide its rows are. ``qr`` picks the LAPACK:
    on the CPU "scipy" (default) or "torch" (``torch.linalg.qr``: MKL in torch's x86 CPU builds,
    twice as fast as SciPy's OpenBLAS here; ``fastinit.torch.orthogonal_`` uses it); on a GPU
    cuSOLVER through "cupy" or "torch" (default: out's framework, else CuPy if installed, else
    torch). They agree to float rounding, not bit for bit.

    >>> import fastinit, numpy as np
    >>> q = np.asarray(fastinit.orthogonal((64, 32), seed=0, name="w"), dtype=np.float64)
    >>> bool(np.allclose(q.T @ q, np.eye(32), atol=1e-5))
    True
    """
    shape = driver.check_shape(shape)
    gain = driver.check_real(gain, "gain")
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, int) or batch_dims < 0:
        raise ValueError(f"batch_dims={batch_dims!r} must be an int >= 0")
    batch_shape, mshape = shape[:batch_dims], shape[batch_dims:]
    if len(mshape) < 2:
        raise ValueError(
            "Only tensors with 2 or more dimensions are supported"
            + (f" (after the {batch_dims} batch dimensions)" if batch_dims else "")
        )
    target = driver.target_device(device, out)
    if target == "cpu":
        qr = "scipy" if qr is None else qr
        if qr not in QR_BACKENDS:
            raise ValueError(f"qr={qr!r} must be one of {', '.join(map(repr, QR_BACKENDS))} on the CPU")
    else:
        qr = _gpu_qr_default(out) if qr is None else qr
        if qr not in GPU_QR:
            raise ValueError(f"qr={qr!r} must be one of {', '.join(map(repr, GPU_QR))} on a GPU")
    if column_axis is not None:
        if isinstance(column_axis, bool) or not isinstance(column_axis, int):
            raise TypeError(f"column_axis must be an int or None, got {column_axis!r}")
        if not -len(mshape) <= column_axis < len(mshape):
            raise ValueError(f"column_axis={column_axis} is out of range for a matrix shape {mshape}")
        column_axis %= len(mshape)
    dt = driver.output_dtype(dtype, out)
    compute = np.float64 if dt.compute == 64 else np.float32
    # entries of Q reach nearly 1 in magnitude: gain itself must be a finite, nonzero value of dt
    if math.isinf(dtypes.round_to_dtype(gain, dt)) or (gain != 0 and dtypes.round_to_dtype(gain, dt) == 0):
        raise ValueError(f"gain={gain} is {'too large' if abs(gain) > 1 else 'too small'} for {dt.name}")
    coords = driver.index_coordinates(shape, index)
    if 0 in shape or 0 in driver.result_shape(shape, index):  # nothing to factor / rank
        check_addressable(driver.result_shape(shape, index), np.dtype(compute).itemsize)
        return driver.deliver(np.zeros(driver.result_shape(shape, index), compute), shape, dtype=dt, device=device,
                           index=index, out=out)  # fmt: skip
    if column_axis is None:
        rows, cols = mshape[0], math.prod(mshape[1:])
    else:
        cols = mshape[column_axis]
        rows = math.prod(mshape) // cols
    # Only the batch elements the index touches are generated (each needs its whole matrix).
    if batch_dims:
        grids = np.meshgrid(*coords[:batch_dims], indexing="ij")
        flat_batch = np.ravel_multi_index(tuple(g.ravel() for g in grids), batch_shape).tolist()
    else:
        flat_batch = [0]
    factoring = _Factoring(shape, batch_dims, column_axis, rows, cols, flat_batch, coords)
    if target == "cpu":
        ops, device = _HostQR(qr), "cpu"
    else:
        from ..backends import cuda as backend

        device_index = device_ordinal(target) if target != "cuda" else backend.out_index(out)
        ops, device = GPU_QR[qr](device_index), f"cuda:{device_index}"
    values = _orthogonal_values(ops, factoring, gain, compute, seed=seed, name=name, index=index)
    return driver.deliver(values, shape, dtype=dt, device=device, index=index, out=out)


def delta_orthogonal(
    shape: ShapeLike,
    gain: RealLike = 1.0,
    *,
    column_axis: int = -1,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Delta-orthogonal convolution kernel (Xiao et al. 2018, "Dynamical isometry and a mean
    field theory of CNNs"), as ``jax.nn.initializers.delta_orthogonal``.

    ``shape`` is (*spatial, in, out) with 1 to 3 spatial dimensions and in <= out: zero except
    at the spatial centre ((k - 1) // 2 per dimension), which holds an orthogonal (in, out)
    matrix times ``gain``.

    >>> import fastinit, numpy as np
    >>> w = np.asarray(fastinit.delta_orthogonal((3, 3, 16, 32), seed=0))
    >>> float(np.abs(w[0, 0]).max()), w[1, 1].shape
    (0.0, (16, 32))
    """
    shape = driver.check_shape(shape)
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"Delta orthogonal initializer requires a 3D, 4D or 5D shape, got {shape}")
    if shape[-1] < shape[-2]:
        raise ValueError("`fan_in` must be less or equal than `fan_out`. ")
    driver.target_device(device, out)  # a bad device fails before the host work
    dt = driver.output_dtype(dtype, out)
    compute = np.float64 if dt.compute == 64 else np.float32
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    matrix = np.asarray(orthogonal(shape[-2:], gain, column_axis=column_axis, seed=seed, name=name,
                                   dtype=compute))  # fmt: skip
    coords = driver.index_coordinates(shape, index)
    values = np.zeros(tuple(len(c) for c in coords), compute)
    hit = [np.nonzero(c == k)[0] for c, k in zip(coords[:-2], centre, strict=True)]
    if all(len(h) for h in hit):
        values[np.ix_(*hit, np.arange(len(coords[-2])), np.arange(len(coords[-1])))] = matrix[
            np.ix_(coords[-2], coords[-1])
        ]
    return driver.deliver(values.reshape(driver.result_shape(shape, index)), shape, dtype=dt, device=device, index=index,
                       out=out)  # fmt: skip


# ---- the registry's records: whole-matrix schemes, predicted by their root mean square ---------


def _matrix_dims(shape: tuple[int, ...], column_axis: int | None, batch_dims: int) -> tuple[int, int, int]:
    """(batch, rows, cols) of the matrices ``orthogonal`` factors for this shape."""
    batch, mshape = math.prod(shape[:batch_dims]), shape[batch_dims:]
    if column_axis is None:
        return batch, mshape[0], math.prod(mshape[1:])
    cols = mshape[column_axis]
    return batch, math.prod(mshape) // cols, cols


def _predict_orthogonal(a: dict[str, Any]) -> Prediction:
    shape, column_axis, batch_dims = a["shape"], a["column_axis"], a["batch_dims"]
    batch, rows, cols = _matrix_dims(shape, column_axis, batch_dims)
    gain = float(a["gain"])

    def matrices(values: np.ndarray) -> np.ndarray:
        m = values.reshape((batch,) + shape[batch_dims:])
        if column_axis is not None:
            m = np.moveaxis(m, 1 + column_axis % (len(shape) - batch_dims), -1)
        return m.reshape(batch, rows, cols)

    rms = abs(gain) / math.sqrt(max(rows, cols))
    note = "entries of a Haar matrix: KS n/a; checks Q^T Q = gain^2 I"
    return Prediction("orthogonal", 0.0, rms, note=note, matrices=matrices, gain=gain)


def _predict_delta_orthogonal(a: dict[str, Any]) -> Prediction:
    shape, gain = a["shape"], float(a["gain"])
    centre = tuple((k - 1) // 2 for k in shape[:-2])

    def matrices(values: np.ndarray) -> np.ndarray:
        m = values[centre][None]
        # column_axis picks which side of the (in, out) matrix has the columns
        return np.swapaxes(m, -1, -2) if a["column_axis"] % 2 == 0 else m

    rms = abs(gain) * math.sqrt(shape[-2] / math.prod(shape))
    note = "zero but an orthogonal centre: KS n/a"
    return Prediction("delta_orthogonal", 0.0, rms, note=note, matrices=matrices, gain=gain)


RECORDS = (
    Scheme(
        "orthogonal",
        orthogonal,
        whole_tensor=True,
        predict=_predict_orthogonal,
        factored_axes=lambda a: range(a["batch_dims"], len(a["shape"])),
    ),  # fmt: skip
    Scheme(
        "delta_orthogonal",
        delta_orthogonal,
        whole_tensor=True,
        predict=_predict_delta_orthogonal,
        factored_axes=lambda a: range(len(a["shape"]) - 2, len(a["shape"])),  # the (in, out) matrix
    ),
)
