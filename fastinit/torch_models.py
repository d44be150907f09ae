"""Whole torch models initialized as their own init code initializes them: ``init_module``,
``build``, ``trace_module``, ``apply_plan`` (the trace is ``fastinit.trace``; the writes go
through ``fastinit.torch_tensors``). Public through ``fastinit.torch``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from . import trace
from .schemes import Initializer
from .schemes.registry import SCHEMES
from .torch_tensors import as_initializer, copy_values, fill

__all__ = [
    "InitReport",
    "init_module",
    "build",
    "trace_module",
    "apply_plan",
    "fill_traced",
    "canonical_names",
]


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
            return as_initializer(value)
    for key, value in rules.items():
        if isinstance(key, type) and isinstance(owner, key):
            if isinstance(value, Mapping) and "scheme" not in value:
                for pattern, init in value.items():
                    if fnmatch.fnmatchcase(local, pattern):
                        return as_initializer(init)
            elif local == "weight":
                return as_initializer(value)
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
                copy_values(t, write.value.to(t.dtype), write.index)
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
