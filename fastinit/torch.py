"""torch adapter: ``torch.nn.init`` with fastinit's streams, and whole-model initialization.

Imported on demand (``import fastinit.torch``), never by ``import fastinit``.

In-place functions with torch's signatures and defaults plus keyword ``seed`` and ``name``:
``uniform_, normal_, trunc_normal_, constant_, ones_, zeros_, eye_, dirac_, xavier_uniform_,
xavier_normal_, kaiming_uniform_, kaiming_normal_, orthogonal_, sparse_``. They draw in one of
two ways:

- **Named** (``seed=`` or ``name=`` given): a pure function of (seed, name, index). The tensor
  gets exactly what the functional API returns, e.g. ``fastinit.torch.normal_(t, 0.0, 0.02,
  seed=1, name="w")`` writes ``fastinit.normal(t.shape, 0.0, 0.02, seed=1, name="w")``, whatever
  torch's generator holds. ``seed`` defaults to 0 (``generator.initial_seed()`` when a
  generator is passed); torch's generator is not consumed.
- **Unnamed** (neither given), torch's semantics: a fresh draw at each call, reproducible from
  ``torch.manual_seed(s)``, or from the ``generator=`` passed. The call takes one number from
  that generator (default: torch's default CPU generator, for CPU and CUDA tensors alike),
  ``seed = torch.randint(0, 2**63 - 1, (), generator=generator).item()``, and fills the stream
  of that seed with no name. Meta and zero-element tensors draw nothing, as in torch.

``init_module(module, seed=0)`` fills every parameter of a model in place, each from the stream
of its qualified name, with the distribution the model's own init code gives (its
``reset_parameters`` and, for transformers models, ``_init_weights``, traced by
``fastinit.trace``; or a rule of yours). Works on models built on the ``meta`` device and
materialized with ``module.to_empty(device="cpu")`` or ``device="cuda"``. ``build(factory,
...)`` builds a module with its constructor's init traced; ``trace_module`` returns the plan.

CUDA tensors are filled on their GPU by fastinit's CUDA backend (``pip install
'fastinit[cuda]'``), on torch's current stream, with the same bytes as on the CPU.

DTensors (``torch.distributed.tensor``: FSDP2's ``fully_shard``, tensor parallelism's
``parallelize_module``, ``distribute_tensor``) are filled shard by shard: each rank writes into
its ``to_local()`` exactly the slice of the global tensor it holds (``index=`` of the functional
API, with the global shape for fans), with no communication, so ``full_tensor()`` equals what
one process fills into the unsharded tensor, byte for byte. ``torch.distributed`` is imported
only once a DTensor exists.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import inspect
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from . import driver, samplers, schemes, trace
from .dtypes import resolve_dtype
from .schemes import Initializer, calculate_gain, get_initializer
from .schemes.registry import SCHEMES

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
    "init_module",
    "InitReport",
]


# ---- in-place functions ------------------------------------------------------------------------


def _stream_seed(seed, name, generator) -> Callable[[], int]:
    """The stream seed of an in-place call, as a function ``_fill`` calls only when the tensor
    gets values (torch draws nothing for meta and zero-element tensors either).

    Named calls (``seed=`` or ``name=`` given) are pure: ``seed``, else the generator's initial
    seed, else 0. An unnamed call is torch's kind of call: its seed is one draw from
    ``generator`` (default: torch's default CPU generator, whatever the tensor's device, so that
    a CPU and a CUDA tensor get the same values), which advances it as torch's own
    ``nn.init`` would.
    """

    def resolve() -> int:
        if seed is not None:
            return seed
        if name is not None:
            return 0 if generator is None else generator.initial_seed()
        device = "cpu" if generator is None else generator.device
        return int(torch.randint(0, 2**63 - 1, (), generator=generator, dtype=torch.int64, device=device))

    return resolve


def _fill(tensor, fn, *args, seed=0, name=None, index=None, **kwargs):
    """Fill ``tensor`` (or its block ``index``) in place with ``fn(tensor.shape, *args, ...)``;
    return the tensor. ``seed`` is an int or a function returning it (see ``_stream_seed``).

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
        if _is_dtensor(tensor):
            _fill_shard(tensor, fn, args, kwargs, seed=seed, name=name, dtype=dtype, index=index)
            # the writes bumped the local shard's version counter; autograd checks the DTensor's
            torch.autograd.graph.increment_version(tensor)
        else:
            out = tensor.detach() if index is None else tensor.detach()[index]
            fn(tuple(tensor.shape), *args, seed=seed, name=name, dtype=dtype, index=index, out=out, **kwargs)
    return tensor


# ---- DTensors ----------------------------------------------------------------------------------
#
# torch.distributed.tensor is never imported here: a DTensor can only exist once its module is
# loaded, so looking it up in sys.modules keeps `import fastinit.torch` and every plain-tensor
# fill free of the distributed stack.


def _is_dtensor(tensor) -> bool:
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


def uniform_(tensor, a=0.0, b=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.uniform_``: U(a, b) in place.

    >>> import torch, fastinit.torch
    >>> t = fastinit.torch.uniform_(torch.empty(3, 4), -1.0, 1.0, seed=0, name="w")
    >>> bool(((t >= -1) & (t < 1)).all())
    True
    """
    return _fill(tensor, samplers.uniform, a, b, seed=_stream_seed(seed, name, generator), name=name)


def normal_(tensor, mean=0.0, std=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.normal_``: N(mean, std**2) in place.

    >>> import torch, fastinit, fastinit.torch
    >>> t = fastinit.torch.normal_(torch.empty(3, 4), 0.0, 0.02, seed=1, name="w")
    >>> t.numpy().tobytes() == fastinit.normal((3, 4), 0.0, 0.02, seed=1, name="w").tobytes()
    True
    """
    return _fill(tensor, samplers.normal, mean, std, seed=_stream_seed(seed, name, generator), name=name)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.trunc_normal_``: N(mean, std**2) truncated to [a, b] (absolute bounds),
    exact even where torch's is not (tiny std, bounds far in a tail).

    >>> import torch, fastinit.torch
    >>> t = fastinit.torch.trunc_normal_(torch.empty(1000), 0.0, 0.002, -2.0, 2.0, seed=0)
    >>> round(float(t.std()), 4)
    0.002
    """
    return _fill(
        tensor,
        samplers.truncated_normal,
        mean,
        std,
        a,
        b,
        seed=_stream_seed(seed, name, generator),
        name=name,
    )


def constant_(tensor, val):
    """``torch.nn.init.constant_``.

    >>> import torch, fastinit.torch
    >>> fastinit.torch.constant_(torch.empty(2), 0.5)
    tensor([0.5000, 0.5000])
    """
    return _fill(tensor, schemes.constant, val)


def ones_(tensor):
    """``torch.nn.init.ones_``.

    >>> import torch, fastinit.torch
    >>> fastinit.torch.ones_(torch.empty(2))
    tensor([1., 1.])
    """
    return _fill(tensor, schemes.constant, 1.0)


def zeros_(tensor):
    """``torch.nn.init.zeros_``.

    >>> import torch, fastinit.torch
    >>> fastinit.torch.zeros_(torch.empty(2))
    tensor([0., 0.])
    """
    return _fill(tensor, schemes.constant, 0.0)


def eye_(tensor):
    """``torch.nn.init.eye_`` (2-D).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.eye_(torch.empty(2, 2))
    tensor([[1., 0.],
            [0., 1.]])
    """
    return _fill(tensor, schemes.eye)


def dirac_(tensor, groups=1):
    """``torch.nn.init.dirac_`` (3-, 4- or 5-D).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.dirac_(torch.empty(2, 2, 3))[:, :, 1]
    tensor([[1., 0.],
            [0., 1.]])
    """
    return _fill(tensor, schemes.dirac, groups)


def xavier_uniform_(tensor, gain=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.xavier_uniform_``: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.xavier_uniform_(torch.empty(3, 5), seed=0).shape
    torch.Size([3, 5])
    """
    return _fill(tensor, schemes.xavier_uniform, gain, seed=_stream_seed(seed, name, generator), name=name)


def xavier_normal_(tensor, gain=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.xavier_normal_``: N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out)).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.xavier_normal_(torch.empty(3, 5), seed=0).shape
    torch.Size([3, 5])
    """
    return _fill(tensor, schemes.xavier_normal, gain, seed=_stream_seed(seed, name, generator), name=name)


def _kaiming(tensor, scheme, a, mode, nonlinearity, generator, seed, name):
    if isinstance(tensor, torch.Tensor) and 0 in tensor.shape:  # as torch
        # stacklevel 3: the warning points at the user's kaiming_*_ call
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return tensor
    return _fill(tensor, scheme, a, mode, nonlinearity, seed=_stream_seed(seed, name, generator), name=name)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, seed=None,
                     name=None):  # fmt: skip
    """``torch.nn.init.kaiming_uniform_``: U(-b, b), b = sqrt(3) * gain / sqrt(fan).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.kaiming_uniform_(torch.empty(3, 5), mode="fan_in", nonlinearity="relu").shape
    torch.Size([3, 5])
    """
    return _kaiming(tensor, schemes.kaiming_uniform, a, mode, nonlinearity, generator, seed, name)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, seed=None,
                    name=None):  # fmt: skip
    """``torch.nn.init.kaiming_normal_``: N(0, std**2), std = gain / sqrt(fan).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.kaiming_normal_(torch.empty(3, 5), mode="fan_out", nonlinearity="relu").shape
    torch.Size([3, 5])
    """
    return _kaiming(tensor, schemes.kaiming_normal, a, mode, nonlinearity, generator, seed, name)


def orthogonal_(tensor, gain=1, generator=None, *, seed=None, name=None):
    """``torch.nn.init.orthogonal_``: a Haar-distributed (semi-)orthogonal matrix times gain.

    The QR runs in torch (``fastinit.orthogonal(..., qr="torch")``), with the LAPACK torch
    ships (MKL on x86), so Q matches ``fastinit.orthogonal(shape, qr="torch")``.

    >>> import torch, fastinit.torch
    >>> q = fastinit.torch.orthogonal_(torch.empty(4, 4), seed=0)
    >>> bool(torch.allclose(q @ q.T, torch.eye(4), atol=1e-5))
    True
    """
    return _fill(
        tensor, schemes.orthogonal, gain, qr="torch", seed=_stream_seed(seed, name, generator), name=name
    )


def sparse_(tensor, sparsity, std=0.01, generator=None, *, seed=None, name=None):
    """``torch.nn.init.sparse_``: N(0, std**2) with ceil(sparsity * rows) zeros per column, the
    zero pattern taken from the same stream (torch's comes from ``randperm``).

    >>> import torch, fastinit.torch
    >>> t = fastinit.torch.sparse_(torch.empty(10, 3), 0.2, seed=0)
    >>> (t == 0).sum(dim=0).tolist()
    [2, 2, 2]
    """
    return _fill(tensor, schemes.sparse, sparsity, std, seed=_stream_seed(seed, name, generator), name=name)


def _deprecated(function):
    """The alias torch still keeps for ``function`` (``nn.init.normal`` for ``normal_``), with
    torch's FutureWarning."""
    new = function.__name__
    old = new[:-1]

    @functools.wraps(function)
    def alias(*args, **kwargs):
        warnings.warn(
            f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new}`.", FutureWarning, stacklevel=2
        )
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = f"Deprecated alias of ``{new}`` (torch keeps ``nn.init.{old}``, with a FutureWarning)."
    return alias


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)


# ---- whole models ------------------------------------------------------------------------------


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
    init = _as_initializer(init)
    value = init.constant_value if isinstance(init, Initializer) else None
    constant = value is not None
    if tensor.dtype.is_floating_point and not (constant and _exact(value, tensor.dtype)):
        return _fill(tensor, init, seed=seed, name=name, index=index)
    if not constant:  # integer buffers: counters, indices
        raise TypeError(f"tensor has dtype {tensor.dtype}: only constants fill it, not {init.scheme}")
    # a constant the dtype holds exactly: torch's fill_ writes the same bytes without a kernel
    # launch (a model's many small norm weights and biases)
    with torch.no_grad():
        for _, view in _local_views(tensor, index):
            view.fill_(value)
    return tensor


def _exact(value, dtype) -> bool:
    """Whether the number ``value`` is exactly a value of the floating ``dtype`` (so filling
    it involves no rounding)."""
    try:
        return bool(torch.tensor(value, dtype=torch.float64).to(dtype).double().item() == value)
    except (TypeError, RuntimeError, OverflowError):
        return False


def _local_views(tensor, index):
    """(index into ``full[index]``, local view) pairs of the block ``index`` this rank holds."""
    if not _is_dtensor(tensor):
        yield (), (tensor.detach() if index is None else tensor.detach()[index])
        return
    indices = _shard_indices(tensor)
    local = tensor.to_local().detach()
    if indices is None or local.is_meta:
        return
    for _, local_index, value_index in _blocks(indices, tuple(tensor.shape), index):
        yield value_index, local[local_index]


def _copy_values(tensor, value, index):
    with torch.no_grad():
        for value_index, view in _local_views(tensor, index):
            view.copy_(value[value_index] if value_index else value)


@dataclass
class InitReport:
    """What ``init_module`` did: the initializer (or rule) used for every parameter and buffer.

    ``params`` maps qualified names to a description (the initializer's config, or the rule's
    repr); ``notes`` adds the writes to parts of a tensor (an Embedding's padding row zeroed);
    ``buffers`` the buffers reset (BatchNorm running statistics: their value);
    ``untouched_buffers`` those no init call writes, left as they were; ``plan`` the traced
    plan itself (``fastinit.trace.InitPlan``).
    """

    params: dict[str, object] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    buffers: dict[str, object] = field(default_factory=dict)
    untouched_buffers: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    plan: object = None

    def __len__(self):
        return len(self.params)


def _as_initializer(rule) -> Callable:
    """A rule value as something called like a scheme: (shape, *, seed, name, out)."""
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


def _describe(init) -> object:
    """An initializer's config; a registered scheme function by its name; anything else by repr."""
    if isinstance(init, Initializer):
        return init.to_config()
    for scheme, fn in SCHEMES.items():
        if init is fn:
            return {"scheme": scheme}
    return repr(init)


def _match_rules(qualname: str, local: str, owner, rules) -> Callable | None:
    """The rule for a parameter: the first matching name pattern, else the first matching type."""
    for key in rules:
        if not isinstance(key, (str, type)):
            raise TypeError(f"a rules key must be a name pattern (str) or a module type, got {key!r}")
    for key, value in rules.items():
        if isinstance(key, str) and fnmatch.fnmatchcase(qualname, key):
            return _as_initializer(value)
    for key, value in rules.items():
        if isinstance(key, type) and isinstance(owner, key):
            if isinstance(value, Mapping) and "scheme" not in value:
                for pattern, init in value.items():
                    if fnmatch.fnmatchcase(local, pattern):
                        return _as_initializer(init)
            elif local == "weight":
                return _as_initializer(value)
    return None


# Wrappers that hold the real model under one attribute; their name component is dropped, so a
# parameter keeps its stream (and its rules, and its report entry) when the model is compiled,
# checkpoint-wrapped, or wrapped by DDP / FSDP1. Matched by class name so that nothing is
# imported: (class name, attribute).
_WRAPPERS = (
    ("OptimizedModule", "_orig_mod"),  # torch.compile
    ("ActivationWrapper", "_checkpoint_wrapped_module"),  # checkpoint_wrapper, offload_wrapper
    ("FullyShardedDataParallel", "_fsdp_wrapped_module"),  # FSDP1
    ("DistributedDataParallel", "module"),
)


def canonical_names(modules: Iterable[tuple[str, nn.Module]]) -> Callable[[str], str]:
    """A function from a qualified name to the same name without the components of wrappers
    (torch.compile's ``_orig_mod``, FSDP, DDP: ``_WRAPPERS``), for ``modules`` the model's
    ``named_modules()``."""
    hidden = set()
    for qual, sub in modules:
        classes = {c.__name__ for c in type(sub).__mro__}
        for cls, attr in _WRAPPERS:
            if cls in classes and isinstance(getattr(sub, attr, None), nn.Module):
                hidden.add(f"{qual}.{attr}" if qual else attr)
    if not hidden:
        return lambda q: q

    def canonical(q: str) -> str:
        path, kept = "", []
        for part in q.split("."):
            path = f"{path}.{part}" if path else part
            if path not in hidden:
                kept.append(part)
        return ".".join(kept)

    return canonical


def _post_order(module, qual=""):
    for name, child in module.named_children():
        yield from _post_order(child, f"{qual}.{name}" if qual else name)
    yield qual, module


def _transformers_models(module) -> list:
    """The outermost transformers ``PreTrainedModel``s in ``module`` (none without transformers)."""
    base = getattr(sys.modules.get("transformers.modeling_utils"), "PreTrainedModel", None)
    if base is None:
        return []
    found = []

    def visit(m):
        if isinstance(m, base):
            found.append(m)
            return
        for child in m.children():
            visit(child)

    visit(module)
    return found


@contextlib.contextmanager
def _meta_shadows(module):
    """Swap every parameter and buffer for a meta tensor of its (global) shape and dtype while
    the init code is traced: nothing real is read or written, ties and HF flags are kept."""
    shadows, swaps = {}, []

    def shadow(t, parameter):
        if id(t) not in shadows:
            s = torch.empty(tuple(t.shape), dtype=t.dtype, device="meta")
            if parameter:
                s = nn.Parameter(s, requires_grad=t.requires_grad)
            if getattr(t, "_is_hf_initialized", False):
                s._is_hf_initialized = True
            shadows[id(t)] = s
        return shadows[id(t)]

    try:
        for sub in module.modules():
            for table, parameter in ((sub._parameters, True), (sub._buffers, False)):
                for name, t in list(table.items()):
                    if t is not None:
                        swaps.append((table, name, t))
                        table[name] = shadow(t, parameter)
        yield
    finally:
        for table, name, t in reversed(swaps):
            table[name] = t


def _run_init_code(module, recorder, names):
    """Run ``module``'s own init code under ``recorder``: every submodule's
    ``reset_parameters()`` (or ``_reset_parameters()``), children first as their constructors
    ran them, then each transformers model's ``_init_weights`` over its modules."""
    for qual, sub in _post_order(module):
        for method in ("reset_parameters", "_reset_parameters"):
            reset = getattr(sub, method, None)
            if callable(reset) and not any(_uninitialized(p) for p in sub.parameters(recurse=False)):
                what = f"{type(sub).__name__}.{method}() of {names(qual) or 'the model'}"
                with recorder.unit(what, sub, reset):
                    try:
                        reset()
                    except trace.TraceError:
                        raise
                    except Exception as error:
                        raise trace.TraceError(f"{what} failed while traced: {error}") from error
                break
    for model in _transformers_models(module):
        from .transformers import initialize_weights

        initialize_weights(model, recorder)


def _uninitialized(p) -> bool:
    return isinstance(p, nn.parameter.UninitializedTensorMixin)


def trace_module(module: nn.Module, *, seed: int = 0, skip=()) -> trace.InitPlan:
    """The plan of ``module``'s own init code: for every parameter and buffer, the writes that
    decide its value (``fastinit.trace.InitPlan``), from a trace of its ``reset_parameters()``
    methods and, for transformers models, their ``_init_weights``. Nothing is written.

    >>> import torch, fastinit.torch
    >>> plan = fastinit.torch.trace_module(torch.nn.Embedding(10, 4, padding_idx=0))
    >>> [(w.index, w.init) for w in plan["weight"].writes]
    [(None, Initializer('normal')), ((0, slice(0, 4, 1)), Initializer('constant', value=0))]
    """
    names = canonical_names(list(module.named_modules()))
    recorder, plan = _trace(module, seed=seed, skip=skip, names=names)
    recorder.run_again(plan, module, names=names)
    return plan


def _trace(module, *, seed, skip, names):
    """(recorder, plan): the init code traced on meta shadows; values to be found by running
    their unit again are left pending (``plan.pending``)."""
    recorder = trace.Recorder(seed)
    with _meta_shadows(module):
        with recorder, torch.no_grad():
            _run_init_code(module, recorder, names)
        plan = recorder.plan(module, names=names, skip=skip, run_again=False)
    return recorder, plan


def _fill_from_trace(module, recorder, plan, *, names, seed, prefix, rules):
    """Fill as ``plan`` says: first everything the trace saw, then the units that wrote values
    it could not see run again on the filled model (so what they read from other tensors is
    final), then the tensors they wrote."""
    waiting = {key for writes in plan.pending.values() for key, *_ in writes}
    apply_plan(
        module, {k: tp for k, tp in plan.items() if k not in waiting}, seed=seed, prefix=prefix, rules=rules
    )
    if waiting:
        recorder.run_again(plan, module, names=names)
        apply_plan(module, {k: plan[k] for k in plan if k in waiting}, seed=seed, prefix=prefix)


def apply_plan(
    module: nn.Module, plan, *, seed: int = 0, prefix: str = "", rules: Mapping | None = None
) -> None:
    """Fill ``module``'s tensors as ``plan`` says (each random write from the stream
    ``(seed, prefix + key)``), then the ``rules`` (whole tensors).

    >>> import torch, fastinit.torch
    >>> model = torch.nn.Embedding(6, 2, padding_idx=0)
    >>> fastinit.torch.apply_plan(model, fastinit.torch.trace_module(model), seed=1)
    >>> model.weight[0].tolist()
    [0.0, 0.0]
    """
    names = canonical_names(list(module.named_modules()))
    tensors = {key: t for key, t, _ in trace.named_tensors(module, names)}
    on_meta = [key for key in plan if tensors[key].is_meta]
    if on_meta:  # before anything is written
        raise ValueError(
            f"{on_meta[0]} is on the meta device: materialize with module.to_empty(device='cpu')"
        )
    for key, tp in plan.items():
        t = tensors[key]
        for write in tp.writes:
            if write.kept:
                continue
            if write.init is not None:
                fill(t, write.init, seed=seed, name=prefix + (write.stream or key), index=write.index)
            else:
                _copy_values(t, write.value.to(t.dtype), write.index)
    for key, rule in (rules or {}).items():
        fill(tensors[key], rule, seed=seed, name=prefix + key)


def init_module(module: nn.Module, *, seed: int = 0, rules: Mapping | None = None, prefix: str = "",
                unknown: str = "raise") -> InitReport:  # fmt: skip
    """Fill every parameter of ``module`` in place, the way its own init code does; return an
    ``InitReport``.

    The model's init code is traced (``trace_module``): every submodule's
    ``reset_parameters()`` / ``_reset_parameters()`` (children first, as the constructors ran
    them) and, for a transformers ``PreTrainedModel``, its ``_init_weights`` over its modules
    (parameters flagged ``_is_hf_initialized`` are left as they are). Each call of
    ``torch.nn.init`` (or ``transformers.initialization``, or ``Tensor.normal_`` / ``uniform_`` /
    ``zero_`` / ``fill_``) becomes the same distribution from fastinit: parameter ``p`` with
    qualified name ``q`` is drawn from the stream ``(seed, prefix + q)``, so the same parameter
    gets the same values in any model that contains it under the same name. Writes to part of a
    tensor (an Embedding's padding row) and values the model computes (rotary ``inv_freq``,
    Mamba's ``A_log``) are reproduced exactly. What the trace cannot reproduce raises a
    ``fastinit.trace.TraceError`` naming the tensor and the call, unless ``rules`` covers it.

    Wrapper components are left out of ``q`` (``_orig_mod`` of ``torch.compile``,
    ``_checkpoint_wrapped_module`` of activation checkpointing, ``module`` of
    DistributedDataParallel, ``_fsdp_wrapped_module`` of FSDP1), so a wrapped model gets the
    values, rules and report names of the bare one. DTensor parameters (FSDP2, tensor
    parallelism) are filled shard by shard without communication: ``full_tensor()`` of each
    equals what ``init_module`` gives the unsharded model. The torchtitan flow: build on
    ``meta``, ``parallelize_module`` / ``fully_shard``, ``to_empty(device=...)``, then
    ``init_module``. A rule given as your own function must take ``index=`` and honour it
    (fastinit's schemes do); one without it is refused. FSDP1's flattened parameters are refused
    (initialize before wrapping, or inside ``FSDP.summon_full_params(model, writeback=True)``).

    ``rules`` maps name patterns (``fnmatch`` on the qualified name, e.g. ``"*.o_proj.weight"``)
    or module types to initializers (an ``Initializer``, a scheme name, a config dict or a
    function like ``fastinit.xavier_uniform``); a type maps to one initializer for its
    ``weight`` or a dict from local parameter names to initializers. Name patterns win over
    types, types over the traced init.

    Parameters that no init call writes and no rule covers (a custom module without
    ``reset_parameters``) are collected first, and ``unknown="raise"`` (default) raises a
    ValueError naming them before anything is written; ``"skip"`` leaves them as they are and
    lists them in the report.

    >>> import torch, fastinit, fastinit.torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> report = fastinit.torch.init_module(
    ...     model, seed=0, rules={"0.weight": fastinit.xavier_uniform, "2.weight": {"scheme": "constant", "value": 42}})
    >>> model[2].weight[0, 0].item(), report.params["0.bias"]["scheme"]
    (42.0, 'uniform')
    """
    if not isinstance(module, nn.Module):
        hint = " (fill tensors with fastinit.torch.uniform_ etc.)" if isinstance(module, torch.Tensor) else ""
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}{hint}")
    if rules is not None and not isinstance(rules, Mapping):
        raise TypeError(f"rules must be a mapping {{pattern: initializer}}, got {type(rules).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    if unknown not in ("raise", "skip"):
        raise ValueError(f"unknown={unknown!r} must be 'raise' or 'skip'")
    rules = dict(rules or {})
    modules = list(module.named_modules())
    canonical = canonical_names(modules)
    params = {canonical(q): p for q, p in module.named_parameters()}
    flat = [q for q, p in params.items() if getattr(p, "_is_flat_param", False)]  # FSDP1's marker
    if flat:
        raise ValueError(
            f"init_module: {', '.join(flat)} {'is an FSDP1 flat parameter' if len(flat) == 1 else 'are FSDP1 flat parameters'}"
            " (the model is wrapped in FullyShardedDataParallel): initialize the model before wrapping it, "
            "inside FSDP.summon_full_params(model, writeback=True), or shard it with FSDP2's fully_shard"
        )
    for q, p in params.items():
        if _uninitialized(p):
            raise ValueError(
                f"parameter {q} is uninitialized (a lazy module): run one forward pass to give it a shape first"
            )
        if p.is_meta:
            raise ValueError(
                f"parameter {q} is on the meta device: materialize with module.to_empty(device='cpu')"
            )
    for model in _transformers_models(module):
        model.tie_weights()  # as post_init does (module.to_empty unties them)
    params = {canonical(q): p for q, p in module.named_parameters()}
    ruled = _rules_by_key(module, canonical, rules)
    loaded = {q for q, p in params.items() if getattr(p, "_is_hf_initialized", False)}
    recorder, plan = _trace(module, seed=seed, skip=set(ruled) | loaded, names=canonical)
    report = InitReport(plan=plan)
    report.unknown = [q for q in plan.unwritten if q in params]
    if report.unknown and unknown == "raise":
        shown = ", ".join(report.unknown[:20]) + (" ..." if len(report.unknown) > 20 else "")
        raise ValueError(
            f"init_module: no init code or rule writes {len(report.unknown)} parameter(s): {shown}. "
            "Pass rules={'name.pattern': initializer} (or unknown='skip' to leave them as they are)"
        )
    _fill_from_trace(module, recorder, plan, names=canonical, seed=seed, prefix=prefix, rules=ruled)
    _report(report, plan, ruled, params)
    return report


def _rules_by_key(module, canonical, rules) -> dict[str, Callable]:
    owners = {}
    for sub in module.modules():
        for local, p in sub.named_parameters(recurse=False):
            owners.setdefault(id(p), (sub, local))
    ruled = {}
    names = [canonical(q) for q, _ in module.named_parameters()]
    for q, p in module.named_parameters():
        owner, local = owners[id(p)]
        rule = _match_rules(canonical(q), local, owner, rules)
        if rule is not None:
            ruled[canonical(q)] = rule
    for key in rules:  # a typo must not be ignored silently
        if isinstance(key, str) and not any(fnmatch.fnmatchcase(n, key) for n in names):
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise ValueError(f"rules: {key!r} matches no parameter (the parameters are named like {shown})")
        if isinstance(key, type) and not any(isinstance(m, key) for m in module.modules()):
            raise ValueError(f"rules: {key.__name__} matches no module of the model")
    return ruled


def _report(report: InitReport, plan, ruled, params):
    for key, tp in plan.items():
        base = tp.writes[0] if tp.writes and tp.writes[0].index is None else None
        described = (base.init.to_config() if base is not None and base.init is not None
                     else tp.describe())  # fmt: skip
        overlays = tp.writes[1:] if base is not None else []
        notes = [_note(w) for w in overlays]
        if notes:
            report.notes[key] = "; ".join(notes)
        if tp.buffer:
            value = tp.init.constant_value if tp.init is not None else None
            report.buffers[key] = value if value is not None else described
        elif key in params:
            report.params[key] = described
    for key, rule in ruled.items():
        report.params[key] = _describe(rule)
    report.untouched_buffers = [q for q in plan.unwritten if q not in params]


def _note(write) -> str:
    what = f"= {write.init!r}" if write.init is not None else "= values"
    zero = write.init is not None and write.init.constant_value == 0
    if (
        write.index
        and isinstance(write.index[0], int)
        and all(isinstance(i, slice) and i.start == 0 and i.step == 1 for i in write.index[1:])
    ):
        return f"row {write.index[0]} {'zeroed' if zero else what} by {write.call}"
    return f"[{write.index}] {what} by {write.call}"


def build(factory, *args, seed: int = 0, device="cpu", dtype=None, rules: Mapping | None = None, **kwargs):
    """``factory(*args, **kwargs)`` built with its constructor's own init code traced, on
    ``device`` (and default dtype ``dtype``), every tensor filled by fastinit; returns the
    module.

    The constructor runs as written, on real memory, with the init calls recorded instead of
    executed (torchvision-style loops at the end of ``__init__``, ``trunc_normal_`` after
    ``reset_parameters``, a transformers model's ``post_init``): each random tensor is then
    drawn from fastinit's stream ``(seed, state_dict key)`` with the distribution its last init
    call asked for, and what the constructor computed (``torch.arange`` buffers, ``torch.ones``)
    is kept. A tensor drawn by a random op fastinit cannot map (``torch.randn`` in a
    constructor) is a ``fastinit.trace.TraceError`` naming it; ``rules`` (as for
    ``init_module``) gives it an initializer.

    >>> import torch, fastinit, fastinit.torch
    >>> net = fastinit.torch.build(torch.nn.Linear, 4, 3, seed=0)
    >>> net.weight.detach().numpy().tobytes() == fastinit.kaiming_uniform(
    ...     (3, 4), a=5 ** 0.5, seed=0, name="weight").tobytes()
    True
    """
    if not callable(factory):
        raise TypeError(f"factory must be callable (a module class or a function), got {factory!r}")
    if rules is not None and not isinstance(rules, Mapping):
        raise TypeError(f"rules must be a mapping {{pattern: initializer}}, got {type(rules).__name__}")
    if torch.device(device).type == "meta":
        raise ValueError(
            "build fills real memory, not device='meta': build on meta with `with torch.device('meta'): "
            "model = Net()`, then model.to_empty(device=...) and fastinit.torch.init_module(model)"
        )
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None) if isinstance(getattr(torch, dtype, None), torch.dtype) else dtype
        if isinstance(dtype, str):
            raise TypeError(f"dtype={dtype!r} is not a torch dtype (e.g. torch.bfloat16 or 'bfloat16')")
    recorder = trace.Recorder(seed)
    what = f"{getattr(factory, '__qualname__', repr(factory))}(...)"
    with contextlib.ExitStack() as stack:
        stack.enter_context(trace.exclusive())
        stack.enter_context(torch.device(device))
        if dtype is not None:
            stack.enter_context(_default_dtype(dtype))
        stack.enter_context(_transformers_units(recorder))
        stack.enter_context(recorder)
        with recorder.unit(what, None, None):
            module = factory(*args, **kwargs)
    if not isinstance(module, nn.Module):
        raise TypeError(f"factory returned {type(module).__name__}, not a torch.nn.Module")
    return fill_traced(module, recorder, seed=seed, rules=rules)


def fill_traced(module, recorder, *, seed: int = 0, rules: Mapping | None = None, prefix: str = ""):
    """Fill ``module`` built under ``recorder`` (a ``fastinit.trace.Recorder``) as its traced
    init code says (``rules`` first); return it."""
    names = canonical_names(list(module.named_modules()))
    ruled = _rules_by_key(module, names, dict(rules or {}))
    plan = recorder.plan(module, names=names, skip=set(ruled), run_again=False)
    unwritten = [q for q in plan.unwritten if q not in ruled]
    params = {names(q) for q, _ in module.named_parameters()}
    missing = [q for q in unwritten if q in params]
    if missing:
        raise trace.TraceError(
            f"no init code writes {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}: "
            f"give it an initializer with rules={{{missing[0]!r}: ...}}"
        )
    _fill_from_trace(module, recorder, plan, names=names, seed=seed, prefix=prefix, rules=ruled)
    module.fastinit_plan = plan
    return module


@contextlib.contextmanager
def _default_dtype(dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def _transformers_units(recorder):
    """While a transformers model is built, mark each of its ``_init_weights(module)`` calls
    as a unit of the trace (no-op without transformers)."""
    if "transformers.modeling_utils" not in sys.modules:
        yield
        return
    from .transformers import init_weights_units

    with init_weights_units(recorder):
        yield
