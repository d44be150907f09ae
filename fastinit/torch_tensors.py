"""Writing fastinit's values into torch tensors in place: plain tensors, and DTensors shard by
shard, each rank writing the slice of the global tensor it holds (no communication).

The layer under ``fastinit.torch``'s in-place functions and its whole-model initialization.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping

import torch

from . import driver
from .dtypes import resolve_dtype
from .schemes import Initializer, get_initializer

__all__ = ["fill", "fill_with", "as_initializer", "local_views", "copy_values", "is_dtensor"]


def fill_with(tensor, fn, *args, seed=0, name=None, index=None, **kwargs):
    """Fill ``tensor`` (or its block ``index``) in place with ``fn(tensor.shape, *args, ...)``;
    return the tensor. ``seed`` is an int or a function returning it (fastinit.torch's in-place
    functions pass one that draws from torch's generator).

    >>> import torch, fastinit
    >>> t = fill_with(torch.empty(2, 3), fastinit.uniform, -1.0, 1.0, seed=5, name="w")
    >>> t.numpy().tobytes() == fastinit.uniform((2, 3), -1.0, 1.0, seed=5, name="w").tobytes()
    True

    A DTensor gets, on each rank, the slice of ``fn(global shape)`` its local shard holds.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.is_meta:
        return tensor  # nothing to fill, as torch.nn.init does for meta tensors
    if tensor.device.type not in ("cpu", "cuda"):
        raise ValueError(f"tensor is on {tensor.device}: fastinit fills CPU and CUDA tensors")
    if tensor.is_neg() or tensor.is_conj():
        kind = "negation" if tensor.is_neg() else "conjugation"
        raise TypeError(f"tensor has torch's lazy {kind} bit set; fill a plain tensor and copy it in")
    try:
        dtype = resolve_dtype(tensor.dtype, argname="tensor.dtype")
    except TypeError:
        raise TypeError(
            f"tensor has dtype {tensor.dtype}; fastinit fills float32, float64, float16 and bfloat16 tensors"
        ) from None
    if callable(seed):
        seed = seed() if tensor.numel() else 0
    with torch.no_grad():
        if is_dtensor(tensor):
            _fill_shard(tensor, fn, args, kwargs, seed=seed, name=name, dtype=dtype, index=index)
            # the writes bumped the local shard's version counter; autograd checks the DTensor's
            torch.autograd.graph.increment_version(tensor)
        else:
            out = tensor.detach() if index is None else tensor.detach()[index]
            fn(tuple(tensor.shape), *args, seed=seed, name=name, dtype=dtype, index=index, out=out, **kwargs)
    return tensor


def fill(tensor, init, *, seed: int = 0, name: str | None = None, index=None):
    """Fill ``tensor`` (a plain tensor or a DTensor), or its block ``index`` of the full
    tensor, with the initializer ``init`` (an ``Initializer``, a scheme name or a config
    dict) drawn from the stream ``(seed, name)``; return the tensor.

    >>> import torch, fastinit, fastinit.torch
    >>> t = fastinit.torch.fill(torch.empty(4, 3), "normal", seed=1, name="w")
    >>> t.numpy().tobytes() == fastinit.normal((4, 3), seed=1, name="w").tobytes()
    True
    >>> fastinit.torch.fill(torch.zeros(3, 2), {"scheme": "ones"}, index=(1,))
    tensor([[0., 0.],
            [1., 1.],
            [0., 0.]])
    """
    init = as_initializer(init)
    value = init.constant_value if isinstance(init, Initializer) else None
    constant = value is not None
    if tensor.dtype.is_floating_point and not (constant and _exact(value, tensor.dtype)):
        return fill_with(tensor, init, seed=seed, name=name, index=index)
    if not constant:  # integer buffers: counters, indices
        raise TypeError(f"tensor has dtype {tensor.dtype}: only constants fill it, not {init.scheme}")
    # a constant the dtype holds exactly: torch's fill_ writes the same bytes without a kernel
    # launch (a model's many small norm weights and biases)
    with torch.no_grad():
        for _, view in local_views(tensor, index):
            view.fill_(value)
    return tensor


def _exact(value, dtype) -> bool:
    """Whether the number ``value`` is exactly a value of the floating ``dtype`` (so filling
    it involves no rounding)."""
    try:
        return bool(torch.tensor(value, dtype=torch.float64).to(dtype).double().item() == value)
    except (TypeError, RuntimeError, OverflowError):
        return False


def local_views(tensor, index):
    """(index into ``full[index]``, local view) pairs of the block ``index`` this rank holds.

    >>> import torch
    >>> [(i, tuple(v.shape)) for i, v in local_views(torch.zeros(4, 3), (slice(1, 3),))]
    [((), (2, 3))]
    """
    if not is_dtensor(tensor):
        yield (), (tensor.detach() if index is None else tensor.detach()[index])
        return
    indices = _shard_indices(tensor)
    local = tensor.to_local().detach()
    if indices is None or local.is_meta:
        return
    for _, local_index, value_index in _blocks(indices, tuple(tensor.shape), index):
        yield value_index, local[local_index]


def copy_values(tensor, value, index):
    """Copy ``value`` (the values of ``full[index]``) into the part of it this rank holds.

    >>> import torch
    >>> t = torch.zeros(3, 2)
    >>> copy_values(t, torch.ones(1, 2), (slice(1, 2),)); t[:, 0].tolist()
    [0.0, 1.0, 0.0]
    """
    with torch.no_grad():
        for value_index, view in local_views(tensor, index):
            view.copy_(value[value_index] if value_index else value)


def as_initializer(rule) -> Callable:
    """A rule value as something called like a scheme: (shape, *, seed, name, out).

    >>> as_initializer({"scheme": "normal", "std": 0.02}).to_config()["std"]
    0.02
    >>> as_initializer(3)
    Traceback (most recent call last):
    TypeError: a rule must be an Initializer, a scheme name, a config dict or a callable, got 3
    """
    if isinstance(rule, Initializer):
        return rule
    if isinstance(rule, str):
        return get_initializer(rule)
    if isinstance(rule, Mapping) and "scheme" in rule:
        return Initializer.from_config(dict(rule))
    if callable(rule):
        return rule
    raise TypeError(
        f"a rule must be an Initializer, a scheme name, a config dict or a callable, got {rule!r}"
    )


# ---- DTensors ----------------------------------------------------------------------------------
#
# torch.distributed.tensor is never imported here: a DTensor can only exist once its module is
# loaded, so looking it up in sys.modules keeps `import fastinit.torch` and every plain-tensor
# fill free of the distributed stack.


def is_dtensor(tensor) -> bool:
    """Whether ``tensor`` is a DTensor (without importing torch.distributed: a DTensor can exist
    only once its module is loaded).

    >>> import torch
    >>> is_dtensor(torch.zeros(2))
    False
    """
    dtensor = getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", None)
    return dtensor is not None and isinstance(tensor, dtensor)


def _shard_indices(tensor, argname: str = "tensor") -> list | None:
    """The global indices, per dimension, of the elements this rank's ``to_local()`` holds.

    Each entry is a ``range`` (Shard and Replicate placements give contiguous runs) or a list
    (``_StridedShard`` can interleave). None when this rank is not part of the DTensor's mesh
    (its local tensor is empty). The offsets come from torch's own placement code
    (``Shard.local_shard_size_and_offset``, ``_StridedShard``'s offsets), applied in the order
    torch shards the tensor, so uneven shards follow torch's ``torch.chunk`` rule; the result
    is checked against the local tensor's shape.
    """
    from torch.distributed.tensor import Partial, Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    mesh, placements, shape = tensor.device_mesh, tuple(tensor.placements), tuple(tensor.shape)
    for mesh_dim, p in enumerate(placements):
        if isinstance(p, Partial):
            raise ValueError(
                f"{argname} is a DTensor with a Partial placement on mesh dimension {mesh_dim} "
                f"({placements}): its local tensors are summands of the value, not slices of it, so "
                "there is no slice to fill. Redistribute it to Shard/Replicate placements first"
            )
        if not isinstance(p, (Shard, _StridedShard, Replicate)):
            raise ValueError(
                f"{argname} is a DTensor with placement {p!r} on mesh dimension {mesh_dim}: "
                "fastinit fills Shard, _StridedShard and Replicate placements"
            )
    coordinate = mesh.get_coordinate()
    if coordinate is None:
        return None
    # Which mesh dimensions split each tensor dimension, in the order the splits apply: left to
    # right over the placements (as distribute_tensor and _StridedShard define it), unless the
    # spec carries an explicit, different shard order (torch's redistribute can make those).
    order = {
        d: [m for m, p in enumerate(placements) if getattr(p, "dim", None) == d] for d in range(len(shape))
    }
    spec = getattr(tensor, "_spec", None)
    shard_order = getattr(spec, "shard_order", None)
    if shard_order is not None and not getattr(spec, "use_strided_shard_as_shard_order", False):
        if any(isinstance(p, _StridedShard) for p in placements):
            raise ValueError(
                f"{argname} is a DTensor whose spec gives both _StridedShard placements and an "
                f"explicit shard order ({placements}, {shard_order}): fastinit cannot tell which "
                "elements this rank holds. Redistribute it to Shard/Replicate placements first"
            )
        for entry in shard_order:
            order[entry.tensor_dim] = list(entry.mesh_dims)
    indices: list = []
    for d, size in enumerate(shape):
        held = range(size)
        for m in order[d]:
            p, chunks, rank = placements[m], mesh.size(m), coordinate[m]
            if isinstance(p, _StridedShard):
                held = [held[i] for i in _strided_offsets(p, len(held), chunks, rank)]
            else:
                length, start = _shard_size_and_offset(Shard, len(held), chunks, rank)
                held = held[start : start + length]
        indices.append(held)
    local_shape = tuple(tensor.to_local().shape)
    if tuple(len(i) for i in indices) != local_shape:
        raise RuntimeError(
            f"{argname}: the local shard has shape {local_shape}, but torch's placement rules give "
            f"{tuple(len(i) for i in indices)} for global shape {shape}, placements {placements} "
            f"at mesh coordinate {coordinate}; this torch version lays out DTensors in a way "
            "fastinit does not know"
        )
    return indices


def _shard_size_and_offset(shard, size: int, chunks: int, rank: int) -> tuple[int, int]:
    if not hasattr(shard, "local_shard_size_and_offset"):
        raise RuntimeError(
            f"filling DTensors needs torch's Shard.local_shard_size_and_offset (torch {torch.__version__} "
            "has none); fastinit is tested with torch 2.13"
        )
    return shard.local_shard_size_and_offset(size, chunks, rank)


def _strided_offsets(placement, size: int, chunks: int, rank: int) -> list[int]:
    from torch.distributed.tensor.placement_types import _StridedShardOffsetMode

    _, offsets = placement.local_shard_size_and_offset(size, chunks, rank, _StridedShardOffsetMode.ALL)
    return list(offsets) if isinstance(offsets, (list, tuple)) else []


def _runs(held) -> list[tuple[slice, slice]]:
    """Maximal runs of consecutive global indices: (global slice, local slice) pairs."""
    if isinstance(held, range):  # step 1 by construction
        return [(slice(held.start, held.stop), slice(0, len(held)))]
    runs, start = [], 0
    for k in range(1, len(held) + 1):
        if k == len(held) or held[k] != held[k - 1] + 1:
            runs.append((slice(held[start], held[k - 1] + 1), slice(start, k)))
            start = k
    return runs


def _accepts_index(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): let the call decide
        return True
    return any(p.name == "index" or p.kind is p.VAR_KEYWORD for p in params)


def _fill_shard(tensor, fn, args, kwargs, *, seed, name, dtype, index=None):
    """Write this rank's slice of ``fn(tensor.shape, ...)`` (of its block ``index``) into
    ``tensor.to_local()``.

    Orthogonal (and sparse) need whole matrices (columns): their ``index=`` computes what the
    slice needs, so every rank holding part of a matrix factors the whole matrix.
    """
    indices = _shard_indices(tensor)
    local = tensor.to_local()
    if indices is None or local.numel() == 0 or local.is_meta:
        return
    if not _accepts_index(fn):
        raise TypeError(
            f"{fn!r} takes no index= argument: filling a DTensor generates each rank's slice "
            "with index=, so the initializer must accept it (as every fastinit scheme does)"
        )
    shape = tuple(tensor.shape)
    out = local.detach()
    replica = all(isinstance(h, range) and len(h) == n for h, n in zip(indices, shape, strict=True))
    if replica and index is None:
        fn(shape, *args, seed=seed, name=name, dtype=dtype, out=out, **kwargs)
        return
    for global_index, local_index, _ in _blocks(indices, shape, index):
        fn(
            shape,
            *args,
            seed=seed,
            name=name,
            dtype=dtype,
            index=global_index,
            out=out[local_index],
            **kwargs,
        )


def _blocks(indices, shape, index=None):
    """(global index, local index, index into ``full[index]``) triples covering the elements
    of block ``index`` (None: everything) that this rank holds; ``indices`` as from
    ``_shard_indices``."""
    wanted = driver.normalized_index(shape, index)
    blocks = [((), (), ())]
    for held, want in zip(indices, wanted, strict=True):
        parts = _intersect(held, want)
        blocks = [(g + (pg,), lo + (pl,), v + (pv,) if pv is not None else v)
                  for g, lo, v in blocks for pg, pl, pv in parts]  # fmt: skip
    return blocks


def _intersect(held, want) -> list:
    """(global, local, value) parts where the global coordinates ``held`` (local position ->
    global index) meet ``want`` (an int or a slice with explicit start, stop, step)."""
    if isinstance(want, int):
        return [(want, held.index(want), None)] if want in held else []
    w0, w1, step = want.start, want.stop, want.step
    if step < 0:  # a plan's blocks run forward; a reversed block is its own mirror image
        raise ValueError("a block with a negative step cannot be split across shards")
    parts = []
    for g_run, l_run in _runs(held):
        lo, hi = max(g_run.start, w0), min(g_run.stop, w1)
        first = lo + (w0 - lo) % step
        if first >= hi:
            continue
        last = first + (hi - 1 - first) // step * step
        offset = l_run.start - g_run.start
        parts.append((
            slice(first, last + 1, step),
            slice(first + offset, last + offset + 1, step),
            slice((first - w0) // step, (last - w0) // step + 1),
        ))  # fmt: skip
    return parts
