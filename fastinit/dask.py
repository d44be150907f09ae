"""Dask adapter: samplers and schemes as dask arrays, and checkpoints written by Dask workers.

Imported on demand (``import fastinit.dask``), never by ``import fastinit``.

Each chunk of ``fastinit.dask.normal(shape, ..., chunks=...)`` is generated alone from its
global location (the ``index=`` of the functional API), with no communication, so any chunking,
any scheduler and any cluster compute to the bytes of the single-machine tensor
(``dask.array.random`` changes with the chunking). ``.to_zarr(...)`` stores those bytes.

Orthogonal and delta-orthogonal need whole matrices: a chunking that splits one is refused
(orthogonal's ``batch_dims`` dimensions and delta-orthogonal's spatial ones may be chunked).
bfloat16 arrays need ``ml_dtypes`` (Dask needs a NumPy dtype).

``write_checkpoint(manifest, directory, client=...)`` distributes the checkpoint writer's shard
files over the workers (one task per shard; the directory must be shared by them); every file
is byte-identical to the single-process writer's.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import driver, samplers, schemes
from .checkpoint import Manifest, WriteResult, plan_shards
from .checkpoint.writer import (
    check_run_arguments,
    claim_directory,
    finalize,
    prepare_directory,
    shards_to_write,
    write_shard,
)
from .dtypes import resolve_dtype
from .schemes.registry import Initializer, record_of
from .typing import ChunksLike, DTypeLike, SeedLike, ShapeLike, StrPath

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "array",
    "uniform",
    "normal",
    "truncated_normal",
    "variance_scaling",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_uniform",
    "lecun_normal",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "orthogonal",
    "delta_orthogonal",
    "constant",
    "zeros",
    "ones",
    "eye",
    "dirac",
    "sparse",
    "write_checkpoint",
]


def _block(fn, shape, args, params, seed, name, dtype, index):
    """One chunk: the functional scheme at this global index, as a NumPy array."""
    return fn(shape, *args, **params, seed=seed, name=name, dtype=dtype, index=index).numpy()


def _check_whole_matrices(fn, shape, chunks, args, params) -> None:
    """Refuse chunks that split a matrix the scheme factors (its record's ``factored_axes``): each
    chunk would factor the whole matrix again."""
    record = record_of(fn)
    if record is None or record.factored_axes is None:
        return
    if isinstance(fn, Initializer):
        args, params = (), fn.params
    axes = record.factored_axes(record.arguments(shape, params, args))
    for axis in axes:
        if len(chunks[axis]) > 1:
            raise ValueError(
                f"{record.name} needs whole matrices, but chunks={chunks} split dimension {axis} of shape {shape}; "
                f"chunk only the first {axes.start} dimension(s) (those outside its matrices)"
            )


def array(
    fn: Callable[..., Any],
    shape: ShapeLike,
    *args: Any,
    chunks: ChunksLike = "auto",
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    **params: Any,
) -> da.Array:
    """A dask array of ``fn(shape, *args, **params, seed=seed, name=name, dtype=dtype)``.

    ``fn`` is a fastinit sampler or scheme function, or an ``Initializer``. Every chunk equals
    the same region of the single-machine tensor, byte for byte.

    >>> import numpy as np, fastinit, fastinit.dask
    >>> x = fastinit.dask.array(fastinit.normal, (100, 60), 0.0, 0.02, chunks=(30, 25), seed=1, name="w")
    >>> bool(np.array_equal(x.compute(), np.asarray(fastinit.normal((100, 60), 0.0, 0.02, seed=1, name="w"))))
    True
    """
    shape = driver.check_shape(shape)
    dt = resolve_dtype("float32" if dtype is None else dtype)
    np_dtype = dt.numpy_dtype()
    chunks = da.core.normalize_chunks(chunks, shape, dtype=np_dtype)
    _check_whole_matrices(fn, shape, chunks, args, params)
    if isinstance(fn, Initializer):
        init, fn = fn, lambda s, **kw: init(s, **kw)
    token = tokenize(getattr(fn, "__qualname__", repr(fn)), shape, args, sorted(params.items()), seed, name,
                     dt.name, chunks)  # fmt: skip
    label = f"fastinit-{getattr(fn, '__name__', 'init')}-{token}"
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int).tolist() for c in chunks]
    graph = {}
    for block in itertools.product(*(range(len(c)) for c in chunks)):
        index = tuple(slice(starts[d][b], starts[d][b] + chunks[d][b]) for d, b in enumerate(block))
        graph[(label, *block)] = (_block, fn, shape, args, params, seed, name, dt.name, index)
    meta = np.empty((0,) * len(shape), np_dtype)
    return da.Array(HighLevelGraph.from_collections(label, graph, dependencies=[]), label, chunks, meta=meta)


def _chunked(fn: Callable[..., Any]) -> Callable[..., da.Array]:
    """The dask version of a functional scheme: same arguments, plus ``chunks``."""

    # fn's name and module, not its annotations: the wrapper's own (with chunks) describe it
    @functools.wraps(fn, assigned=("__module__", "__name__", "__qualname__"))
    def wrapper(
        shape: ShapeLike,
        *args: Any,
        chunks: ChunksLike = "auto",
        seed: SeedLike = 0,
        name: str | None = None,
        dtype: DTypeLike | None = None,
        **params: Any,
    ) -> da.Array:
        return array(fn, shape, *args, chunks=chunks, seed=seed, name=name, dtype=dtype, **params)

    wrapper.__doc__ = (
        f"``fastinit.{fn.__name__}`` as a dask array: the same arguments plus ``chunks``; each chunk "
        "is generated alone and equals that region of the single-machine tensor.\n"
    )
    return wrapper


uniform = _chunked(samplers.uniform)
normal = _chunked(samplers.normal)
truncated_normal = _chunked(samplers.truncated_normal)
variance_scaling = _chunked(schemes.variance_scaling)
xavier_uniform = glorot_uniform = _chunked(schemes.xavier_uniform)
xavier_normal = glorot_normal = _chunked(schemes.xavier_normal)
kaiming_uniform = he_uniform = _chunked(schemes.kaiming_uniform)
kaiming_normal = he_normal = _chunked(schemes.kaiming_normal)
lecun_uniform = _chunked(schemes.lecun_uniform)
lecun_normal = _chunked(schemes.lecun_normal)
orthogonal = _chunked(schemes.orthogonal)
delta_orthogonal = _chunked(schemes.delta_orthogonal)
constant = _chunked(schemes.constant)
zeros = _chunked(schemes.zeros)
ones = _chunked(schemes.ones)
eye = _chunked(schemes.eye)
dirac = _chunked(schemes.dirac)
sparse = _chunked(schemes.sparse)


def write_checkpoint(
    manifest: Manifest,
    directory: StrPath,
    *,
    client: Client | None = None,
    seed: int = 0,
    max_shard_size: int | str = "5GB",
    resume: bool = False,
    overwrite: bool = False,
    fsync: bool = False,
    stream: bool = False,
    chunk_bytes: int = 64 << 20,
) -> WriteResult:
    """The checkpoint writer with its shard files written by Dask workers, one task per shard.

    ``client``: a ``dask.distributed.Client`` (default: Dask's current scheduler). The
    directory must be reachable at the same path by every worker. Every file is byte-identical
    to ``fastinit.checkpoint.write_checkpoint``'s, and the directory rules are the same: this
    process holds the directory's lock for the run, and another checkpoint there is refused
    unless ``overwrite=True``.
    """
    seed = check_run_arguments(seed, chunk_bytes)
    plans = plan_shards(manifest, max_shard_size, seed)
    directory = prepare_directory(directory)
    lock = claim_directory(directory, manifest, plans, overwrite=overwrite)
    try:
        todo, kept = shards_to_write(directory, plans, resume=resume)
        tasks = [
            dask.delayed(write_shard, pure=False)(
                directory, plan, seed, chunk_bytes=chunk_bytes, fsync=fsync, stream=stream, token=lock.token
            )
            for plan in todo
        ]
        written = list(client.compute(tasks, sync=True) if client is not None else dask.compute(*tasks))
        lock.check()
        finalize(directory, manifest, plans, fsync=fsync, token=lock.token)
    finally:
        lock.release()
    return WriteResult(directory, [p.filename for p in plans], written=written, skipped=kept,
                       total_bytes=manifest.nbytes)  # fmt: skip
