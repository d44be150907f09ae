"""Trace a model's own init code: which initializer last wrote each of its tensors, as data.

The model's code already says how every tensor is initialized: torch layers in
``reset_parameters``, transformers models in ``_init_weights`` (through
``transformers.initialization``, which calls ``torch.nn.init``), torchvision-style networks in
a loop at the end of ``__init__``. A ``Recorder`` runs that code with the init functions
swapped for recorders: ``torch.nn.init.*_`` (wherever a module imported them), transformers'
guarded copies, and, through a ``TorchFunctionMode``, the ``Tensor`` methods ``normal_``,
``uniform_``, ``zero_``, ``fill_`` and ``copy_``. Recorded calls are not executed: no memory
is touched and torch's random generator is never used. Everything else runs as written.

Each write is recorded against the storage it lands in, with the view's place in it, so a
call on ``weight[padding_idx]`` or on a slice of a fused tensor, or through ``.data``, lands
on the right state_dict entry. ``plan(model)`` then gives every parameter and buffer the
writes that decide its final value, in order (a write covering the whole tensor discards the
earlier ones): an ``Initializer`` of fastinit's registry, or literal values.

What the model computes itself (a rotary ``inv_freq``, Mamba's ``A_log``, ``copy_`` from a
computed tensor, buffers made with ``torch.arange``) is run for real and its value recorded,
when the tensors are real. On ``meta`` tensors, or where a value derives from torch's random
ops (``torch.rand`` in Mamba's ``dt_bias``), the call that wrote it (one ``_init_weights(module)``
or ``reset_parameters()``) is run again on real memory, with every ``torch.rand`` / ``randn``
drawn from fastinit's stream ``(seed, "<module>#<k>")`` instead, and the values it writes are
recorded. A write the trace cannot reproduce (``torch.randint``, a random op in a constructor,
arithmetic on a drawn tensor other than scaling and shifting it) is a ``TraceError`` naming the
tensor and the call; ``rules=`` gives such a tensor an initializer instead.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import numbers
import sys
import threading
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from .schemes import Initializer, get_initializer

__all__ = [
    "Recorder",
    "Write",
    "TensorPlan",
    "InitPlan",
    "TraceError",
    "elementwise",
    "storage_key",
    "geometry",
    "block",
    "named_tensors",
]


class TraceError(ValueError):
    """An init call the trace cannot reproduce, naming the tensor and the call."""


# ---- what a call means -----------------------------------------------------------------------

_INIT_FUNCTIONS = (
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_",
)  # fmt: skip
_ORIGINALS = {name: getattr(torch.nn.init, name) for name in _INIT_FUNCTIONS}
_SIGNATURES = {name: inspect.signature(fn) for name, fn in _ORIGINALS.items()}


def _number(value, what: str):
    if isinstance(value, torch.Tensor):
        if value.is_meta or value.numel() != 1:
            return None
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TraceError(f"{what}: expected a number, got {value!r}")
    return float(value) if not isinstance(value, numbers.Integral) else int(value)


@functools.cache
def _scheme_parameters(scheme: str):
    from .schemes.registry import SCHEMES

    return inspect.signature(SCHEMES[scheme]).parameters


def _plain(init: Initializer) -> Initializer:
    """``init`` without the parameters that equal the scheme's defaults (a shorter config)."""
    defaults = _scheme_parameters(init.scheme)
    kept = {k: v for k, v in init.params.items()
            if k not in defaults or defaults[k].default is inspect.Parameter.empty or defaults[k].default != v}  # fmt: skip
    return init if kept == init.params else get_initializer(init.scheme, **kept)


def _init_from_call(name: str, arguments: dict) -> Initializer | None:
    """The fastinit initializer a ``torch.nn.init`` call means, with torch's semantics; None
    when a parameter is a tensor without a value (meta)."""
    a = {k: v for k, v in arguments.items() if k not in ("tensor", "generator")}
    numbers_ = {}
    for key, value in a.items():
        if key in ("mode", "nonlinearity"):
            numbers_[key] = value
        else:
            number = _number(value, f"torch.nn.init.{name}({key}=...)")
            if number is None:
                return None
            numbers_[key] = number
    a = numbers_
    if name == "uniform_":
        return get_initializer("uniform", low=float(a["a"]), high=float(a["b"]))
    if name == "normal_":
        return get_initializer("normal", mean=float(a["mean"]), std=float(a["std"]))
    if name == "trunc_normal_":
        return get_initializer(
            "truncated_normal", mean=float(a["mean"]), std=float(a["std"]), a=float(a["a"]), b=float(a["b"])
        )
    if name == "constant_":
        return get_initializer("constant", value=a["val"])
    if name in ("ones_", "zeros_", "eye_"):
        return get_initializer(name[:-1])
    if name == "dirac_":
        return get_initializer("dirac", groups=int(a["groups"]))
    if name in ("xavier_uniform_", "xavier_normal_", "orthogonal_"):
        return get_initializer(name[:-1], gain=float(a["gain"]))
    if name in ("kaiming_uniform_", "kaiming_normal_"):
        return get_initializer(name[:-1], a=float(a["a"]), mode=a["mode"], nonlinearity=a["nonlinearity"])
    if name == "sparse_":
        return get_initializer("sparse", sparsity=float(a["sparsity"]), std=float(a["std"]))
    raise AssertionError(name)


_ELEMENTWISE = ("uniform", "normal", "truncated_normal", "constant", "zeros", "ones", "values")


def elementwise(init: Initializer, shape) -> Initializer | None:
    """``init`` on a tensor of ``shape`` as a per-element distribution (the fans of ``shape``
    folded into the bound or std the scheme draws with, as its record predicts them), so that
    it can fill any part of a bigger tensor; None for schemes that need the whole matrix
    (orthogonal, sparse, eye, dirac).

    >>> import fastinit
    >>> elementwise(fastinit.get_initializer("kaiming_uniform", a=0.0), (4, 3))
    Initializer('uniform', low=-1.4142135623730951, high=1.4142135623730951)
    """
    if init.scheme in _ELEMENTWISE:
        return init
    if init.scheme not in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"):
        return None
    if set(init.params) - {"gain", "a", "mode", "nonlinearity"}:
        return None  # another layout or explicit axes: torch.nn.init's calls never give them
    std, bound = _spread(init, tuple(shape))
    if init.scheme.endswith("uniform"):
        return get_initializer("uniform", low=-bound, high=bound)
    return get_initializer("normal", mean=0.0, std=std)


@functools.lru_cache(maxsize=1024)
def _spread(init: Initializer, shape: tuple[int, ...]) -> tuple[float, float]:
    """(std, uniform bound) of ``init`` on ``shape``, from its record's prediction (which builds
    a scipy distribution, ~0.5 ms: a model repeats its shapes, so they are kept)."""
    prediction = init.predict(shape)
    return prediction.std, prediction.high


def _affine(init: Initializer, scale: float, shift: float) -> Initializer:
    """``init``'s values times ``scale`` plus ``shift``, as an initializer (elementwise only)."""
    p = init.params
    if init.constant_value is not None:
        return get_initializer("constant", value=init.constant_value * scale + shift)
    if init.scheme == "uniform":
        lo, hi = sorted((p.get("low", 0.0) * scale + shift, p.get("high", 1.0) * scale + shift))
        return get_initializer("uniform", low=lo, high=hi)
    if init.scheme == "normal":
        return get_initializer(
            "normal", mean=p.get("mean", 0.0) * scale + shift, std=abs(scale) * p.get("std", 1.0)
        )
    if init.scheme == "truncated_normal" and not {"lower", "upper"} & set(p):
        lo, hi = sorted((p.get("a", -2.0) * scale + shift, p.get("b", 2.0) * scale + shift))
        return get_initializer(
            "truncated_normal",
            mean=p.get("mean", 0.0) * scale + shift,
            std=abs(scale) * p.get("std", 1.0),
            a=lo,
            b=hi,
        )
    raise TraceError(f"cannot scale {init!r}")


# ---- the plan (data) ---------------------------------------------------------------------------


@dataclass
class Write:
    """One write that decides part of a tensor's value: ``init`` drawn from the tensor's stream
    at ``index`` (None: the whole tensor), or literal ``value`` (shape of ``tensor[index]``);
    ``kept`` marks values the tensor already holds (made by its constructor on real memory).
    ``call`` says which code wrote it."""

    index: tuple | None
    init: Initializer | None = None
    value: torch.Tensor | None = None
    call: str = ""
    kept: bool = False
    stream: str | None = None  # the tensor whose stream ``init`` draws from, when not this one

    def values_initializer(self, shape=None) -> Initializer:
        """Literal values as an initializer of the ``values`` scheme; for a write to a block,
        the values of the whole tensor of ``shape`` (zeros outside the block: the write fills
        only its block)."""
        from .schemes.deterministic import encode_values

        if self.value is None:
            raise TraceError(f"no value was recorded for the write of {self.call}")
        values = self.value.detach().to("cpu", torch.float64).numpy()
        if self.index is not None:
            if shape is None:
                raise TraceError(f"the values written by {self.call} fill a block: give the tensor's shape")
            whole = np.zeros(tuple(shape), dtype=np.float64)
            whole[self.index] = values
            values = whole
        return get_initializer("values", data=encode_values(values))

    def to_config(self, shape=None) -> dict:
        """JSON-serializable: {"index": [...] or None, "init": initializer config, "call": ...}.
        Literal values are recorded with the ``values`` scheme (of the tensor's ``shape``)."""
        if self.kept:
            return {"index": _index_config(self.index), "kept": True, "call": self.call}
        init = self.init if self.init is not None else self.values_initializer(shape)
        config = {"index": _index_config(self.index), "init": init.to_config(), "call": self.call}
        if self.stream is not None:
            config["stream"] = self.stream
        return config


def _index_config(index):
    if index is None:
        return None
    return [i if isinstance(i, int) else {"start": i.start, "stop": i.stop, "step": i.step} for i in index]


@dataclass
class TensorPlan:
    """The writes that give one parameter or buffer its value, in order."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    writes: list[Write] = field(default_factory=list)
    buffer: bool = False

    @property
    def init(self) -> Initializer | None:
        """The initializer of a tensor decided by one whole-tensor draw, else None."""
        if len(self.writes) == 1 and self.writes[0].index is None:
            return self.writes[0].init
        return None

    def describe(self) -> object:
        """A short, JSON-serializable summary: the initializer's config for one whole draw."""
        if self.init is not None:
            return self.init.to_config()
        return [w.to_config(self.shape) for w in self.writes]


class InitPlan(dict):
    """state_dict key -> ``TensorPlan``, in the model's order. ``to_config()`` is JSON;
    ``str(plan)`` a table."""

    def to_config(self) -> dict:
        return {key: [w.to_config(tp.shape) for w in tp.writes] for key, tp in self.items()}

    def __str__(self) -> str:
        lines = []
        for key, tp in self.items():
            for k, w in enumerate(tp.writes):
                what = repr(w.init) if w.init is not None else ("kept" if w.kept else "values")
                where = "" if w.index is None else f"[{_show_index(w.index)}]"
                lines.append(f"{key if k == 0 else '':<50} {where}{what}  <- {w.call}")
        return "\n".join(lines)


def _show_index(index) -> str:
    parts = []
    for i in index:
        if isinstance(i, int):
            parts.append(str(i))
        else:
            step = "" if i.step in (None, 1) else f":{i.step}"
            parts.append(f"{i.start}:{i.stop}{step}")
    return ", ".join(parts)


# ---- storages and views ------------------------------------------------------------------------


def _local(t: torch.Tensor) -> torch.Tensor:
    local = getattr(t, "_local_tensor", None)  # a DTensor: its storage is its local tensor's
    return local if isinstance(local, torch.Tensor) else t


def storage_key(t) -> int | None:
    """The identity of the memory ``t`` views (its local tensor's, for a DTensor): the same for
    every view of one storage, ``.data`` and ``nn.Parameter`` wrappers included; None for
    what is not a tensor with a storage.

    >>> import torch
    >>> w = torch.nn.Parameter(torch.empty(4, 3))
    >>> storage_key(w[1:]) == storage_key(w.data) == storage_key(w), storage_key(3.0)
    (True, None)
    """
    if not isinstance(t, torch.Tensor):
        return None
    try:
        return _local(t).untyped_storage()._cdata
    except (RuntimeError, NotImplementedError, TypeError):
        return None


def geometry(t: torch.Tensor) -> tuple:
    """(storage offset, shape, strides) of ``t`` in its storage.

    >>> import torch
    >>> geometry(torch.empty(4, 3)[1:, ::2])
    (3, (3, 2), (3, 2))
    """
    t = _local(t)
    return (t.storage_offset(), tuple(t.shape), tuple(t.stride()))


def _covers(outer: tuple, inner: tuple) -> bool:
    """Whether the view ``inner`` covers every element of the dense view ``outer``."""
    o_off, o_shape, _ = outer
    i_off, i_shape, i_strides = inner
    n = math.prod(i_shape)
    if n != math.prod(o_shape) or i_off != o_off:
        return False
    return _is_dense(i_shape, i_strides)


def _is_dense(shape, strides) -> bool:
    expected = 1
    for size, stride in sorted(
        ((s, st) for s, st in zip(shape, strides, strict=True) if s != 1), key=lambda x: x[1]
    ):
        if stride != expected:
            return False
        expected *= size
    return True


def block(outer: tuple, inner: tuple):
    """The view ``inner`` as a block of the dense tensor ``outer``: (index, perm) where
    ``outer_tensor[index]`` holds the same elements and ``squeezed(inner).permute(perm)`` has
    them in its order (index None: all of it); None when it is not a block (a diagonal,
    overlapping strides).

    >>> import torch
    >>> w = torch.empty(4, 6)
    >>> block(geometry(w), geometry(w[1:3, ::2]))
    ((slice(1, 3, 1), slice(0, 5, 2)), (0, 1))
    >>> block(geometry(w), geometry(w.t())), block(geometry(w), geometry(w.diagonal()))
    ((None, (1, 0)), None)
    """
    o_off, o_shape, o_strides = outer
    i_off, i_shape, i_strides = inner
    if not _is_dense(o_shape, o_strides) or math.prod(i_shape) == 0:
        return None
    rel = i_off - o_off
    if rel < 0:
        return None
    start = [0] * len(o_shape)
    for d in sorted(range(len(o_shape)), key=lambda d: -o_strides[d]):
        if o_shape[d] > 1:
            start[d], rel = divmod(rel, o_strides[d])
    if rel or any(s >= n for s, n in zip(start, o_shape, strict=True) if n):
        return None
    mapped: dict[int, tuple[int, int, int]] = {}  # outer dim -> (inner dim, step, count)
    for i, (n, s) in enumerate(zip(i_shape, i_strides, strict=True)):
        if n == 1:
            continue
        for d in sorted(range(len(o_shape)), key=lambda d: -o_strides[d]):
            if d in mapped or o_shape[d] <= 1 or s <= 0 or s % o_strides[d]:
                continue
            step = s // o_strides[d]
            if start[d] + step * (n - 1) < o_shape[d]:
                mapped[d] = (i, step, n)
                break
        else:
            return None
    index = []
    for d, size in enumerate(o_shape):
        if d in mapped:
            _, step, n = mapped[d]
            index.append(slice(start[d], start[d] + step * (n - 1) + 1, step))
        elif size == 1:
            index.append(slice(0, 1, 1))
        else:
            index.append(start[d])
    squeezed = [i for i, n in enumerate(i_shape) if n != 1]
    order = [mapped[d][0] for d in sorted(mapped)]
    perm = tuple(squeezed.index(i) for i in order)
    whole = all(isinstance(x, slice) and x == slice(0, n, 1) for x, n in zip(index, o_shape, strict=True))
    return (None if whole else tuple(index)), perm


# ---- the recorder ------------------------------------------------------------------------------


@dataclass
class _Event:
    geometry: tuple
    kind: str  # init | computed | random | derived | empty
    call: str
    init: Initializer | None = None  # init: as called, on the view's shape
    value: object = None  # computed: the view's values after the write, KEPT, or None (meta)
    unit: int | None = None
    root: str = ""  # derived: the draw its values come from
    held: bool = False  # init of a constant, written for real: the memory holds it
    stream: tuple | None = None  # a draw copied from elsewhere: (storage key, geometry) it was drawn in

    @property
    def origin(self) -> str:
        return self.root or self.call


@dataclass
class _Unit:
    """One call of the model's init code that can be run again: ``_init_weights(module)``,
    ``module.reset_parameters()``."""

    description: str
    module: torch.nn.Module
    rerun: object  # () -> None, or None for a constructor


KEPT = "kept"  # a computed creation on real memory: the tensor already holds its value

_RANDOM_CREATION = {"rand": "uniform", "rand_like": "uniform", "randn": "normal", "randn_like": "normal"}
_RANDOM_OTHER = {"randint", "randint_like", "randperm", "normal", "bernoulli", "multinomial", "poisson",
                 "binomial", "_standard_gamma", "_sample_dirichlet", "dropout", "rrelu", "native_dropout"}  # fmt: skip
_RANDOM_INPLACE = {"random_", "bernoulli_", "exponential_", "geometric_", "cauchy_", "log_normal_"}
_EMPTY = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"}
_SHAPE_ONLY = {"zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full", "new_tensor"}
_NOT_WRITES = {"requires_grad_", "retain_grad", "share_memory_", "detach_", "resize_", "resize_as_", "set_",
               "as_strided_", "squeeze_", "unsqueeze_", "t_", "transpose_", "swapdims_", "swapaxes_",
               "record_stream", "_fix_weakref", "_coalesced_", "sparse_resize_", "sparse_resize_and_clear_"}  # fmt: skip
_SCALE = {"mul_": 1, "__imul__": 1, "div_": -1, "__itruediv__": -1, "__idiv__": -1}
_SHIFT = {"add_": 1, "__iadd__": 1, "sub_": -1, "__isub__": -1}
_ARITHMETIC = {  # name -> number -> (scale, shift) of tensor op number
    "mul": lambda c: (c, 0.0), "__mul__": lambda c: (c, 0.0), "__rmul__": lambda c: (c, 0.0),
    "div": lambda c: (1.0 / c if c else math.inf, 0.0), "true_divide": lambda c: (1.0 / c if c else math.inf, 0.0),
    "__truediv__": lambda c: (1.0 / c if c else math.inf, 0.0),
    "add": lambda c: (1.0, c), "__add__": lambda c: (1.0, c), "__radd__": lambda c: (1.0, c),
    "sub": lambda c: (1.0, -c), "__sub__": lambda c: (1.0, -c), "__rsub__": lambda c: (-1.0, c),
    "neg": lambda c: (-1.0, 0.0), "__neg__": lambda c: (-1.0, 0.0),
}  # fmt: skip

_LOCK = threading.RLock()


@contextlib.contextmanager
def exclusive():
    """One trace at a time in a process: the init functions are swapped process-wide. Hold it
    around anything else patched for a trace (transformers' ``_initialize_weights``); a
    ``Recorder`` takes it too (it is re-entrant).

    >>> with exclusive():
    ...     with Recorder(seed=0):
    ...         pass
    """
    with _LOCK:
        yield


_FOUND: tuple[int, list] = (-1, [])  # (len(sys.modules), references) of the last search


def _references() -> list[tuple[dict, str, str]]:
    """(namespace, attribute, init function name) of every reference to a ``torch.nn.init``
    function: module attributes (``from torch.nn.init import normal_`` included) and
    transformers' table of torch's functions. Searched again only when modules were added."""
    global _FOUND
    if _FOUND[0] == len(sys.modules):
        return _FOUND[1]
    by_id = {id(fn): name for name, fn in _ORIGINALS.items()}
    namespaces = [getattr(m, "__dict__", None) for m in list(sys.modules.values())]
    hf = sys.modules.get("transformers.initialization")
    namespaces.append(getattr(hf, "TORCH_INIT_FUNCTIONS", None))
    found = []
    for namespace in namespaces:
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            name = by_id.get(id(value))
            if name is not None and value is _ORIGINALS[name]:
                found.append((namespace, attr, name))
    _FOUND = (len(sys.modules), found)
    return found


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _func_name(func) -> str:
    return getattr(func, "__name__", None) or str(func)


def _written(name: str, args, kwargs):
    """The tensor an in-place call writes (its ``out=`` or its self), or None."""
    out = kwargs.get("out")
    if isinstance(out, torch.Tensor):
        return out
    if not args or not isinstance(args[0], torch.Tensor):
        return None
    if name in ("__setitem__", *_SCALE, *_SHIFT):
        return args[0]
    if name.endswith("_") and not name.startswith("_") and name not in _NOT_WRITES:
        return args[0]
    return None


def _is_basic_index(index) -> bool:
    """Whether ``tensor[index]`` is a view (ints, slices, None, Ellipsis), not a copy."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        item is None
        or item is Ellipsis
        or isinstance(item, slice)
        or (isinstance(item, int) and not isinstance(item, bool))
        for item in items
    )


def _is_plain_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _bind_method(names, defaults, args, kwargs) -> dict:
    bound = dict(zip(names, defaults, strict=True))
    bound.update(zip(names, args, strict=False))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    return bound


class Recorder(TorchFunctionMode):
    """Records the init calls made while it is active:

    >>> import torch
    >>> with Recorder(seed=0) as rec:
    ...     model = torch.nn.Linear(4, 3)  # its constructor's own init: recorded, not run
    >>> plan = rec.plan(model)
    >>> plan["weight"].init, plan["bias"].init
    (Initializer('kaiming_uniform', a=2.23606797749979), Initializer('uniform', low=-0.5, high=0.5))

    Recorded calls are not executed; everything else runs as written. The ``torch.nn.init``
    functions are swapped process-wide while it is active, but calls from other threads go to
    torch's own (recorders take a lock among themselves).
    """

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = seed
        self.events: dict[int, list[_Event]] = {}  # storage -> events its memory reflects
        self.history: dict[int, list[_Event]] = {}  # storage -> every event, for the plan
        self.units: list[_Unit] = []
        self._keep: list[torch.Tensor] = []  # written storages stay alive: their keys stay theirs
        self._unit: int | None = None
        self._patches: list[tuple[dict, str, object]] = []
        self._depth = 0  # entered (nested) how many times: patched while > 0
        # set for a rerun of one unit: fastinit draws for random ops, writes captured
        self._rerun: _Rerun | None = None
        self._tensors_by_storage: dict[int, tuple[str, tuple]] = {}

    # -- installing -----------------------------------------------------------------------------

    def __enter__(self):
        _LOCK.acquire()
        try:
            if self._depth == 0:
                self._patch()
            result = super().__enter__()
            self._depth += 1
            return result
        except BaseException:
            if self._depth == 0:
                self._unpatch()
            _LOCK.release()
            raise

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._unpatch()
            _LOCK.release()

    def _patch(self):
        """Swap every reference to a ``torch.nn.init`` function for a recorder: in
        ``torch.nn.init``, in every module that imported one by name, and in transformers'
        table of torch's functions."""
        recorders = {name: self._recorder_for(name) for name in _INIT_FUNCTIONS}
        for namespace, attr, name in _references():
            if namespace.get(attr) is _ORIGINALS[name]:
                self._patches.append((namespace, attr, _ORIGINALS[name]))
                namespace[attr] = recorders[name]

    def _unpatch(self):
        while self._patches:
            namespace, attr, value = self._patches.pop()
            namespace[attr] = value

    def _recorder_for(self, name: str):
        signature = _SIGNATURES[name]

        owner = threading.get_ident()

        @functools.wraps(_ORIGINALS[name])
        def record(*args, **kwargs):
            if threading.get_ident() != owner:  # another thread's init: torch's own
                return _ORIGINALS[name](*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            tensor = bound.arguments["tensor"]
            init = _init_from_call(name, dict(bound.arguments))
            init = init if init is None else _plain(init)
            if self._rerun is not None:
                self._rerun.init_call(self, tensor, init, f"torch.nn.init.{name}")
            elif init is None:
                self._write(tensor, "computed", f"torch.nn.init.{name}")
            else:
                self._write(tensor, "init", f"torch.nn.init.{name}", init=init)
            return tensor

        return record

    # -- units ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def unit(self, description: str, module, rerun):
        """Mark the calls made inside as one unit of init code, which ``rerun()`` repeats
        (None: it cannot be repeated, as a constructor)."""
        outer = self._unit
        self.units.append(_Unit(description, module, rerun))
        self._unit = len(self.units) - 1
        try:
            yield
        finally:
            self._unit = outer

    # -- events ---------------------------------------------------------------------------------

    def _where(self) -> str:
        return f" in {self.units[self._unit].description}" if self._unit is not None else ""

    def _state(self, t) -> list[_Event]:
        key = storage_key(t)
        return self.events.get(key, []) if key is not None else []

    def _unwritten(self, *objs) -> _Event | None:
        """An event whose value the memory of these tensors does not hold (a recorded draw)."""
        for t in _tensors(objs):
            for event in self._state(t):
                if event.kind != "computed" and not event.held:
                    return event
        return None

    def _write(self, t, kind: str, call: str, *, init=None, value=None, root: str = ""):
        key = storage_key(t)
        if key is None:
            return
        event = _Event(geometry(t), kind, call + self._where(), init, value, self._unit, root)
        if kind == "init" and init.constant_value is not None and not _local(t).is_meta:
            # constants are cheap: written for real, so what the model computes from them is right
            with torch.no_grad():
                t.fill_(init.constant_value)
            event.held = True
        events = self.events.setdefault(key, [])
        local = _local(t)
        whole = (0, (local.untyped_storage().nbytes() // max(local.element_size(), 1),), (1,))
        if _covers(whole, event.geometry):
            events.clear()
        events.append(event)
        self.history.setdefault(key, []).append(event)
        self._keep.append(t)

    def _created(self, t, kind: str, call: str, value=None, root: str = ""):
        key = storage_key(t)
        if key is None:
            return
        event = _Event(geometry(t), kind, call + self._where(), value=value, unit=self._unit, root=root)
        self.events[key] = [event]
        self.history[key] = [event]
        self._keep.append(t)

    # -- the mode -------------------------------------------------------------------------------

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _func_name(func)
        if self._rerun is not None:
            return self._rerun.call(self, func, name, args, kwargs)
        target = _written(name, args, kwargs)
        if target is not None:
            return self._in_place(func, name, target, args, kwargs)
        if name in _RANDOM_CREATION or name in _RANDOM_OTHER:
            out = _placeholder(func, name, args, kwargs)
            for t in _tensors(out):
                self._created(t, "random", f"torch.{name}")
            return out
        if name in _ARITHMETIC and not kwargs and len(args) in (1, 2):
            scaled = self._scaled_draw(func, name, args)
            if scaled is not None:
                return scaled
        before = {storage_key(t) for t in _tensors((args, kwargs))}
        out = func(*args, **kwargs)
        fresh = [t for t in _tensors(out) if storage_key(t) not in before]
        if fresh:
            source = None if name in _EMPTY or name in _SHAPE_ONLY else self._unwritten(args, kwargs)
            for t in fresh:
                if source is not None:
                    self._created(t, "derived", f"torch.{name}", root=source.origin)
                elif name in _EMPTY:
                    self._created(t, "empty", f"torch.{name}")
                else:
                    self._created(t, "computed", f"torch.{name}", value=None if _local(t).is_meta else KEPT)
        return out

    def _in_place(self, func, name, target, args, kwargs):
        result = None if name == "__setitem__" else target
        original, view = args, target
        if name == "__setitem__" and not _is_basic_index(args[1]):
            # an advanced index writes scattered elements: the whole tensor, read and written
            origin = self._unwritten(args)
            if origin is not None:
                self._write(target, "derived", "Tensor.__setitem__", root=origin.origin)
                return result
            out = func(*original, **kwargs)
            value = None if _local(target).is_meta else target.detach().clone()
            self._write(target, "computed", "Tensor.__setitem__", value=value)
            return out
        if name == "__setitem__":
            view = target[args[1]]
            value = args[2]
            if not isinstance(value, torch.Tensor):
                number = _number(value, "Tensor.__setitem__")
                self._write(
                    view, "init", "Tensor.__setitem__", init=get_initializer("constant", value=number)
                )
                return result
            name, args = "copy_", (view, value)
        init = _method_init(name, args, kwargs)
        if init is not None:
            self._write(view, "init", f"Tensor.{name}", init=_plain(init))
            return result
        if name == "copy_" and self._copy_draw(view, args[1]):
            return result
        if name in _RANDOM_INPLACE:
            self._write(view, "random", f"Tensor.{name}")
            return result
        if (name in _SCALE or name in _SHIFT) and len(args) == 2 and _is_plain_number(args[1]) and not kwargs:
            if self._fold(view, name, float(args[1])):
                return result
        # copy_ overwrites its target: only its source matters; other ops read the target too
        origin = self._unwritten(args[1:] if name == "copy_" else args, kwargs)
        if origin is not None:
            self._write(view, "derived", f"Tensor.{name}", root=origin.origin)
            return result
        out = func(*original, **kwargs)
        value = None if _local(view).is_meta else view.detach().clone()
        self._write(view, "computed", f"Tensor.{name}", value=value)
        return out

    def _scaled_draw(self, func, name, args):
        """``draw * c``, ``draw / c``, ``draw + c``, ``-draw``, ...: a new tensor holding the
        recorded draw of ``args[0]`` scaled and shifted, recorded as a draw (else None)."""
        tensor, number = args[0], (args[1] if len(args) == 2 else None)
        events = self._state(tensor) if isinstance(tensor, torch.Tensor) else []
        if len(events) != 1 or events[0].kind != "init" or events[0].geometry != geometry(tensor):
            return None
        if number is not None and not _is_plain_number(number):
            return None
        scale, shift = _ARITHMETIC[name](float(number) if number is not None else 0.0)
        if not math.isfinite(scale) or not math.isfinite(shift):
            return None
        resolved = elementwise(events[0].init, events[0].geometry[1])
        if resolved is None or resolved.scheme == "values":
            return None
        out = func(*args)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(tensor.shape):
            return None
        self._created(out, "init", f"{events[0].call}, then {name}({'' if number is None else number})")
        event = self._state(out)[-1]
        event.init, event.stream = (
            _affine(resolved, scale, shift),
            events[0].stream or (storage_key(tensor), events[0].geometry),
        )
        return out

    def _copy_draw(self, target, source) -> bool:
        """``target.copy_(source)`` where ``source`` holds one recorded draw: the draw moves."""
        events = self._state(source)
        if len(events) != 1 or events[0].kind != "init" or geometry(source) != events[0].geometry:
            return False
        e = events[0]
        init = e.init if tuple(target.shape) == e.geometry[1] else elementwise(e.init, e.geometry[1])
        if init is None:
            return False
        self._write(target, "init", f"Tensor.copy_ of ({e.call})", init=init)
        self._state(target)[-1].stream = e.stream or (storage_key(source), e.geometry)
        return True

    def _fold(self, target, name: str, number: float) -> bool:
        """Scale or shift, in place, the recorded draws of a tensor written whole."""
        events = self._state(target)
        if not events or any(e.kind != "init" for e in events) or geometry(target) != events[0].geometry:
            return False
        if not _covers(events[0].geometry, geometry(target)):
            return False
        scale, shift = 1.0, 0.0
        if name in _SCALE:
            if number == 0 and _SCALE[name] < 0:
                return False
            scale = number if _SCALE[name] > 0 else 1.0 / number
        else:
            shift = number * _SHIFT[name]
        folded = []
        for event in events:
            resolved = elementwise(event.init, event.geometry[1])
            if resolved is None or resolved.scheme == "values":
                return False
            folded.append(_affine(resolved, scale, shift))
        for event, init in zip(events, folded, strict=True):
            event.init, event.held = init, False
            event.call = f"{event.call}, then Tensor.{name}({number:g})"
        return True

    # -- the plan -------------------------------------------------------------------------------

    def plan(
        self, model: torch.nn.Module, *, names=None, skip=(), run_again=True, materialize=None
    ) -> InitPlan:
        """Every parameter and buffer of ``model`` with the writes that decide its value.

        ``names`` maps qualified names to the names to report (wrappers left out); ``skip``
        lists names not to resolve (given by rules, or kept). Values the trace could not see
        are filled in by running their unit again (``run_again``; else call it yourself once
        the model is on real memory); ``materialize(module)`` is called first for a module
        still on ``meta``. Raises TraceError for tensors the trace cannot reproduce; tensors
        no call wrote are listed in ``plan.unwritten``.
        """
        names = names or (lambda q: q)
        plan, problems = InitPlan(), []
        plan.unwritten, plan.pending = [], {}
        owners = {id(m): names(q) for q, m in model.named_modules()}
        self._tensors_by_storage = {
            storage_key(t): (key, geometry(t)) for key, t, _ in named_tensors(model, names)
        }
        for key, tensor, is_buffer in named_tensors(model, names):
            if key in skip:
                continue
            tp = TensorPlan(key, tuple(tensor.shape), tensor.dtype, buffer=is_buffer)
            events = [e for e in self.history.get(storage_key(tensor), []) if self._owns(e, key, owners)]
            if not events:
                plan.unwritten.append(key)
                continue
            outer = geometry(tensor)
            placed = [_place(outer, e.geometry) for e in events]
            last_whole = max((i for i, p in enumerate(placed) if p is not None and p[0] is None), default=0)
            if events[last_whole].kind == "empty" and _covered(tensor, placed[last_whole + 1 :]):
                last_whole += 1  # torch.empty, then written part by part: every element written
            for event in events[last_whole:]:
                problem = self._resolve(tp, tensor, event, plan.pending)
                if problem:
                    problems.append(f"{key}: {problem}")
                    break
            plan[key] = tp
        if problems:
            raise TraceError(_problems_message(problems))
        if run_again:
            self.run_again(plan, model, names=names, materialize=materialize)
        return plan

    def _owns(self, event: _Event, key: str, owners: dict) -> bool:
        """Whether the unit that wrote ``event`` initializes tensor ``key``: a tied tensor is
        initialized by the module its (first) name belongs to, as when the model was built
        and tied afterwards (an Embedding's init, not the tied output Linear's)."""
        if event.unit is None or self.units[event.unit].module is None:
            return True
        prefix = owners.get(id(self.units[event.unit].module))
        return prefix is None or prefix == "" or key == prefix or key.startswith(prefix + ".")

    def _resolve(self, tp: TensorPlan, tensor, event: _Event, pending) -> str | None:
        outer = geometry(tensor)
        placed = _place(outer, event.geometry)
        if placed is None:
            if not _overlaps(outer, event.geometry):
                return None
            return f"written through a view that is not a block of it ({event.call})"
        index, perm = placed
        if index is None:
            tp.writes.clear()
        if event.kind == "init":
            init = event.init if event.geometry == outer else elementwise(event.init, event.geometry[1])
            if init is None:
                return f"{event.init.scheme} on a part or a reshaped view of it ({event.call}) needs the whole matrix"
            stream = None
            if event.stream is not None:
                source = self._tensors_by_storage.get(event.stream[0])
                if source is not None and source[1] != event.stream[1]:
                    return f"a copy of part of {source[0]}'s draw ({event.call}): fastinit cannot place it"
                stream = source[0] if source is not None and source[0] != tp.name else None
                if stream is not None and (
                    index is not None or event.geometry != outer or source[1][1] != outer[1]
                ):
                    return f"a copy of {stream}'s draw into a part or a reshape of it ({event.call}): fastinit cannot place it"
            tp.writes.append(Write(index, init=init, call=event.call, stream=stream))
        elif event.kind == "computed" and event.value is KEPT:
            tp.writes.append(Write(index, call=event.call, kept=True))
        elif event.kind == "computed" and event.value is not None:
            tp.writes.append(Write(index, value=_reorder(event.value, perm, tensor, index), call=event.call))
        elif (
            event.kind in ("computed", "derived") and event.unit is not None and self.units[event.unit].rerun
        ):
            call = event.call if not event.root else f"{event.call} of values drawn by {event.root}"
            write = Write(index, call=call)
            tp.writes.append(write)
            pending.setdefault(event.unit, []).append((tp.name, event.geometry, perm, write))
        elif event.kind == "empty":
            return f"no init call writes it (made by {event.call})"
        elif event.kind == "random":
            return f"drawn by {event.call}, which fastinit cannot map to a scheme"
        elif event.root:
            return (
                f"{event.call} of values drawn by {event.root}, outside any init call fastinit can run again"
            )
        else:
            return f"computed by {event.call}, outside any init call fastinit can run again"
        return None

    def run_again(self, plan: InitPlan, model, *, names=None, materialize=None) -> None:
        """Run each unit that wrote values the trace could not see (on ``meta``, or drawn by
        torch's random ops) again, on real memory, with fastinit's draws for torch's random ops;
        put the values it writes into ``plan``."""
        names = names or (lambda q: q)
        pending, plan.pending = plan.pending, {}
        qualnames = {id(m): names(q) for q, m in model.named_modules()}
        for u, writes in pending.items():
            unit = self.units[u]
            if materialize is not None and any(t.is_meta for t in _module_tensors(unit.module)):
                materialize(unit.module)
            tensors = {key: t for key, t, _ in named_tensors(model, names)}
            wanted = {storage_key(tensors[key]): key for key, _, _, _ in writes}
            tracked = {storage_key(t) for t in tensors.values()}
            rerun = _Rerun(prefix=qualnames.get(id(unit.module), ""), wanted=wanted, tracked=tracked)
            self._rerun = rerun
            try:
                with self, torch.no_grad():
                    unit.rerun()
            except TraceError as error:
                raise TraceError(f"{writes[0][0]}: {error} (in {unit.description})") from None
            finally:
                self._rerun = None
            for key, geometry, perm, write in writes:
                captured = rerun.take(storage_key(tensors[key]), geometry)
                if captured is None:
                    raise TraceError(f"{key}: {unit.description} did not write it again when run again")
                write.value = _reorder(captured, perm, tensors[key], write.index)


class _Rerun:
    """State of one unit running again: draws on temporaries from fastinit's stream
    ``(seed, "<module>#<k>")``, draws on the tensors it is run for (``wanted``: storage key ->
    name) from their own stream ``(seed, name)``; writes to other model tensors skipped, writes
    to ``wanted`` executed and captured."""

    def __init__(self, prefix: str, wanted: dict, tracked: set):
        self.prefix, self.wanted, self.tracked = prefix, wanted, tracked
        self.draws = 0
        self.captured: dict[int, list[tuple[tuple, torch.Tensor]]] = {}

    def take(self, key, geometry):
        """The last value the unit wrote at ``geometry`` of storage ``key`` (its final state)."""
        for g, value in reversed(self.captured.get(key, [])):
            if g == geometry:
                return value
        return None

    def _name(self, key=None) -> str:
        if key in self.wanted:
            return self.wanted[key]
        name = f"{self.prefix}#{self.draws}"
        self.draws += 1
        return name

    def _capture(self, key, view):
        if key in self.wanted:
            self.captured.setdefault(key, []).append((geometry(view), view.detach().clone()))

    def init_call(self, recorder, tensor, init, call):
        key = storage_key(tensor)
        if key in self.tracked and key not in self.wanted:
            return  # another model tensor: fastinit fills it from the plan
        if init is None:
            raise TraceError(f"{call} with a parameter fastinit cannot read")
        _fill_like(tensor, init, recorder.seed, self._name(key))
        self._capture(key, tensor)

    def call(self, recorder, func, name, args, kwargs):
        if name in _RANDOM_CREATION:
            return self._draw(recorder, func, name, args, kwargs)
        if name in _RANDOM_OTHER or name in _RANDOM_INPLACE:
            raise TraceError(
                f"torch.{name}: fastinit draws only what torch.rand / randn / normal_ / uniform_ draw"
            )
        target = _written(name, args, kwargs)
        if target is None:
            return func(*args, **kwargs)
        key = storage_key(target)
        if key in self.tracked and key not in self.wanted:
            return None if name == "__setitem__" else target  # not needed: left alone
        init = _method_init(name, args, kwargs)
        if init is not None and name in ("normal_", "uniform_"):
            _fill_like(target, init, recorder.seed, self._name(key))
            self._capture(key, target)
            return target
        out = func(*args, **kwargs)
        self._capture(
            key, target if name != "__setitem__" or not _is_basic_index(args[1]) else target[args[1]]
        )
        return out

    def _draw(self, recorder, func, name, args, kwargs):
        out = _placeholder(func, name, args, kwargs)
        scheme = _RANDOM_CREATION[name]
        _fill_like(out, get_initializer(scheme), recorder.seed, self._name())
        return out


def _fill_like(tensor, init: Initializer, seed: int, name: str):
    """Fill a plain tensor with ``init`` from fastinit's stream (float64 for other dtypes)."""
    from .torch_tensors import fill

    if tensor.is_meta:
        return
    if tensor.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        fill(tensor, init, seed=seed, name=name)
    else:
        staged = torch.empty(tensor.shape, dtype=torch.float64, device=tensor.device)
        fill(staged, init, seed=seed, name=name)
        tensor.copy_(staged)


def _placeholder(func, name, args, kwargs):
    """What a random op returns in a trace: uninitialized memory of its shape and dtype (torch's
    generator is never used)."""
    like = next(_tensors(args), None)
    if name.endswith("_like") or name in ("dropout", "rrelu", "native_dropout", "bernoulli", "poisson"):
        if like is not None:
            return torch.empty_like(like, dtype=kwargs.get("dtype"), device=kwargs.get("device"))
    if name in _RANDOM_CREATION:
        size = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)) else args
        size = kwargs.get("size", size)
        return torch.empty(
            tuple(int(s) for s in size), dtype=kwargs.get("dtype"), device=kwargs.get("device")
        )
    with torch.random.fork_rng(devices=[]):  # randint, randperm, ...: torch's generator untouched
        return func(*args, **kwargs)


def _method_init(name: str, args, kwargs) -> Initializer | None:
    """The initializer a ``Tensor`` method call means (``normal_``, ``uniform_``, ``zero_``,
    ``fill_`` with a number), else None."""
    if name == "normal_":
        bound = _bind_method(("mean", "std"), (0.0, 1.0), args[1:], kwargs)
        return get_initializer("normal", mean=float(bound["mean"]), std=float(bound["std"]))
    if name == "uniform_":
        bound = _bind_method(("from", "to"), (0.0, 1.0), args[1:], kwargs)
        return get_initializer("uniform", low=float(bound["from"]), high=float(bound["to"]))
    if name == "zero_":
        return get_initializer("zeros")
    if name == "fill_":
        value = args[1] if len(args) > 1 else kwargs.get("value")
        number = _number(value, "Tensor.fill_")
        return None if number is None else get_initializer("constant", value=number)
    return None


def named_tensors(model, names):
    """(reported name, tensor, is_buffer) for every parameter and buffer, each tensor once
    (a tied one under its first name); ``names`` maps qualified names to reported ones.

    >>> import torch
    >>> [(k, b) for k, _, b in named_tensors(torch.nn.BatchNorm1d(2), lambda q: q)][:3]
    [('weight', False), ('bias', False), ('running_mean', True)]
    """
    seen = set()
    for q, t in model.named_parameters():
        if id(t) not in seen:
            seen.add(id(t))
            yield names(q), t, False
    for q, t in model.named_buffers():
        if t is not None and id(t) not in seen:
            seen.add(id(t))
            yield names(q), t, True


def _module_tensors(module):
    yield from module.parameters()
    yield from (b for b in module.buffers() if b is not None)


def _overlaps(outer: tuple, inner: tuple) -> bool:
    def span(g):
        offset, shape, strides = g
        if math.prod(shape) == 0:
            return offset, offset
        return offset, offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True)) + 1

    a0, a1 = span(outer)
    b0, b1 = span(inner)
    return a0 < b1 and b0 < a1


def _is_c_contiguous(g: tuple) -> bool:
    _, shape, strides = g
    expected = 1
    for size, stride in zip(reversed(shape), reversed(strides), strict=True):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def _place(outer: tuple, inner: tuple):
    """``block(outer, inner)``, or (None, "reshape") for a reshaped view of all of it
    (``w.view(-1)``, ``w.unflatten(...)``: both in C order, the same elements)."""
    placed = block(outer, inner)
    if placed is None and _covers(outer, inner) and _is_c_contiguous(outer) and _is_c_contiguous(inner):
        return None, "reshape"
    return placed


def _reorder(value: torch.Tensor, perm, tensor, index) -> torch.Tensor:
    """Values captured in a view's order, in the order of ``tensor[index]``."""
    if perm == "reshape":
        return value.reshape(tuple(tensor.shape)).detach().to("cpu").clone()
    squeezed = value.reshape([n for n in value.shape if n != 1])
    shape = tuple(tensor[index].shape) if index is not None else tuple(tensor.shape)
    return squeezed.permute(perm).reshape(shape).detach().to("cpu").clone()


def _covered(tensor, placed) -> bool:
    """Whether the blocks ``placed`` (as from ``block``) together cover every element."""
    if not placed or any(p is None for p in placed):
        return False
    mask = np.zeros(tuple(tensor.shape), dtype=bool)
    for index, _ in placed:
        mask[index if index is not None else ...] = True
    return bool(mask.all())


def _problems_message(problems: list[str]) -> str:
    shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
    first = problems[0].split(":", 1)[0]
    return (
        f"the model's init code writes {len(problems)} tensor(s) in a way fastinit cannot reproduce: {shown}. "
        f"Give each an initializer with rules=, e.g. rules={{{first!r}: fastinit.get_initializer('normal', std=0.02)}}"
    )


# ---- where a copy's elements come from ---------------------------------------------------------

_COPIES = {"contiguous", "clone", "to", "cpu", "float", "bfloat16", "half", "double", "type"}


class CopyTracker(TorchFunctionMode):
    """While active, remembers for each copy (``contiguous()``, ``clone()``, ...) of a view
    which elements of which original storage it holds, so ``locate(t)`` places any view of it
    in the original: how transformers' save-time weight conversions (fused MoE experts split by
    ``chunk`` + ``contiguous``) map back to the model's tensors, on ``meta``."""

    def __init__(self):
        super().__init__()
        self._origin: dict[int, tuple[int, tuple]] = {}  # copy's storage -> (root storage, geometry)
        self._keep: list[torch.Tensor] = []

    def locate(self, t) -> tuple[int, tuple] | None:
        """(root storage key, geometry of ``t`` in the root storage), or None when ``t`` is
        not a block of what it was copied from."""
        key, g = storage_key(t), geometry(t)
        if key not in self._origin:
            return key, g
        root, (offset, shape, strides) = self._origin[key]
        contiguous = tuple(math.prod(shape[d + 1 :]) for d in range(len(shape)))
        placed = block((0, shape, contiguous), g)
        if placed is None:
            return None
        index, perm = placed
        index = index if index is not None else tuple(slice(0, n, 1) for n in shape)
        mapped = [d for d, x in enumerate(index) if isinstance(x, slice) and shape[d] > 1]
        for d, x in enumerate(index):
            offset += (x if isinstance(x, int) else x.start) * strides[d]
        squeezed = [i for i, n in enumerate(g[1]) if n != 1]
        root_strides = [0] * len(g[1])
        for j, d in enumerate(mapped):
            root_strides[squeezed[perm[j]]] = strides[d] * index[d].step
        return root, (offset, g[1], tuple(root_strides))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = _func_name(func)
        if name in _COPIES and args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
            source = args[0]
            if storage_key(out) != storage_key(source) and tuple(out.shape) == tuple(source.shape):
                placed = self.locate(source)
                if placed is not None:
                    self._origin[storage_key(out)] = placed
                    self._keep.append(out)
        return out
