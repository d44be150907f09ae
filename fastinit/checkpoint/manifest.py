"""Manifests: what tensors a model has, and how each is initialized.

``manifest_from_config(config)`` reads a Hugging Face ``config.json`` of any architecture
transformers can build and lists the tensors exactly as ``save_pretrained`` writes them, each
with the initialization the model's own init code gives it (traced: ``fastinit.trace``).

``manifest_from_json(spec)`` takes ``{"tensors": [{"name", "shape", "dtype", "init": {"scheme",
...params}}], "dtype": default, "config": {...}}`` (or the bare list) for any architecture.
``with_overrides(manifest, {"*.o_proj.weight": initializer})`` replaces per-tensor rules by name
pattern. ``manifest_to_json(manifest)`` is the inverse of ``manifest_from_json``.

Layouts (what a model's own init code can do that one initializer cannot say):

- ``zero_rows``: rows of the stored tensor set to zero after everything else (an embedding's
  padding row).
- ``writes``: overlays ``(index, initializer)`` applied in order after ``init``: element i holds
  the value of the last overlay whose index covers it, else ``init``'s. An overlay's values are
  those of its initializer on the same stream at the same positions,
  ``init_k(stream_shape, seed=seed, name=stream_name, index=<positions>)``.
- ``source``: the stored tensor is a block of a bigger, virtual tensor (a ``TensorSource``):
  ``stored = permute(stream[source.index], source.axes)``, where ``stream`` is what ``init`` and
  ``writes`` generate for ``(source.shape, source.name)``: the stream shape and name (fans of a
  variance-scaling scheme come from ``source.shape``; overlay indices are in its coordinates).
  Without a source the stream tensor is the tensor itself. Example: transformers 5 fuses the
  experts of a MoE layer into ``experts.gate_up_proj`` of shape ``[E, 2I, H]``, and
  ``save_pretrained`` writes ``experts.3.gate_proj.weight = gate_up_proj[3, :I, :]``: that
  tensor's source is ``TensorSource("...experts.gate_up_proj", (E, 2 * I, H), (3, slice(0, I)),
  (0, 1))``, so its values are that block of the fused tensor's stream, not a stream of its own.

In JSON (manifests, and the checkpoint header's per-tensor records), an index is a list with an
entry per leading dimension (missing trailing dimensions are whole): an int selects one position
and drops the dimension; ``{"start": s, "stop": e, "step": k}`` is the slice ``s:e:k`` (any key
may be left out or null, as in Python). Records always write the normalized form: one entry per
dimension, slices with an int start and step and a stop that is an int or null (a negative step
running past index 0)::

    "source": {"name": "model.layers.0.mlp.experts.gate_up_proj", "shape": [8, 512, 256],
               "index": [3, {"start": 0, "stop": 256}], "axes": [0, 1]}
    "writes": [{"index": [0], "init": {"scheme": "zeros"}},
               {"index": [{"start": 1, "step": 2}, 5], "init": {"scheme": "constant", "value": 1.0}}]

``source.index`` may be left out (the whole tensor) and so may ``source.axes`` (the identity).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import driver
from ..dtypes import DType, resolve_dtype
from ..rng.streams import check_name
from ..schemes import Initializer, get_initializer
from ..typing import DTypeLike

__all__ = [
    "CheckpointError",
    "TensorSource",
    "TensorSpec",
    "Manifest",
    "manifest_from_config",
    "manifest_from_json",
    "manifest_to_json",
    "with_overrides",
    "index_from_json",
    "index_to_json",
    "writes_from_json",
]

# Refused up front, before any list is built: beyond any real model, and what a crafted config or
# manifest would use to exhaust time or memory.
MAX_TENSORS = 1_000_000
MAX_TOTAL_BYTES = 1 << 50  # 1 PiB


class CheckpointError(ValueError):
    """A problem with a model config, a manifest or the output directory, in one line."""


# ---- indices ---------------------------------------------------------------------------------


def _normalized(shape: tuple[int, ...], index, what: str) -> tuple:
    """``index`` (NumPy basic indexing of ``shape``: ints, slices, one Ellipsis) as one int or
    ``slice(start, stop, step)`` per dimension (start and step ints, stop an int or None)."""
    if not isinstance(index, tuple):
        raise CheckpointError(f"{what} must be a tuple of ints and slices, got {type(index).__name__}")
    try:
        items = driver.normalized_index(shape, index)
    except (TypeError, ValueError, OverflowError) as error:
        raise CheckpointError(f"{what}: {error}") from None
    # a slice selecting nothing as slice(0, 0, 1) (normalized_index can give slice(-1, None, 1),
    # which NumPy reads as the last position)
    return tuple(
        slice(0, 0, 1) if isinstance(item, slice) and not _progressions((item,))[0][2] else item
        for item in items
    )


def _progressions(index: tuple) -> list[tuple[int, int, int, bool]]:
    """(start, step, count, kept) per dimension of a normalized index."""
    out = []
    for item in index:
        if isinstance(item, slice):
            stop = -1 if item.stop is None else item.stop
            out.append((item.start, item.step, len(range(item.start, stop, item.step)), True))
        else:
            out.append((item, 1, 1, False))
    return out


def _intersect(a: int, s: int, n: int, b: int, t: int, m: int) -> tuple[int, int, int]:
    """The common elements of {a + i*s : 0 <= i < n} and {b + j*t : 0 <= j < m} (s, t nonzero), as
    (first, step, count), in the order of the first progression (step has the sign of s)."""
    if n <= 0 or m <= 0:
        return a, s, 0
    lo1, hi1 = (a, a + s * (n - 1)) if s > 0 else (a + s * (n - 1), a)
    lo2, hi2 = (b, b + t * (m - 1)) if t > 0 else (b + t * (m - 1), b)
    big_s, big_t = abs(s), abs(t)
    g = math.gcd(big_s, big_t)
    if (lo2 - lo1) % g:
        return a, s, 0
    # x = lo1 (mod |s|) and x = lo2 (mod |t|): x = lo1 + |s| k with (|s|/g) k = (lo2 - lo1)/g (mod |t|/g)
    t_g = big_t // g
    k = ((lo2 - lo1) // g * pow(big_s // g, -1, t_g)) % t_g
    x0, step = lo1 + big_s * k, big_s * t_g
    low, high = max(lo1, lo2), min(hi1, hi2)
    first = x0 + -(-(low - x0) // step) * step
    if first > high:
        return a, s, 0
    count = (high - first) // step + 1
    return (first, step, count) if s > 0 else (first + step * (count - 1), -step, count)


def index_to_json(index: tuple) -> list:
    """A normalized index in its JSON form (module docstring).

    >>> index_to_json((3, slice(0, 4, 1), slice(5, None, -2)))
    [3, {'start': 0, 'stop': 4, 'step': 1}, {'start': 5, 'stop': None, 'step': -2}]
    """
    return [
        {"start": item.start, "stop": item.stop, "step": item.step} if isinstance(item, slice) else item
        for item in index
    ]


def _json_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def index_from_json(value, what: str = "index") -> tuple:
    """An index from its JSON form (module docstring): a tuple of ints and slices, not yet checked
    against a shape. CheckpointError naming ``what`` for anything else.

    >>> index_from_json([3, {"start": 1, "step": 2}, {}])
    (3, slice(1, None, 2), slice(None, None, None))
    """
    if not isinstance(value, list):
        raise CheckpointError(f"{what} must be a list of ints and {{start, stop, step}} objects")
    items = []
    for k, entry in enumerate(value):
        if _json_int(entry):
            items.append(entry)
        elif (
            isinstance(entry, dict)
            and set(entry) <= {"start", "stop", "step"}
            and all(v is None or _json_int(v) for v in entry.values())
        ):
            items.append(slice(entry.get("start"), entry.get("stop"), entry.get("step")))
        else:
            raise CheckpointError(
                f"{what}[{k}] must be an int or an object of int (or null) start, stop, step; got {_brief(entry)}"
            )
    return tuple(items)


def _brief(value) -> str:
    """A JSON value read from a file, in one short line."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:56] + " ..."


def _hashable(index: tuple) -> tuple:
    return tuple((item.start, item.stop, item.step) if isinstance(item, slice) else item for item in index)


# ---- sources and tensors ------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSource:
    """The stored tensor is ``permute(stream[index], axes)``, a block of the virtual tensor of
    ``shape`` that ``name``'s stream fills (module docstring).

    ``index``: NumPy basic indexing of ``shape`` (ints and slices, steps allowed), normalized on
    construction to one int or ``slice(start, stop, step)`` per dimension; ``axes``: a permutation
    of the dimensions the index keeps (default: the identity).

    >>> s = TensorSource("experts.gate_up_proj", (4, 6, 3), (2, slice(3, 6)))
    >>> s.index, s.axes, s.stored_shape
    ((2, slice(3, 6, 1), slice(0, 3, 1)), (0, 1), (3, 3))
    >>> TensorSource("experts.down_proj", (4, 3, 5), (1,), (1, 0)).stored_shape
    (5, 3)
    """

    name: str
    shape: tuple[int, ...]
    index: tuple = ()
    axes: tuple[int, ...] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise CheckpointError(f"source: name must be a non-empty str, got {_brief(self.name)}")
        where = f"source {self.name!r}"
        try:
            check_name(self.name)
            shape = driver.check_shape(self.shape, "shape")
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{where}: {error}") from None
        index = _normalized(shape, self.index, f"{where}: index")
        kept = sum(isinstance(item, slice) for item in index)
        axes = tuple(range(kept)) if self.axes is None else self.axes
        if (
            not isinstance(axes, (tuple, list))
            or not all(_json_int(a) for a in axes)
            or sorted(axes) != list(range(kept))
        ):
            raise CheckpointError(
                f"{where}: axes must be a permutation of the {kept} dimension(s) the index keeps, got {_brief(axes)}"
            )
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "axes", tuple(axes))

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """The shape of ``permute(stream[index], axes)``."""
        block = [count for _, _, count, kept in _progressions(self.index) if kept]
        return tuple(block[a] for a in self.axes)

    def to_json(self) -> dict:
        """The JSON form (module docstring), normalized."""
        return {"name": self.name, "shape": list(self.shape), "index": index_to_json(self.index),
                "axes": list(self.axes)}  # fmt: skip

    @classmethod
    def from_json(cls, value: Any, where: str = "") -> TensorSource:
        """From the JSON form; CheckpointError starting with ``where`` (the tensor) otherwise."""
        what = f"{where}: source" if where else "source"
        if not isinstance(value, dict):
            raise CheckpointError(f"{what} must be an object with name, shape, index, axes")
        unknown = sorted(set(value) - {"name", "shape", "index", "axes"})
        if unknown:
            raise CheckpointError(
                f"{what}: unknown key {_brief(unknown[0])} (a source has name, shape, index, axes)"
            )
        shape = value.get("shape")
        if not isinstance(shape, list) or not all(_json_int(d) and d >= 0 for d in shape):
            raise CheckpointError(f"{what}: shape must be a list of integers >= 0, got {_brief(shape)}")
        axes = value.get("axes")
        if axes is not None and not isinstance(axes, list):
            raise CheckpointError(f"{what}: axes must be a list of dimension numbers, got {_brief(axes)}")
        index = index_from_json(value.get("index", []), f"{what}: index")
        try:
            return cls(value.get("name"), tuple(shape), index, None if axes is None else tuple(axes))
        except CheckpointError as error:  # (it names the source)
            raise CheckpointError(f"{where}: {error}" if where else str(error)) from None

    def __hash__(self):
        return hash((self.name, self.shape, _hashable(self.index), self.axes))


def writes_from_json(value, what: str = "writes") -> tuple:
    """Overlays from their JSON form ``[{"index": [...], "init": {...}}, ...]``: a tuple of
    (index, Initializer), the indices not yet checked against a shape."""
    if not isinstance(value, list):
        raise CheckpointError(f"{what} must be a list of {{index, init}} objects")
    writes = []
    for k, entry in enumerate(value):
        if not isinstance(entry, dict) or set(entry) != {"index", "init"}:
            raise CheckpointError(
                f"{what}[{k}] must be an object with exactly index and init, got {_brief(entry)}"
            )
        index = index_from_json(entry["index"], f"{what}[{k}].index")
        if not isinstance(entry["init"], dict):
            raise CheckpointError(f"{what}[{k}].init must be an object such as {{'scheme': 'zeros'}}")
        try:
            init = Initializer.from_config(entry["init"])
        except (TypeError, ValueError, KeyError, RecursionError) as error:
            raise CheckpointError(f"{what}[{k}].init: {error}") from None
        writes.append((index, init))
    return tuple(writes)


_WRITES_FORM = "writes must be a sequence of (index, Initializer) pairs"


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a checkpoint: name, shape, dtype, initializer, rows zeroed at the end, overlays
    (``writes``) and the virtual tensor it is a block of (``source``); see the module docstring.

    ``writes`` indices are normalized on construction against the stream shape, as
    ``TensorSource`` normalizes its index; a layout that does not fit raises CheckpointError.

    >>> import fastinit
    >>> from fastinit.dtypes import resolve_dtype
    >>> spec = TensorSpec("experts.1.up_proj.weight", (3, 5), resolve_dtype("float32"),
    ...     fastinit.get_initializer("normal", std=0.02),
    ...     writes=(((slice(None), 4), fastinit.get_initializer("zeros")),),
    ...     source=TensorSource("experts.gate_up_proj", (2, 6, 5), (1, slice(3, 6))))
    >>> spec.stream_name, spec.stream_shape, spec.writes[0][0]
    ('experts.gate_up_proj', (2, 6, 5), (slice(0, 2, 1), 4, slice(0, 5, 1)))
    """

    name: str
    shape: tuple[int, ...]
    dtype: DType
    init: Initializer
    zero_rows: tuple[int, ...] = ()
    writes: tuple = ()
    source: TensorSource | None = None

    def __post_init__(self):
        if self.source is not None or not (isinstance(self.writes, tuple) and not self.writes):
            self._check_layout()

    def _check_layout(self) -> None:
        where = f"tensor {self.name!r}"
        source = self.source
        if source is not None:
            if not isinstance(source, TensorSource):
                raise CheckpointError(f"{where}: source must be a TensorSource, got {type(source).__name__}")
            if source.stored_shape != tuple(self.shape):
                raise CheckpointError(
                    f"{where}: source {source.name!r} gives shape {source.stored_shape} (index "
                    f"{_brief(index_to_json(source.index))}, axes {list(source.axes)}), not the tensor's shape "
                    f"{tuple(self.shape)}"
                )
        stream = self.stream_shape
        if math.prod(stream) * self.dtype.itemsize > MAX_TOTAL_BYTES:
            raise CheckpointError(
                f"{where}: a stream tensor of shape {stream} is not plausible (more than 1 PiB)"
            )
        try:
            items = tuple(self.writes)
        except TypeError:
            raise CheckpointError(f"{where}: {_WRITES_FORM}") from None
        writes = []
        for k, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 2 or not isinstance(item[1], Initializer):
                raise CheckpointError(f"{where}: {_WRITES_FORM}; writes[{k}] is {_brief(item)}")
            index = item[0] if isinstance(item[0], tuple) else (item[0],)
            writes.append((_normalized(stream, index, f"{where}: writes[{k}] index"), item[1]))
        object.__setattr__(self, "writes", tuple(writes))

    def __hash__(self):
        writes = tuple((_hashable(index), init) for index, init in self.writes)
        return hash((self.name, self.shape, self.dtype, self.init, self.zero_rows, writes, self.source))

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def stream_name(self) -> str:
        """The name whose stream fills the tensor: the source's, else the tensor's own."""
        return self.name if self.source is None else self.source.name

    @property
    def stream_shape(self) -> tuple[int, ...]:
        """The shape the initializers are called with: the source's, else the tensor's own."""
        return tuple(self.shape) if self.source is None else self.source.shape

    @property
    def resolved(self) -> bool:
        """Whether every initializer can generate (see ``Initializer.resolved``)."""
        return self.init.resolved and all(init.resolved for _, init in self.writes)

    def check(self) -> None:
        """Raise CheckpointError naming this tensor if it cannot be written: zero_rows out of
        its rows, or an initializer (or an overlay's) that refuses the stream's shape, the dtype or
        its parameters (found by a call that selects no element, so nothing is generated)."""
        if self.name == "__metadata__":  # safetensors' key for the header's metadata
            raise CheckpointError(
                "a tensor cannot be named '__metadata__' (safetensors keeps it for metadata)"
            )
        self.check_rows()
        shape = self.stream_shape
        index = (slice(0, 0),) if shape else None
        inits = [("", self.init)] + [(f"writes[{k}]: ", init) for k, (_, init) in enumerate(self.writes)]
        for what, init in inits:
            try:
                init(shape, dtype=self.dtype, name=self.stream_name, index=index)
            except (TypeError, ValueError, ArithmeticError) as error:
                raise CheckpointError(f"tensor {self.name!r}: {what}{error}") from None

    def check_rows(self) -> None:
        """Raise CheckpointError naming this tensor unless zero_rows are row numbers of it."""
        rows = self.shape[0] if self.shape else 1
        for row in self.zero_rows:
            if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < rows:
                raise CheckpointError(
                    f"tensor {self.name!r}: zero_rows must be row numbers in [0, {rows}), got {row!r}"
                )

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def describe(self) -> dict:
        """What the checkpoint header records to regenerate this tensor: ``init``, and only when
        present ``zero_rows``, ``writes`` and ``source`` (JSON forms: module docstring)."""
        record = {"init": self.init.to_config()}
        if self.zero_rows:
            record["zero_rows"] = list(self.zero_rows)
        if self.writes:
            record["writes"] = [{"index": index_to_json(index), "init": init.to_config()}
                                for index, init in self.writes]  # fmt: skip
        if self.source is not None:
            record["source"] = self.source.to_json()
        return record

    @functools.cached_property
    def geometry(self) -> Geometry:
        """Where the stored rows and the overlays lie in the stream tensor (for the writer)."""
        return Geometry(self)


class Geometry:
    """A tensor's stored elements as a block of its stream tensor, and its overlays' parts there.

    ``region``: (start, step, count, kept) per stream dimension, the block the stored tensor is
    (a kept dimension is one of the block's, in stream order); the stored tensor is the block with
    its dimensions permuted by ``axes`` (``inverse`` undoes it); stored dimension 0 comes from
    stream dimension ``row_dim`` (None for a 0-d tensor). ``overlays``: for each overlay that meets
    the block, in order, its initializer and, per stream dimension, None (a dimension the block
    drops) or (first, step, count): the positions it covers in the block's coordinates along that
    dimension (step >= 1); ``row_first`` / ``row_last``: the first and last block positions along
    ``row_dim`` it covers (to find the overlays a chunk of rows meets at once).
    """

    def __init__(self, spec: TensorSpec):
        source = spec.source
        self.shape = spec.stream_shape
        index = source.index if source is not None else _normalized(self.shape, (), "index")
        self.index = index
        self.region = _progressions(index)
        self.axes = source.axes if source is not None else tuple(range(len(self.shape)))
        self.inverse = tuple(int(a) for a in np.argsort(self.axes)) if self.axes else ()
        kept = [d for d, (_, _, _, keep) in enumerate(self.region) if keep]
        self.row_dim = kept[self.axes[0]] if self.axes else None
        self.overlays = []
        for index_k, init in spec.writes:
            dims = []
            for (a, s, n, keep), (b, t, m, _) in zip(self.region, _progressions(index_k), strict=True):
                first, step, count = _intersect(a, s, n, b, t, m)
                if not count:
                    break
                dims.append(((first - a) // s, step // s, count) if keep else None)
            else:
                self.overlays.append((init, dims))
        rows = [dims[self.row_dim] if self.row_dim is not None else (0, 1, 1) for _, dims in self.overlays]
        self.row_first = np.array([f for f, _, _ in rows], np.int64)
        self.row_last = np.array([f + step * (c - 1) for f, step, c in rows], np.int64)


@dataclass
class Manifest:
    """The tensors of a model, in file order, and the config written beside them."""

    tensors: list[TensorSpec]
    config: dict | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def numel(self) -> int:
        return sum(t.numel for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)


# ---- Hugging Face configs ----------------------------------------------------------------------

# Checked before anything is built: building a model on meta takes time per layer, and a crafted
# config could ask for a billion of them.
MAX_LAYERS = 10_000
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "num_decoder_layers")


def _check_config(config: dict, dtype) -> DType:
    """The dtype to write (``dtype``, else the config's, else float32), once the config is
    checked for what must be refused before anything is built."""
    if not isinstance(config, dict):
        raise CheckpointError(f"config must be a JSON object, got {type(config).__name__}")
    if not isinstance(config.get("model_type"), str):
        raise CheckpointError("config: no 'model_type' (which architecture to build)")
    for key in _LAYER_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_LAYERS:
            raise CheckpointError(
                f"config: '{key}' {value} is not plausible (more than {MAX_LAYERS:,} layers)"
            )
    chosen = next(
        (d for d in (dtype, config.get("dtype"), config.get("torch_dtype")) if d is not None), "float32"
    )
    try:
        return resolve_dtype(chosen, argname="dtype")
    except TypeError as error:
        raise CheckpointError(str(error)) from None


def manifest_from_config(
    config: dict[str, Any], *, dtype: DTypeLike | None = None, seed: int = 0
) -> Manifest:
    """The tensors of a Hugging Face config (a dict, as read from config.json), for any
    architecture transformers can build: the model is built on ``meta`` (no memory), its own
    init code traced (``fastinit.transformers.manifest_from_config``), and the tensors listed as
    ``save_pretrained`` writes them (tied weights left out, fused MoE experts split into the
    hub's per-expert tensors) with the traced initializers.

    ``dtype`` overrides the config's ``dtype`` / ``torch_dtype`` (default float32); ``seed``
    matters only for values the model derives from random draws (recorded literally). Needs
    torch and transformers (``pip install "fastinit[transformers]"``).

    >>> m = manifest_from_config({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    ...     "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}, dtype="bfloat16")
    >>> len(m), m.tensors[0].name, m.tensors[0].shape, m.tensors[0].dtype.name
    (21, 'model.embed_tokens.weight', (100, 64), 'bfloat16')
    """
    chosen = _check_config(config, dtype)
    try:
        from .. import transformers as traced
    except ImportError as error:
        raise CheckpointError(str(error)) from None
    try:
        manifest = traced.manifest_from_config(config, dtype=chosen.name, seed=seed)
    except CheckpointError:
        raise
    except Exception as error:  # transformers' own message, whatever it raised: one line
        message = " ".join(str(error).split()) or type(error).__name__
        message = message.removeprefix("config: ")
        if len(message) > 400:  # transformers lists every model type it knows
            message = message[:400] + " ..."
        raise CheckpointError(f"config: {message}") from None
    if len(manifest.tensors) > MAX_TENSORS:
        raise CheckpointError(
            f"config: {len(manifest.tensors):,} tensors is not plausible (at most {MAX_TENSORS:,})"
        )
    total = sum(spec.nbytes for spec in manifest.tensors)
    if total > MAX_TOTAL_BYTES:
        raise CheckpointError(f"config: {total:.3g} bytes of tensors is not plausible (more than 1 PiB)")
    return manifest


# ---- JSON manifests ---------------------------------------------------------------------------


def manifest_from_json(
    spec: str | bytes | dict[str, Any] | list[Any], *, dtype: DTypeLike | None = None
) -> Manifest:
    """The tensors of a plain JSON manifest (a dict / list, or its JSON text).

    >>> m = manifest_from_json({"tensors": [{"name": "w", "shape": [4, 8],
    ...     "init": {"scheme": "xavier_uniform"}}], "dtype": "bfloat16"})
    >>> m.tensors[0].init, m.tensors[0].dtype.name
    (Initializer('xavier_uniform'), 'bfloat16')
    """
    if isinstance(spec, (str, bytes)):
        try:
            spec = json.loads(spec)
        except (ValueError, RecursionError):
            raise CheckpointError("manifest: not valid JSON") from None
    config = None
    default_dtype = dtype
    if isinstance(spec, dict):
        if "tensors" not in spec:
            raise CheckpointError("manifest: a JSON object needs a 'tensors' list")
        config = spec.get("config")
        if default_dtype is None:
            if "dtype" in spec and spec["dtype"] is None:
                raise CheckpointError("manifest: 'dtype' is null: name a dtype or leave the key out")
            default_dtype = spec.get("dtype")
        tensors = spec["tensors"]
    else:
        tensors = spec
    if not isinstance(tensors, list) or not tensors:
        raise CheckpointError("manifest: 'tensors' must be a non-empty list")
    if len(tensors) > MAX_TENSORS:
        raise CheckpointError(
            f"manifest: {len(tensors):,} tensors is not plausible (at most {MAX_TENSORS:,})"
        )
    total = 0
    specs, seen = [], set()
    for i, item in enumerate(tensors):
        if not isinstance(item, dict):
            raise CheckpointError(f"manifest: tensor {i} must be an object with name, shape, init")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise CheckpointError(f"manifest: tensor {i} has no name")
        if name in seen:
            raise CheckpointError(f"manifest: tensor {name!r} appears twice")
        seen.add(name)
        shape = item.get("shape")
        if not isinstance(shape, list) or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape
        ):
            raise CheckpointError(
                f"manifest: tensor {name!r} needs a shape: a list of integers >= 0, got {shape!r}"
            )
        if "dtype" in item and item["dtype"] is None:
            raise CheckpointError(
                f"manifest: tensor {name!r}: 'dtype' is null: name a dtype or leave the key out"
            )
        try:
            dt = resolve_dtype(dtype if dtype is not None else item.get("dtype", default_dtype or "float32"))
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"manifest: tensor {name!r}: {error}") from None
        init = item.get("init")
        if not isinstance(init, dict):
            raise CheckpointError(
                f"manifest: tensor {name!r} needs an init object such as {{'scheme': 'normal'}}"
            )
        try:
            initializer = Initializer.from_config(init)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"manifest: tensor {name!r}: {error}") from None
        zero_rows = item.get("zero_rows", [])
        if not isinstance(zero_rows, list):
            raise CheckpointError(f"manifest: tensor {name!r}: zero_rows must be a list of row numbers")
        where = f"manifest: tensor {name!r}"
        try:
            source = TensorSource.from_json(item["source"], where) if "source" in item else None
            writes = writes_from_json(item["writes"], f"{where}: writes") if "writes" in item else ()
            spec = TensorSpec(name, tuple(shape), dt, initializer, tuple(zero_rows), writes, source)
        except CheckpointError as error:
            message = str(error)
            raise CheckpointError(
                message if message.startswith("manifest:") else f"manifest: {message}"
            ) from None
        total += spec.nbytes
        if total > MAX_TOTAL_BYTES:
            raise CheckpointError(f"manifest: tensor {name!r}: more than 1 PiB of tensors is not plausible")
        try:  # a custom function known only by name is refused when written, not when read
            spec.check() if spec.resolved else spec.check_rows()
        except CheckpointError as error:
            raise CheckpointError(f"manifest: {error}") from None
        specs.append(spec)
    if config is not None and not isinstance(config, dict):
        raise CheckpointError(
            f"manifest: 'config' must be an object (a config.json), got {type(config).__name__}"
        )
    return Manifest(specs, config, source="JSON manifest")


def manifest_to_json(manifest: Manifest) -> dict:
    """The JSON form of ``manifest`` (a dict for ``json.dumps``) that ``manifest_from_json`` reads
    back to the same tensors and config: per tensor its name, shape, dtype and header record.

    >>> m = manifest_from_json([{"name": "w", "shape": [2, 3], "init": {"scheme": "zeros"}}])
    >>> manifest_to_json(m)
    {'tensors': [{'name': 'w', 'shape': [2, 3], 'dtype': 'float32', 'init': {'scheme': 'zeros'}}]}
    """
    tensors = [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype.name, **t.describe()}
               for t in manifest.tensors]  # fmt: skip
    return (
        {"tensors": tensors} if manifest.config is None else {"tensors": tensors, "config": manifest.config}
    )


def with_overrides(manifest: Manifest, overrides: dict) -> Manifest:
    """A copy of ``manifest`` whose tensors matching a name pattern (``fnmatch``) get that
    pattern's initializer (an Initializer, a scheme name or a config dict); first match wins.
    Their ``zero_rows`` and ``writes`` go (they belonged to the old rule); a ``source`` stays.

    >>> m = manifest_from_json([{"name": "a.o_proj.weight", "shape": [2, 2], "init": {"scheme": "zeros"}}])
    >>> with_overrides(m, {"*.o_proj.weight": {"scheme": "normal", "std": 0.01}}).tensors[0].init
    Initializer('normal', std=0.01)
    """
    rules = []
    for pattern, rule in overrides.items():
        try:
            if isinstance(rule, Initializer):
                init = rule
            elif isinstance(rule, str):
                init = get_initializer(rule)
            else:
                init = Initializer.from_config(rule)
        except (TypeError, ValueError, RecursionError) as error:
            raise CheckpointError(f"override {pattern!r}: {error}") from None
        rules.append((pattern, init))
    tensors = []
    for spec in manifest.tensors:
        for pattern, init in rules:
            if fnmatch.fnmatchcase(spec.name, pattern):
                spec = replace(spec, init=init, zero_rows=(), writes=())
                break
        tensors.append(spec)
    return Manifest(tensors, manifest.config, manifest.source, dict(manifest.extra))
