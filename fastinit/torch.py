"""torch adapter: ``torch.nn.init`` with fastinit's streams, and whole-model initialization.

Imported on demand (``import fastinit.torch``), never by ``import fastinit``.

In-place functions with torch's signatures and defaults plus keyword ``seed`` and ``name``:
``uniform_, normal_, trunc_normal_, constant_, ones_, zeros_, eye_, dirac_, xavier_uniform_,
xavier_normal_, kaiming_uniform_, kaiming_normal_, orthogonal_, sparse_``. Each fills the
tensor with exactly what the functional API returns, e.g.
``fastinit.torch.normal_(t, 0.0, 0.02, seed=1, name="w")`` writes
``fastinit.normal(t.shape, 0.0, 0.02, seed=1, name="w")``. ``seed`` defaults to 0, or to
``generator.initial_seed()`` when a torch generator is passed.

``init_module(module, seed=0)`` fills every parameter of a model in place, each from the stream
of its qualified name, with the distribution the layer's own ``reset_parameters`` gives (or a
rule of yours). Works on models built on the ``meta`` device and materialized with
``module.to_empty(device="cpu")`` or ``device="cuda"``.

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

import fnmatch
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from . import api
from .dtypes import resolve_dtype
from .schemes import (
    Initializer,
    calculate_gain,
    constant,
    dirac,
    eye,
    get_initializer,
    kaiming_normal,
    kaiming_uniform,
    orthogonal,
    sparse,
    xavier_normal,
    xavier_uniform,
)
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


def _seed(seed, generator) -> int:
    if seed is not None:
        return seed
    if generator is not None:
        return generator.initial_seed()
    return 0


def _fill(tensor, fn, *args, seed=0, name=None, **kwargs):
    """Fill ``tensor`` in place with ``fn(tensor.shape, *args, ...)``; return the tensor.

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
    with torch.no_grad():
        if _is_dtensor(tensor):
            _fill_shard(tensor, fn, args, kwargs, seed=seed, name=name, dtype=dtype)
            # the writes bumped the local shard's version counter; autograd checks the DTensor's
            torch.autograd.graph.increment_version(tensor)
        else:
            fn(tuple(tensor.shape), *args, seed=seed, name=name, dtype=dtype, out=tensor.detach(), **kwargs)
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


def _fill_shard(tensor, fn, args, kwargs, *, seed, name, dtype):
    """Write this rank's slice of ``fn(tensor.shape, ...)`` into ``tensor.to_local()``.

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
    if all(isinstance(h, range) and len(h) == n for h, n in zip(indices, shape, strict=True)):  # a replica
        fn(shape, *args, seed=seed, name=name, dtype=dtype, out=out, **kwargs)
        return
    blocks = [()]
    for held in indices:
        blocks = [b + (r,) for b in blocks for r in _runs(held)]
    for block in blocks:
        index = tuple(g for g, _ in block)
        view = out[tuple(loc for _, loc in block)]
        fn(shape, *args, seed=seed, name=name, dtype=dtype, index=index, out=view, **kwargs)


def _local_row(tensor, row: int):
    """The local view of global row ``row`` of a tensor or DTensor; None if this rank has none."""
    if not _is_dtensor(tensor):
        return tensor[row]
    indices = _shard_indices(tensor)
    local = tensor.to_local()
    if indices is None or local.is_meta or row not in indices[0]:
        return None
    return local[indices[0].index(row)]


def uniform_(tensor, a=0.0, b=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.uniform_``: U(a, b) in place.

    >>> import torch, fastinit.torch
    >>> t = fastinit.torch.uniform_(torch.empty(3, 4), -1.0, 1.0, seed=0, name="w")
    >>> bool(((t >= -1) & (t < 1)).all())
    True
    """
    return _fill(tensor, api.uniform, a, b, seed=_seed(seed, generator), name=name)


def normal_(tensor, mean=0.0, std=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.normal_``: N(mean, std**2) in place.

    >>> import torch, fastinit, fastinit.torch
    >>> t = fastinit.torch.normal_(torch.empty(3, 4), 0.0, 0.02, seed=1, name="w")
    >>> t.numpy().tobytes() == fastinit.normal((3, 4), 0.0, 0.02, seed=1, name="w").tobytes()
    True
    """
    return _fill(tensor, api.normal, mean, std, seed=_seed(seed, generator), name=name)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.trunc_normal_``: N(mean, std**2) truncated to [a, b] (absolute bounds),
    exact even where torch's is not (tiny std, bounds far in a tail).

    >>> import torch, fastinit.torch
    >>> t = fastinit.torch.trunc_normal_(torch.empty(1000), 0.0, 0.002, -2.0, 2.0, seed=0)
    >>> round(float(t.std()), 4)
    0.002
    """
    return _fill(tensor, api.truncated_normal, mean, std, a, b, seed=_seed(seed, generator), name=name)


def constant_(tensor, val):
    """``torch.nn.init.constant_``.

    >>> import torch, fastinit.torch
    >>> fastinit.torch.constant_(torch.empty(2), 0.5)
    tensor([0.5000, 0.5000])
    """
    return _fill(tensor, constant, val)


def ones_(tensor):
    """``torch.nn.init.ones_``.

    >>> import torch, fastinit.torch
    >>> fastinit.torch.ones_(torch.empty(2))
    tensor([1., 1.])
    """
    return _fill(tensor, constant, 1.0)


def zeros_(tensor):
    """``torch.nn.init.zeros_``.

    >>> import torch, fastinit.torch
    >>> fastinit.torch.zeros_(torch.empty(2))
    tensor([0., 0.])
    """
    return _fill(tensor, constant, 0.0)


def eye_(tensor):
    """``torch.nn.init.eye_`` (2-D).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.eye_(torch.empty(2, 2))
    tensor([[1., 0.],
            [0., 1.]])
    """
    return _fill(tensor, eye)


def dirac_(tensor, groups=1):
    """``torch.nn.init.dirac_`` (3-, 4- or 5-D).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.dirac_(torch.empty(2, 2, 3))[:, :, 1]
    tensor([[1., 0.],
            [0., 1.]])
    """
    return _fill(tensor, dirac, groups)


def xavier_uniform_(tensor, gain=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.xavier_uniform_``: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.xavier_uniform_(torch.empty(3, 5), seed=0).shape
    torch.Size([3, 5])
    """
    return _fill(tensor, xavier_uniform, gain, seed=_seed(seed, generator), name=name)


def xavier_normal_(tensor, gain=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.xavier_normal_``: N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out)).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.xavier_normal_(torch.empty(3, 5), seed=0).shape
    torch.Size([3, 5])
    """
    return _fill(tensor, xavier_normal, gain, seed=_seed(seed, generator), name=name)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, seed=None,
                     name=None):  # fmt: skip
    """``torch.nn.init.kaiming_uniform_``: U(-b, b), b = sqrt(3) * gain / sqrt(fan).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.kaiming_uniform_(torch.empty(3, 5), mode="fan_in", nonlinearity="relu").shape
    torch.Size([3, 5])
    """
    return _fill(tensor, kaiming_uniform, a, mode, nonlinearity, seed=_seed(seed, generator), name=name)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, seed=None,
                    name=None):  # fmt: skip
    """``torch.nn.init.kaiming_normal_``: N(0, std**2), std = gain / sqrt(fan).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.kaiming_normal_(torch.empty(3, 5), mode="fan_out", nonlinearity="relu").shape
    torch.Size([3, 5])
    """
    return _fill(tensor, kaiming_normal, a, mode, nonlinearity, seed=_seed(seed, generator), name=name)


def orthogonal_(tensor, gain=1, generator=None, *, seed=None, name=None):
    """``torch.nn.init.orthogonal_``: a Haar-distributed (semi-)orthogonal matrix times gain.

    The QR runs in torch (``fastinit.orthogonal(..., qr="torch")``), with the LAPACK torch
    ships (MKL on x86), so Q matches ``fastinit.orthogonal(shape, qr="torch")``.

    >>> import torch, fastinit.torch
    >>> q = fastinit.torch.orthogonal_(torch.empty(4, 4), seed=0)
    >>> bool(torch.allclose(q @ q.T, torch.eye(4), atol=1e-5))
    True
    """
    return _fill(tensor, orthogonal, gain, qr="torch", seed=_seed(seed, generator), name=name)


def sparse_(tensor, sparsity, std=0.01, generator=None, *, seed=None, name=None):
    """``torch.nn.init.sparse_``: N(0, std**2) with ceil(sparsity * rows) zeros per column, the
    zero pattern taken from the same stream (torch's comes from ``randperm``).

    >>> import torch, fastinit.torch
    >>> t = fastinit.torch.sparse_(torch.empty(10, 3), 0.2, seed=0)
    >>> (t == 0).sum(dim=0).tolist()
    [2, 2, 2]
    """
    return _fill(tensor, sparse, sparsity, std, seed=_seed(seed, generator), name=name)


# ---- whole models ------------------------------------------------------------------------------


@dataclass
class InitReport:
    """What ``init_module`` did: the initializer (or rule) used for every parameter and buffer.

    ``params`` maps qualified names to a description (the initializer's config, or the rule's
    repr); ``notes`` adds what was done after the fill (an Embedding's padding row zeroed);
    ``buffers`` lists the buffers reset (BatchNorm running statistics); ``untouched_buffers``
    those fastinit does not know, left as they were.
    """

    params: dict[str, object] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    buffers: dict[str, object] = field(default_factory=dict)
    untouched_buffers: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def __len__(self):
        return len(self.params)


def _uniform_bound(bound: float) -> Initializer:
    return get_initializer("uniform", low=-bound, high=bound)


def _fan_in(weight) -> int:
    return api.check_shape(weight.shape)[1] * math.prod(weight.shape[2:]) if weight.dim() >= 2 else 0


def _bias_bound(module) -> float:
    fan_in = _fan_in(module.weight)
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0


_KAIMING_SQRT5 = get_initializer("kaiming_uniform", a=math.sqrt(5))
_ONES = get_initializer("ones")
_ZEROS = get_initializer("zeros")
_STD_NORMAL = get_initializer("normal")
_XAVIER_UNIFORM = get_initializer("xavier_uniform")
_XAVIER_NORMAL = get_initializer("xavier_normal")


def _defaults(module) -> dict[str, Initializer] | None:
    """The initializers ``module.reset_parameters()`` uses for its own (direct) parameters,
    keyed by local name; None for a module type fastinit does not know."""
    if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
        return {"weight": _KAIMING_SQRT5, "bias": _uniform_bound(_bias_bound(module))}
    if isinstance(module, nn.Bilinear):
        bound = 1 / math.sqrt(module.weight.size(1))
        return {"weight": _uniform_bound(bound), "bias": _uniform_bound(bound)}
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return {"weight": _STD_NORMAL}
    norms = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)
    if isinstance(module, norms) or isinstance(module, getattr(nn, "RMSNorm", ())):
        return {"weight": _ONES, "bias": _ZEROS}
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0
        return {local: _uniform_bound(bound) for local, _ in module.named_parameters(recurse=False)}
    if isinstance(module, nn.MultiheadAttention):
        return {
            "in_proj_weight": _XAVIER_UNIFORM,
            "q_proj_weight": _XAVIER_UNIFORM,
            "k_proj_weight": _XAVIER_UNIFORM,
            "v_proj_weight": _XAVIER_UNIFORM,
            "in_proj_bias": _ZEROS,
            "bias_k": _XAVIER_NORMAL,
            "bias_v": _XAVIER_NORMAL,
        }
    if isinstance(module, nn.PReLU):
        return {"weight": get_initializer("constant", value=float(module.init))}
    if not any(True for _ in module.parameters(recurse=False)):
        return {}
    return None


def _subtree_overrides(
    module, qualname: str, params: dict[str, torch.nn.Parameter]
) -> dict[str, Initializer]:
    """Initializers a module's reset sets on parameters of its children (it runs after theirs)."""
    prefix = f"{qualname}." if qualname else ""
    if isinstance(module, nn.MultiheadAttention) and module.out_proj.bias is not None:
        return {f"{prefix}out_proj.bias": _ZEROS}
    if isinstance(module, nn.Transformer):  # Transformer._reset_parameters: xavier on every matrix
        return {
            name: _XAVIER_UNIFORM for name, p in params.items() if name.startswith(prefix) and p.dim() > 1
        }
    return {}


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


_BUFFER_DEFAULTS = {"running_mean": 0.0, "running_var": 1.0, "num_batches_tracked": 0}


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


def _canonical_names(modules) -> Callable[[str], str]:
    """qualified name -> the name without wrapper components (see ``_WRAPPERS``)."""
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


def init_module(module: nn.Module, *, seed: int = 0, rules: Mapping | None = None, prefix: str = "",
                unknown: str = "raise") -> InitReport:  # fmt: skip
    """Fill every parameter of ``module`` in place; return an ``InitReport``.

    Each parameter ``p`` with qualified name ``q`` (as in ``module.named_parameters()``) is drawn
    from the stream ``(seed, prefix + q)``, so the same parameter gets the same values in any
    model that contains it under the same name, whatever else the model holds. Wrapper
    components are left out of ``q`` (``_orig_mod`` of ``torch.compile``,
    ``_checkpoint_wrapped_module`` of activation checkpointing, ``module`` of
    DistributedDataParallel, ``_fsdp_wrapped_module`` of FSDP1), so a wrapped model gets the
    values, rules and report names of the bare one. FSDP2's ``fully_shard`` and tensor
    parallelism's ``parallelize_module`` keep the names as they are.

    DTensor parameters (FSDP2, tensor parallelism) are filled shard by shard without
    communication: ``full_tensor()`` of each equals what ``init_module`` gives the unsharded
    model. The torchtitan flow: build on ``meta``, ``parallelize_module`` / ``fully_shard``,
    ``to_empty(device=...)``, then ``init_module``. A rule given as your own function must take
    ``index=`` and honour it (fastinit's schemes do); one without it is refused. FSDP1's
    flattened parameters are refused (initialize before wrapping, or inside
    ``FSDP.summon_full_params(model, writeback=True)``).

    Defaults follow each standard layer's own ``reset_parameters``: Linear / Conv* /
    ConvTranspose* (Kaiming uniform with a = sqrt(5), bias U(+-1/sqrt(fan_in))), Bilinear,
    Embedding (N(0, 1), padding row zeroed), LayerNorm / GroupNorm / RMSNorm / BatchNorm /
    InstanceNorm (ones, zeros; running statistics reset), MultiheadAttention (Xavier uniform,
    zero biases, out_proj.bias zero), RNN / LSTM / GRU and their cells (U(+-1/sqrt(hidden))),
    PReLU, and nn.Transformer (Xavier uniform on every matrix, as its constructor does).

    ``rules`` maps name patterns (``fnmatch`` on the qualified name, e.g. ``"*.o_proj.weight"``)
    or module types to initializers (an ``Initializer``, a scheme name, a config dict or a
    function like ``fastinit.xavier_uniform``); a type maps to one initializer for its
    ``weight`` or a dict from local parameter names to initializers. Name patterns win over
    types, types over defaults.

    Parameters that no default or rule covers are collected first, and ``unknown="raise"``
    (default) raises a ValueError naming them before anything is written; ``"skip"`` leaves
    them as they are and lists them in the report.

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
    canonical = _canonical_names(modules)
    params = {canonical(q): p for q, p in module.named_parameters()}
    flat = [q for q, p in params.items() if getattr(p, "_is_flat_param", False)]  # FSDP1's marker
    if flat:
        raise ValueError(
            f"init_module: {', '.join(flat)} {'is an FSDP1 flat parameter' if len(flat) == 1 else 'are FSDP1 flat parameters'}"
            " (the model is wrapped in FullyShardedDataParallel): initialize the model before wrapping it, "
            "inside FSDP.summon_full_params(model, writeback=True), or shard it with FSDP2's fully_shard"
        )
    modules = [(canonical(q), sub) for q, sub in modules]
    owners: dict[int, tuple[str, nn.Module, str]] = {}
    for qual, sub in modules:
        for local, p in sub.named_parameters(recurse=False):
            owners.setdefault(id(p), (qual, sub, local))
    plan: dict[str, Callable] = {}
    for q, p in params.items():
        _, owner, local = owners[id(p)]
        defaults = _defaults(owner)
        if defaults is not None and local in defaults:
            plan[q] = defaults[local]
    for qual, sub in sorted(modules, key=lambda m: -m[0].count(".") if m[0] else 1):
        plan.update({q: i for q, i in _subtree_overrides(sub, qual, params).items() if q in params})
    report = InitReport()
    for q, p in params.items():
        _, owner, local = owners[id(p)]
        rule = _match_rules(q, local, owner, rules)
        if rule is not None:
            plan[q] = rule
        if q not in plan:
            report.unknown.append(q)
    if report.unknown and unknown == "raise":
        shown = ", ".join(report.unknown[:20]) + (" ..." if len(report.unknown) > 20 else "")
        raise ValueError(
            f"init_module: no default or rule for {len(report.unknown)} parameter(s): {shown}. "
            "Pass rules={'name.pattern': initializer} (or unknown='skip' to leave them as they are)"
        )
    for q, p in params.items():
        if q not in plan:
            continue
        if p.is_meta:
            raise ValueError(
                f"parameter {q} is on the meta device: materialize with module.to_empty(device='cpu')"
            )
        _fill(p, plan[q], seed=seed, name=prefix + q)
        report.params[q] = _describe(plan[q])
    _after_fill(modules, plan, report)
    return report


def _after_fill(modules, plan, report):
    """What reset_parameters does after drawing: padding rows, running statistics.

    On a DTensor only the rank holding the padding row zeroes it, and buffers are filled
    through their local tensors: no collectives.
    """
    with torch.no_grad():
        for qual, sub in modules:
            prefix = f"{qual}." if qual else ""
            padding_idx = getattr(sub, "padding_idx", None)
            if isinstance(sub, (nn.Embedding, nn.EmbeddingBag)) and padding_idx is not None:
                name = f"{prefix}weight"
                if name in plan and plan[name] is _STD_NORMAL:
                    row = _local_row(sub.weight, padding_idx)
                    if row is not None:
                        row.zero_()
                    report.notes[name] = f"row {padding_idx} (padding_idx) zeroed"
            for local, buf in sub.named_buffers(recurse=False):
                name = f"{prefix}{local}"
                if isinstance(sub, nn.modules.batchnorm._NormBase) and local in _BUFFER_DEFAULTS:
                    if _is_dtensor(buf):
                        _shard_indices(buf, argname=f"buffer {name}")  # refuses Partial
                        buf = buf.to_local()
                    if not buf.is_meta:
                        buf.fill_(_BUFFER_DEFAULTS[local])
                    report.buffers[name] = _BUFFER_DEFAULTS[local]
                else:
                    report.untouched_buffers.append(name)
