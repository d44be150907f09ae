"""Manifests: what tensors a model has, and how each is initialized.

``manifest_from_config(config)`` reads a Hugging Face ``config.json`` (model types llama,
mistral, qwen2, gpt2) and lists the tensors exactly as transformers' ``save_pretrained`` of the
matching ``*ForCausalLM`` writes them: names, shapes, dtype, tied embeddings left out, qwen2's
q/k/v biases, gpt2's Conv1D weights stored (in, out). Each tensor gets the initialization of the
family's ``_init_weights``: normal(0, initializer_range) for linear and embedding weights (an
embedding's padding row zeroed), zeros for biases, ones for norm weights, and gpt2's residual
projections (``c_proj``) with std initializer_range / sqrt(2 * n_layer).

``manifest_from_json(spec)`` takes ``{"tensors": [{"name", "shape", "dtype", "init": {"scheme",
...params}}], "dtype": default, "config": {...}}`` (or the bare list) for any architecture.
``with_overrides(manifest, {"*.o_proj.weight": initializer})`` replaces per-tensor rules by name
pattern.
"""

from __future__ import annotations

import fnmatch
import json
import math
import numbers
from dataclasses import dataclass, field, replace

from ..dtypes import DType, resolve_dtype
from ..schemes import Initializer, get_initializer

__all__ = [
    "CheckpointError",
    "TensorSpec",
    "Manifest",
    "manifest_from_config",
    "manifest_from_json",
    "with_overrides",
    "FAMILIES",
]

FAMILIES = ("llama", "mistral", "qwen2", "gpt2")
# Refused up front, before any list is built: beyond any real model, and what a crafted config or
# manifest would use to exhaust time or memory.
MAX_TENSORS = 1_000_000
MAX_TOTAL_BYTES = 1 << 50  # 1 PiB


class CheckpointError(ValueError):
    """A problem with a model config, a manifest or the output directory, in one line."""


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a checkpoint: name, shape, dtype, initializer, rows zeroed after drawing."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    init: Initializer
    zero_rows: tuple[int, ...] = ()

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def check(self) -> None:
        """Raise CheckpointError naming this tensor if it cannot be written: zero_rows out of
        its rows, or an initializer that refuses its shape, dtype or parameters (found by a
        call that selects no element, so nothing is generated)."""
        if self.name == "__metadata__":  # safetensors' key for the header's metadata
            raise CheckpointError(
                "a tensor cannot be named '__metadata__' (safetensors keeps it for metadata)"
            )
        self.check_rows()
        index = (slice(0, 0),) if self.shape else None
        try:
            self.init(self.shape, dtype=self.dtype, name=self.name, index=index)
        except (TypeError, ValueError, ArithmeticError) as error:
            raise CheckpointError(f"tensor {self.name!r}: {error}") from None

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
        """What the checkpoint header records to regenerate this tensor."""
        record = {"init": self.init.to_config()}
        if self.zero_rows:
            record["zero_rows"] = list(self.zero_rows)
        return record


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


def _get_int(config: dict, key: str, family: str, default=None, *, positive: bool = True) -> int:
    value = config.get(key, default)
    if value is None:
        raise CheckpointError(f"config: missing '{key}' (required for model_type {family})")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (positive and value <= 0):
        raise CheckpointError(f"config: '{key}' must be a positive integer, got {value!r}")
    return int(value)


def _get_float(config: dict, key: str, default: float) -> float:
    value = config.get(key, default)
    if value is None:
        value = default
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise CheckpointError(f"config: '{key}' must be a non-negative number, got {value!r}")
    return float(value)


def _config_dtype(config: dict, dtype) -> DType:
    # transformers writes "dtype" (new) or "torch_dtype" (old); a null one says nothing
    chosen = next(
        (d for d in (dtype, config.get("dtype"), config.get("torch_dtype")) if d is not None), "float32"
    )
    try:
        return resolve_dtype(chosen, argname="dtype")
    except TypeError as error:
        raise CheckpointError(str(error)) from None


def _check_layers(layers: int, key: str, per_layer: int) -> None:
    if layers * per_layer > MAX_TENSORS:
        raise CheckpointError(
            f"config: '{key}' {layers} is not plausible (more than {MAX_TENSORS:,} tensors)"
        )


def _check_total(specs: list[TensorSpec], what: str) -> None:
    total = sum(spec.nbytes for spec in specs)
    if total > MAX_TOTAL_BYTES:
        raise CheckpointError(f"{what}: {total:.3g} bytes of tensors is not plausible (more than 1 PiB)")


def _padding_rows(pad, vocab: int) -> tuple[int, ...]:
    """The row nn.Embedding(vocab, d, padding_idx=pad) zeroes: pad, or pad + vocab when
    negative; a pad outside [-vocab, vocab) is refused, as torch refuses it."""
    if pad is None or isinstance(pad, bool) or not isinstance(pad, numbers.Integral):
        return ()
    if not -vocab <= pad < vocab:
        raise CheckpointError(f"config: pad_token_id {pad} is outside the vocabulary [-{vocab}, {vocab})")
    return (int(pad) % vocab,)


def _llama_like(config: dict, family: str, dtype: DType) -> list[TensorSpec]:
    hidden = _get_int(config, "hidden_size", family)
    inter = _get_int(config, "intermediate_size", family)
    layers = _get_int(config, "num_hidden_layers", family)
    _check_layers(layers, "num_hidden_layers", per_layer=16)
    heads = _get_int(config, "num_attention_heads", family)
    kv_heads = _get_int(config, "num_key_value_heads", family, heads)
    vocab = _get_int(config, "vocab_size", family)
    head_dim = config.get("head_dim") or None
    if head_dim is None:
        if hidden % heads:
            raise CheckpointError(
                f"config: hidden_size {hidden} is not divisible by num_attention_heads {heads} (and no head_dim)"
            )
        head_dim = hidden // heads
    head_dim = _get_int({"head_dim": head_dim}, "head_dim", family)
    if heads % kv_heads:
        raise CheckpointError(
            f"config: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
        )
    std = _get_float(config, "initializer_range", 0.02)
    qkv_bias = True if family == "qwen2" else bool(config.get("attention_bias", False))
    o_bias = False if family == "qwen2" else bool(config.get("attention_bias", False))
    mlp_bias = bool(config.get("mlp_bias", False)) if family == "llama" else False
    tie = bool(config.get("tie_word_embeddings", False))
    zero_rows = _padding_rows(config.get("pad_token_id"), vocab)

    weight = get_initializer("normal", mean=0.0, std=std)
    zeros, ones = get_initializer("zeros"), get_initializer("ones")
    specs = [TensorSpec("model.embed_tokens.weight", (vocab, hidden), dtype, weight, zero_rows)]

    def linear(name, out_features, in_features, bias):
        specs.append(TensorSpec(f"{name}.weight", (out_features, in_features), dtype, weight))
        if bias:
            specs.append(TensorSpec(f"{name}.bias", (out_features,), dtype, zeros))

    for i in range(layers):
        p = f"model.layers.{i}"
        linear(f"{p}.self_attn.q_proj", heads * head_dim, hidden, qkv_bias)
        linear(f"{p}.self_attn.k_proj", kv_heads * head_dim, hidden, qkv_bias)
        linear(f"{p}.self_attn.v_proj", kv_heads * head_dim, hidden, qkv_bias)
        linear(f"{p}.self_attn.o_proj", hidden, heads * head_dim, o_bias)
        linear(f"{p}.mlp.gate_proj", inter, hidden, mlp_bias)
        linear(f"{p}.mlp.up_proj", inter, hidden, mlp_bias)
        linear(f"{p}.mlp.down_proj", hidden, inter, mlp_bias)
        specs.append(TensorSpec(f"{p}.input_layernorm.weight", (hidden,), dtype, ones))
        specs.append(TensorSpec(f"{p}.post_attention_layernorm.weight", (hidden,), dtype, ones))
    specs.append(TensorSpec("model.norm.weight", (hidden,), dtype, ones))
    if not tie:
        specs.append(TensorSpec("lm_head.weight", (vocab, hidden), dtype, weight))
    return specs


def _gpt2(config: dict, dtype: DType) -> list[TensorSpec]:
    n = _get_int(config, "n_embd", "gpt2", config.get("hidden_size"))
    layers = _get_int(config, "n_layer", "gpt2", config.get("num_hidden_layers"))
    _check_layers(layers, "n_layer", per_layer=12)
    positions = _get_int(config, "n_positions", "gpt2", config.get("n_ctx"))
    vocab = _get_int(config, "vocab_size", "gpt2")
    inner = config.get("n_inner") or 4 * n
    inner = _get_int({"n_inner": inner}, "n_inner", "gpt2")
    std = _get_float(config, "initializer_range", 0.02)
    tie = bool(config.get("tie_word_embeddings", True))
    weight = get_initializer("normal", mean=0.0, std=std)
    residual = get_initializer("normal", mean=0.0, std=std / math.sqrt(2 * layers))
    zeros, ones = get_initializer("zeros"), get_initializer("ones")
    specs = [
        TensorSpec("transformer.wte.weight", (vocab, n), dtype, weight),
        TensorSpec("transformer.wpe.weight", (positions, n), dtype, weight),
    ]

    def conv1d(name, in_features, out_features, init):  # GPT-2's Conv1D stores (in, out)
        specs.append(TensorSpec(f"{name}.weight", (in_features, out_features), dtype, init))
        specs.append(TensorSpec(f"{name}.bias", (out_features,), dtype, zeros))

    def layernorm(name):
        specs.append(TensorSpec(f"{name}.weight", (n,), dtype, ones))
        specs.append(TensorSpec(f"{name}.bias", (n,), dtype, zeros))

    for i in range(layers):
        p = f"transformer.h.{i}"
        layernorm(f"{p}.ln_1")
        conv1d(f"{p}.attn.c_attn", n, 3 * n, weight)
        conv1d(f"{p}.attn.c_proj", n, n, residual)
        layernorm(f"{p}.ln_2")
        conv1d(f"{p}.mlp.c_fc", n, inner, weight)
        conv1d(f"{p}.mlp.c_proj", inner, n, residual)
    layernorm("transformer.ln_f")
    if not tie:
        specs.append(TensorSpec("lm_head.weight", (vocab, n), dtype, weight))
    return specs


def manifest_from_config(config: dict, *, dtype=None) -> Manifest:
    """The tensors of a Hugging Face config (a dict, as read from config.json).

    ``dtype`` overrides the config's ``dtype`` / ``torch_dtype`` (default float32).

    >>> m = manifest_from_config({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    ...     "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}, dtype="bfloat16")
    >>> len(m), m.tensors[0].name, m.tensors[0].shape, m.tensors[0].dtype.name
    (21, 'model.embed_tokens.weight', (100, 64), 'bfloat16')
    """
    if not isinstance(config, dict):
        raise CheckpointError(f"config must be a JSON object, got {type(config).__name__}")
    family = config.get("model_type")
    if family not in FAMILIES:
        raise CheckpointError(
            f"config: model_type {family!r} is not supported; supported: {', '.join(FAMILIES)} "
            "(use a JSON manifest for other architectures)"
        )
    dt = _config_dtype(config, dtype)
    specs = _gpt2(config, dt) if family == "gpt2" else _llama_like(config, family, dt)
    _check_total(specs, "config")
    written = dict(config)
    written["dtype"] = dt.name
    written.pop("torch_dtype", None)
    written.setdefault("architectures", [_ARCHITECTURES[family]])
    return Manifest(specs, written, source=f"{family} config")


_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "gpt2": "GPT2LMHeadModel",
}


# ---- JSON manifests ---------------------------------------------------------------------------


def manifest_from_json(spec, *, dtype=None) -> Manifest:
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
        spec = TensorSpec(name, tuple(shape), dt, initializer, tuple(zero_rows))
        total += spec.nbytes
        if total > MAX_TOTAL_BYTES:
            raise CheckpointError(f"manifest: tensor {name!r}: more than 1 PiB of tensors is not plausible")
        try:  # a custom function known only by name is refused when written, not when read
            spec.check() if initializer.resolved else spec.check_rows()
        except CheckpointError as error:
            raise CheckpointError(f"manifest: {error}") from None
        specs.append(spec)
    if config is not None and not isinstance(config, dict):
        raise CheckpointError(
            f"manifest: 'config' must be an object (a config.json), got {type(config).__name__}"
        )
    return Manifest(specs, config, source="JSON manifest")


def with_overrides(manifest: Manifest, overrides: dict) -> Manifest:
    """A copy of ``manifest`` whose tensors matching a name pattern (``fnmatch``) get that
    pattern's initializer (an Initializer, a scheme name or a config dict); first match wins.

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
                spec = replace(spec, init=init, zero_rows=())
                break
        tensors.append(spec)
    return Manifest(tensors, manifest.config, manifest.source, dict(manifest.extra))
