"""transformers adapter: any model transformers can build, initialized as its own code does.

Imported on demand (``import fastinit.transformers``), never by ``import fastinit``.

``from_config(config, seed=0)`` gives the model ``AutoModelForCausalLM.from_config(config)``
would give, built once on real memory with its init code traced (``fastinit.trace``): every
random tensor is drawn by fastinit, from the stream ``(seed, state_dict key)``, with the
distribution the model's own ``_init_weights`` (or a layer's ``reset_parameters``) asks for;
what the model computes (rotary ``inv_freq``, Mamba's ``A_log``) is its own. Independent of
torch's global random generator, and much faster than torch's single-threaded init.

``manifest_from_config(config)`` lists, for ``fastinit checkpoint``, the tensors
``save_pretrained`` would write for that model (tied weights left out, fused MoE experts split
into the hub's per-expert tensors) with the traced initializers, from a model built on
``meta``: seconds for a 405B-parameter config, no memory.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import threading

try:
    import torch
    import transformers
    import transformers.initialization  # transformers >= 5: every init call goes through it
    from huggingface_hub import constants as hf_constants
    from huggingface_hub.errors import OfflineModeIsEnabled
    from transformers.modeling_utils import PreTrainedModel
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    missing = "transformers >= 5" if error.name == "transformers.initialization" else error.name
    raise ImportError(
        f'fastinit.transformers needs torch and transformers >= 5 ({missing} is missing): pip install "fastinit[transformers]"'
    ) from None

from . import trace
from .torch_models import canonical_names, fill_traced

__all__ = ["from_config", "load_config", "manifest_from_config", "init_weights_units", "initialize_weights"]


# ---- configs -----------------------------------------------------------------------------------


def load_config(config) -> transformers.PretrainedConfig:
    """A ``PretrainedConfig`` (copied), a dict with ``model_type``, or the path of a
    config.json or of a directory holding one. Never runs code from the hub or a directory.

    >>> import fastinit.transformers as ft
    >>> ft.load_config({"model_type": "llama", "hidden_size": 64}).hidden_size
    64
    """
    if isinstance(config, transformers.PretrainedConfig):
        return copy.deepcopy(config)
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        try:
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
        except OSError as error:
            raise ValueError(f"config: cannot read {path}: {error.strerror}") from None
        except ValueError:
            raise ValueError(f"config: {path} is not valid JSON") from None
    if not isinstance(config, dict):
        raise TypeError(f"config must be a PretrainedConfig, a dict or a path, got {type(config).__name__}")
    config = dict(config)
    model_type = config.pop("model_type", None)
    if not isinstance(model_type, str):
        raise ValueError("config: no 'model_type' (which architecture to build)")
    _strip_code(config)
    if "torch_dtype" in config and "dtype" not in config:
        config["dtype"] = config.pop("torch_dtype")
    try:
        with hub_offline():
            return transformers.AutoConfig.for_model(model_type, **config)
    except Exception as error:  # transformers' validators raise several types: one line each
        raise ValueError(f"config: {_hub_refusal(error) or _one_line(error)}") from None


def _hub_refusal(error: BaseException) -> str | None:
    """What to say when ``error`` comes from a Hub request ``hub_offline`` stopped, else None."""
    while error is not None:
        if isinstance(error, OfflineModeIsEnabled):
            url = str(error).split("Cannot reach ", 1)[-1].split(": offline mode", 1)[0]
            return (
                f"it names a Hugging Face Hub repository ({url}), which fastinit never downloads: "
                "a config is read as data; give the sub-config itself (e.g. backbone_config)"
            )
        error = error.__cause__ or error.__context__
    return None


_OFFLINE_LOCK = threading.RLock()


@contextlib.contextmanager
def hub_offline():
    """The Hugging Face Hub unreachable inside: every request huggingface_hub would make raises
    OfflineModeIsEnabled before any connection (or name lookup).

    A config file can name a Hub repository (a ``backbone`` checkpoint of upernet, dpt, detr,
    ...) that transformers looks up while building the config or the model; a file is data, so
    fastinit never lets it reach the network. huggingface_hub reads its offline flag at each
    request, so setting it for the duration is enough.

    >>> from huggingface_hub import constants
    >>> with hub_offline():
    ...     constants.is_offline_mode()
    True
    """
    with _OFFLINE_LOCK:
        before = hf_constants.HF_HUB_OFFLINE
        hf_constants.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            hf_constants.HF_HUB_OFFLINE = before


# Keys of a config file that make transformers import, download or run code (remote code, hub
# kernels), or that describe weights fastinit does not write (quantized): never taken from a file.
_CODE_KEYS = ("auto_map", "custom_pipelines", "trust_remote_code", "attn_implementation", "_attn_implementation",
              "_attn_implementation_internal", "use_kernels", "kernel_config", "experts_implementation",
              "_experts_implementation", "quantization_config")  # fmt: skip


def _strip_code(config: dict) -> None:
    for key in _CODE_KEYS:
        config.pop(key, None)
    for value in config.values():  # sub-configs (text_config, vision_config, ...)
        if isinstance(value, dict):
            _strip_code(value)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _model_class(config, auto_class):
    """The class to build: ``auto_class``, else the config's ``architectures`` when it names a
    transformers model, else ``AutoModelForCausalLM``."""
    if auto_class is not None:
        return auto_class
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None) if isinstance(name, str) else None
        if isinstance(cls, type) and issubclass(cls, PreTrainedModel):
            return cls
    return transformers.AutoModelForCausalLM


def _torch_dtype(dtype):
    """None, a torch dtype, or its name ('bfloat16')."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    named = getattr(torch, dtype, None) if isinstance(dtype, str) else None
    if not isinstance(named, torch.dtype):
        raise TypeError(f"dtype={dtype!r} is not a torch dtype (e.g. torch.bfloat16 or 'bfloat16')")
    return named


def _traced_build(config, *, seed, dtype, device, auto_class):
    """(model, recorder): the model for ``config`` built on ``device`` with its constructor's
    init code (``post_init`` included) recorded."""
    config = load_config(config)
    cls = _model_class(config, auto_class)
    dtype = _torch_dtype(dtype)
    recorder = trace.Recorder(seed)
    with hub_offline(), trace.exclusive(), torch.device(device), init_weights_units(recorder), recorder:
        with recorder.unit(f"the constructor of {getattr(cls, '__name__', cls)}", None, None):
            try:
                model = _build(cls, config, dtype)
            except Exception as error:
                if refusal := _hub_refusal(error):
                    raise ValueError(f"config: {refusal}") from None
                raise
    return model, recorder


def _build(cls, config, dtype):
    kwargs = {} if dtype is None else {"dtype": dtype}
    if hasattr(cls, "from_config") and not issubclass(cls, PreTrainedModel):
        return cls.from_config(config, **kwargs)  # an auto class
    return cls._from_config(config, **kwargs)


# ---- units of init code ------------------------------------------------------------------------


@contextlib.contextmanager
def init_weights_units(recorder: trace.Recorder):
    """While active, each ``_init_weights(module)`` call of a transformers model is one unit of
    ``recorder``'s trace (which it can run again)."""
    original = PreTrainedModel._initialize_weights
    owner = threading.get_ident()

    @functools.wraps(original)
    def _initialize_weights(self, module, is_custom_code=False):
        if getattr(module, "_is_hf_initialized", False) or threading.get_ident() != owner:
            return original(self, module, is_custom_code)
        what = f"{type(self).__name__}._init_weights({type(module).__name__})"
        with recorder.unit(what, module, functools.partial(self._init_weights, module)):
            return original(self, module, is_custom_code)

    PreTrainedModel._initialize_weights = _initialize_weights
    try:
        yield
    finally:
        PreTrainedModel._initialize_weights = original


def initialize_weights(model: PreTrainedModel, recorder: trace.Recorder) -> None:
    """Run ``model.initialize_weights()`` under ``recorder`` for every module (the flags
    transformers sets on initialized modules are put back afterwards; parameters flagged as
    loaded stay skipped, as transformers skips them)."""
    missing = object()
    flags = {m: m.__dict__.get("_is_hf_initialized", missing) for m in model.modules()}
    try:
        for m in flags:
            m._is_hf_initialized = False
        with trace.exclusive(), init_weights_units(recorder), recorder:
            try:
                model.initialize_weights()
            except trace.TraceError:
                raise
            except Exception as error:
                raise trace.TraceError(
                    f"{type(model).__name__}.initialize_weights() failed while traced: {_one_line(error)}"
                ) from error
    finally:
        for m, flag in flags.items():
            if flag is missing:
                m.__dict__.pop("_is_hf_initialized", None)
            else:
                m._is_hf_initialized = flag


# ---- models ------------------------------------------------------------------------------------


def from_config(config, *, seed: int = 0, dtype=None, device="cpu", auto_class=None, rules=None):
    """The transformers model for ``config``, every tensor drawn by fastinit as the model's own
    init code would draw it; returns the model (in training mode, as transformers'
    ``from_config`` gives it).

    ``config``: a ``PretrainedConfig``, a dict with ``model_type``, or the path of a config.json
    or a model directory. The class is ``auto_class`` (e.g. ``AutoModelForMaskedLM``), else the
    config's ``architectures``, else ``AutoModelForCausalLM``. ``dtype`` (a torch dtype or its
    name; default: the config's) and ``device`` as for transformers. Each random tensor equals
    ``fastinit.<scheme>(shape, params..., seed=seed, name=<state_dict key>)``; ``rules`` (as for
    ``fastinit.torch.init_module``) replaces the traced initializer of matching tensors.

    >>> import fastinit, fastinit.transformers
    >>> cfg = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    ...        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128}
    >>> model = fastinit.transformers.from_config(cfg, seed=0)
    >>> w = model.model.layers[1].mlp.down_proj.weight
    >>> w.detach().numpy().tobytes() == fastinit.normal(
    ...     (64, 128), 0.0, 0.02, seed=0, name="model.layers.1.mlp.down_proj.weight").tobytes()
    True
    """
    model, recorder = _traced_build(config, seed=seed, dtype=dtype, device=device, auto_class=auto_class)
    return fill_traced(model, recorder, seed=seed, rules=rules)


# ---- checkpoint manifests ----------------------------------------------------------------------


def saved_tensors(model: PreTrainedModel):
    """(name -> tensor, as ``save_pretrained`` would write them: tied weights left out, weight
    conversions (fused MoE experts -> the hub's per-expert tensors) reverted; a
    ``trace.CopyTracker`` placing each in the model's own tensors)."""
    from transformers.core_model_loading import revert_weight_conversion
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    state = model.state_dict()
    for ignored in model._keys_to_ignore_on_save or ():
        state.pop(ignored, None)
    state = remove_tied_weights_from_state_dict(state, model)
    with trace.CopyTracker() as copies:
        saved = revert_weight_conversion(model, state)
    return saved, copies


def trace_meta(config, *, seed: int = 0, dtype=None, auto_class=None):
    """(model, plan, placements): the model built on ``meta`` with its init code traced, the
    plan of the tensors ``save_pretrained`` writes, and for each saved name the model tensor
    it comes from with its place there (``trace.block``). Values the trace cannot see on meta
    come from running the call that wrote them again on real copies of those modules only."""
    model, recorder = _traced_build(config, seed=seed, dtype=dtype, device="meta", auto_class=auto_class)
    initialize_weights(model, recorder)  # transformers skips it on meta
    names = canonical_names(list(model.named_modules()))
    by_storage = {trace.storage_key(t): (key, t) for key, t, _ in trace.named_tensors(model, names)}
    saved, copies = saved_tensors(model)
    placements = {}
    for name, view in saved.items():
        located = copies.locate(view)
        if located is None or located[0] not in by_storage:
            raise trace.TraceError(
                f"{name}: saved by a weight conversion fastinit cannot place in the model's tensors"
            )
        key, tensor = by_storage[located[0]]
        placed = trace.block(trace.geometry(tensor), located[1])
        if placed is None:
            raise trace.TraceError(f"{name}: saved as a view of {key} that is not a block of it")
        placements[name] = (key, tuple(tensor.shape), tensor.dtype, tuple(view.shape), placed)
    needed = {key for key, *_ in placements.values()}
    skip = {key for key, _, _ in trace.named_tensors(model, names) if key not in needed}
    plan = recorder.plan(model, names=names, skip=skip, materialize=lambda m: m.to_empty(device="cpu"))
    missing = [key for key in plan.unwritten if key not in skip]
    if missing:
        raise trace.TraceError(f"no init code writes {', '.join(missing[:10])}")
    return model, plan, placements


def manifest_from_config(config, *, dtype=None, seed: int = 0, auto_class=None):
    """The ``fastinit.checkpoint.Manifest`` of a transformers config: every tensor
    ``save_pretrained`` writes, with the traced initializers (a split expert tensor is its
    block of the fused tensor's stream). ``seed`` matters only for values the model derives
    from random draws (Mamba's ``dt_proj.bias``), recorded literally.

    >>> import fastinit.transformers as ft
    >>> m = ft.manifest_from_config({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    ...     "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}, dtype="bfloat16")
    >>> len(m), m.tensors[0].name, m.tensors[0].shape, m.tensors[0].dtype.name
    (21, 'model.embed_tokens.weight', (100, 64), 'bfloat16')
    """
    from .checkpoint.manifest import Manifest, TensorSource, TensorSpec
    from .dtypes import resolve_dtype

    model, plan, placements = trace_meta(config, seed=seed, dtype=dtype, auto_class=auto_class)
    specs = []
    for name, (key, shape, torch_dtype, stored, (index, perm)) in placements.items():
        tp = plan[key]
        writes = [
            (w.index, w.init if w.init is not None else w.values_initializer(tp.shape)) for w in tp.writes
        ]
        if not writes or writes[0][0] is not None:
            raise trace.TraceError(f"{key}: no init call writes all of it")
        dt = resolve_dtype(torch_dtype, argname=f"dtype of {name}")
        base, overlays = writes[0][1], list(writes[1:])
        if index is None and perm == tuple(range(len(perm))) and name == key and stored == shape:
            zero_rows = []
            while overlays and _zeroes_one_row(*overlays[-1], shape):
                zero_rows.insert(0, overlays.pop()[0][0])
            specs.append(TensorSpec(name, stored, dt, base, tuple(zero_rows), writes=tuple(overlays)))
            continue
        index, axes = _source_layout(index, perm, shape, stored, name)
        source = TensorSource(key, shape, index, axes)
        specs.append(TensorSpec(name, stored, dt, base, writes=tuple(overlays), source=source))
    written = json.loads(model.config.to_json_string(use_diff=False))
    written["architectures"] = [type(model).__name__]
    return Manifest(specs, written, source=f"{model.config.model_type} config (traced)")


def _zeroes_one_row(index, init, shape) -> bool:
    """Whether an overlay sets one whole row to zero (an embedding's padding row): recorded as
    the manifest's ``zero_rows``, as checkpoints always recorded it."""
    return (
        init.constant_value == 0
        and isinstance(index[0], int)
        and all(
            isinstance(i, slice) and (i.start, i.stop, i.step) == (0, n, 1)
            for i, n in zip(index[1:], shape[1:], strict=True)
        )
    )


def _source_layout(index, perm, shape, stored, name):
    """(index, axes) of a ``TensorSource`` giving the stored tensor of shape ``stored`` from
    the block ``index`` of a tensor of ``shape`` (``perm`` as from ``trace.block``: the
    order of the stored tensor's dimensions longer than 1). Dimensions of length 1 are matched
    in order; those the stored tensor does not have are dropped (an int index)."""
    index = list(index if index is not None else (slice(0, n, 1) for n in shape))
    mapped = [d for d, x in enumerate(index) if isinstance(x, slice) and shape[d] > 1]
    units = [d for d, x in enumerate(index) if isinstance(x, slice) and shape[d] == 1]
    ones = [i for i, n in enumerate(stored) if n == 1]
    if len(ones) > len(units):
        raise trace.TraceError(f"{name}: saved with more dimensions of length 1 than fastinit can place")
    for d in units[len(ones) :]:
        index[d] = 0
    squeezed = [i for i, n in enumerate(stored) if n != 1]
    outer_of = dict(zip(ones, units, strict=False))
    for j, d in enumerate(mapped):
        outer_of[squeezed[perm[j]]] = d
    kept = sorted(outer_of.values())
    axes = tuple(kept.index(outer_of[i]) for i in range(len(stored)))
    return tuple(index), axes
