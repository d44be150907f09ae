"""The checkpoint writer: manifests, the safetensors files, safety on failure, verification.

What is checked, and against what:

- Manifests from Hugging Face configs (llama, mistral, qwen2, gpt2): tiny models are built with
  ``transformers.AutoModelForCausalLM.from_config`` and written with ``save_pretrained``; the
  manifest must list exactly the saved tensors (names, shapes, dtypes). Preset shapes are checked
  against transformers models built on the meta device and the parameter counts published on
  each model's card.
- Initialization: every written tensor follows the rule of the family's ``_init_weights`` as
  restated in ``expected_rule`` below (normal(0, initializer_range) for linear and embedding
  weights, zeros for biases, ones for norm weights, gpt2's c_proj with std
  initializer_range / sqrt(2 * n_layer), the embedding's padding row zeroed), checked by moments
  and, against the tensors transformers itself initialized, by a two-sample KS test.
- The files: parsed here with struct + json (not with fastinit's own reader), compared with
  ``safetensors`` (numpy / torch writers and numpy / torch / flax loaders), loaded by
  ``from_pretrained`` with no missing or unexpected keys, and pinned by a sha256.
- Every tensor's bytes equal the functional API's output for its recorded initializer, and do not
  depend on the thread count, the chunk size or the shard size.
- Safety: interrupted, killed, disk-full and unwritable runs leave no complete-looking file;
  ``resume`` keeps only intact shards; stale shards of an earlier layout are removed.
- ``verify_checkpoint`` finds every changed tensor by name and refuses files it did not write.

Statistical thresholds: each moment check allows 5 standard errors (two-sided p = 5.7e-7 for a
correct sampler); KS tests require p > 1e-6. About 300 such checks run, so a correct
implementation fails one with probability < 2e-4; seeds are fixed, so the outcome is
deterministic.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
import transformers
from safetensors import safe_open
from scipy import stats

import fastinit
import fastinit.checkpoint as ck
from fastinit.checkpoint import writer

MOMENT_SE = 5.0  # allowed standard errors: two-sided p = 5.7e-7 under the null
KS_P_MIN = 1e-6  # a correct sampler fails one KS test with probability 1e-6

ST_CODES = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16"}
NP_OF_CODE = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}
TORCH_OF_CODE = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}


# ---- helpers: an independent safetensors reader ----------------------------------------------------


@dataclass
class Parsed:
    """A safetensors file read with struct + json: header length, metadata, entries, tensor bytes."""

    header_len: int
    metadata: dict
    entries: dict  # name -> {"dtype", "shape", "data_offsets"}
    data: bytes
    order: list  # names in data order

    def tensor(self, name: str) -> bytes:
        begin, end = self.entries[name]["data_offsets"]
        return self.data[begin:end]

    def values(self, name: str) -> np.ndarray:
        """float64 values of a tensor (bfloat16 decoded from its bit patterns)."""
        code, shape = self.entries[name]["dtype"], self.entries[name]["shape"]
        raw = self.tensor(name)
        if code == "BF16":
            x = (np.frombuffer(raw, "<u2").astype(np.uint32) << np.uint32(16)).view(np.float32)
        else:
            x = np.frombuffer(raw, NP_OF_CODE[code])
        return x.astype(np.float64).reshape(shape)


def parse(path) -> Parsed:
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    text = raw[8 : 8 + n]
    assert n % 8 == 0 and text[:1] == b"{", "header must start with '{' and be padded to 8 bytes"
    header = json.loads(text)
    metadata = header.pop("__metadata__", {})
    order = sorted(header, key=lambda k: header[k]["data_offsets"][0])
    return Parsed(n, metadata, header, raw[8 + n :], order)


def all_tensors(directory) -> dict[str, bytes]:
    """name -> raw bytes over every .safetensors file of a directory (names must be unique)."""
    out = {}
    for path in sorted(Path(directory).glob("*.safetensors")):
        p = parse(path)
        for name in p.entries:
            assert name not in out, f"{name} appears in two files"
            out[name] = p.tensor(name)
    return out


def listing(directory) -> list[str]:
    """The directory's entries but the writer's hash records (``.<shard>.fastinit-xxh3``)."""
    return sorted(e for e in os.listdir(directory) if not e.endswith(".fastinit-xxh3"))


def expected_bytes(spec: ck.TensorSpec, seed: int) -> bytes:
    """The tensor as the functional API gives it, zero rows applied: what the file must hold."""
    arr = spec.init(spec.shape, seed=seed, name=spec.name, dtype=spec.dtype)
    values = np.array(arr.raw, copy=True).reshape(spec.shape)
    for row in spec.zero_rows:
        values[row] = 0
    return values.tobytes()


def small_manifest(n=4, rows=32, cols=32, dtype="float32", config=None):
    """n normal tensors of (rows, cols): 4 KiB each in float32."""
    tensors = [
        {"name": f"layer{i}.weight", "shape": [rows, cols], "init": {"scheme": "normal", "std": 0.02}}
        for i in range(n)
    ]
    return ck.manifest_from_json({"tensors": tensors, "dtype": dtype, "config": config})


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text, f"error message is not one line: {text!r}"
    return text


# ---- Hugging Face families --------------------------------------------------------------------------

# id -> (model_type, kwargs of the transformers config): tiny models, one feature each
HF_CONFIGS = {
    "llama-mha-untied-pad": ("llama", dict(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        vocab_size=96, pad_token_id=5, initializer_range=0.05)),
    "llama-gqa-tied-attention_bias-mlp_bias": ("llama", dict(
        hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=96, tie_word_embeddings=True, attention_bias=True,
        mlp_bias=True)),
    "llama-head_dim12-kv1-bf16": ("llama", dict(
        hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=1, head_dim=12, vocab_size=96, dtype="bfloat16")),
    "mistral-head_dim16-gqa": ("mistral", dict(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=96)),
    "mistral-tied-pad0-bf16": ("mistral", dict(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, vocab_size=96, tie_word_embeddings=True, pad_token_id=0, dtype="bfloat16")),
    "qwen2-gqa-untied": ("qwen2", dict(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=96)),
    "qwen2-tied-kv1-pad": ("qwen2", dict(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, vocab_size=96, tie_word_embeddings=True, initializer_range=0.03,
        pad_token_id=7)),
    "gpt2-tied": ("gpt2", dict(
        n_embd=32, n_layer=2, n_head=4, n_positions=24, vocab_size=96, bos_token_id=0,
        eos_token_id=0, pad_token_id=3)),
    "gpt2-untied-n_inner-3layers-fp16": ("gpt2", dict(
        n_embd=32, n_layer=3, n_head=4, n_positions=24, vocab_size=96, bos_token_id=0,
        eos_token_id=0, n_inner=40, tie_word_embeddings=False, initializer_range=0.04,
        dtype="float16")),
}  # fmt: skip


def expected_rule(name: str, family: str, config: dict):
    """The init each family's ``_init_weights`` gives a saved tensor: "ones", "zeros" or
    ("normal", std). Written from transformers' modeling code, independently of fastinit."""
    r = config.get("initializer_range", 0.02)
    if name.endswith(".bias"):
        return "zeros"
    if family == "gpt2":
        if ".ln_" in name:
            return "ones"
        if name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight")):
            return ("normal", r / math.sqrt(2 * config["n_layer"]))
        return ("normal", r)
    if name.endswith("norm.weight"):
        return "ones"
    return ("normal", r)


def padding_row(name: str, family: str, config: dict):
    """The row nn.Embedding(padding_idx=pad_token_id) zeroes: llama-likes' embed_tokens only
    (gpt2's wte has no padding_idx)."""
    pad = config.get("pad_token_id")
    if family != "gpt2" and name == "model.embed_tokens.weight" and pad is not None:
        return pad
    return None


@dataclass
class HFReference:
    family: str
    kwargs: dict
    config: object  # transformers PretrainedConfig
    saved: dict  # name -> (shape, safetensors dtype code), as save_pretrained wrote them
    state: dict  # name -> torch tensor, as transformers initialized them


@pytest.fixture(scope="module")
def hf_reference(tmp_path_factory):
    cache = {}

    def build(case: str) -> HFReference:
        if case not in cache:
            family, kwargs = HF_CONFIGS[case]
            config = transformers.AutoConfig.for_model(family, **kwargs)
            torch.manual_seed(0)
            model = transformers.AutoModelForCausalLM.from_config(config)
            out = tmp_path_factory.mktemp(case)
            model.save_pretrained(out)
            saved = {
                name: (tuple(e["shape"]), e["dtype"])
                for name, e in parse(out / "model.safetensors").entries.items()
            }
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            cache[case] = HFReference(family, kwargs, config, saved, state)
        return cache[case]

    return build


def manifest_table(manifest: ck.Manifest) -> dict:
    return {t.name: (t.shape, ST_CODES[t.dtype.name]) for t in manifest.tensors}


@pytest.mark.parametrize("source", ["to_dict", "minimal"])
@pytest.mark.parametrize("case", list(HF_CONFIGS))
def test_manifest_matches_save_pretrained(hf_reference, case, source):
    """Names, shapes and dtypes exactly as save_pretrained writes them (tied lm_head dropped),
    from transformers' full config dict and from the few keys a user would write (defaults)."""
    ref = hf_reference(case)
    config = ref.config.to_dict() if source == "to_dict" else {"model_type": ref.family, **ref.kwargs}
    manifest = ck.manifest_from_config(config)
    names = [t.name for t in manifest.tensors]
    assert len(names) == len(set(names))
    assert manifest_table(manifest) == ref.saved
    assert manifest.config["dtype"] == ref.kwargs.get("dtype", "float32")
    assert manifest.config["model_type"] == ref.family


@pytest.mark.parametrize("case", list(HF_CONFIGS))
def test_manifest_init_rules(hf_reference, case):
    """Each tensor's recorded initializer is the family's rule (the written values are checked in
    test_written_init_statistics)."""
    ref = hf_reference(case)
    config = ref.config.to_dict()
    for spec in ck.manifest_from_config(config).tensors:
        rule = expected_rule(spec.name, ref.family, config)
        got = spec.init.to_config()
        if isinstance(rule, str):
            assert got == {"scheme": rule}, spec.name
        else:
            assert got["scheme"] == "normal" and got.get("mean", 0.0) == 0.0, spec.name
            assert got["std"] == pytest.approx(rule[1], rel=1e-12), spec.name
        pad = padding_row(spec.name, ref.family, config)
        assert spec.zero_rows == (() if pad is None else (pad,)), spec.name


@pytest.fixture(scope="module")
def hf_written(hf_reference, tmp_path_factory):
    """case -> directory of fastinit's checkpoint for the case (seed 11, small shards)."""
    cache = {}

    def build(case: str) -> Path:
        if case not in cache:
            ref = hf_reference(case)
            out = tmp_path_factory.mktemp(f"{case}-fastinit")
            ck.write_checkpoint(
                ck.manifest_from_config(ref.config.to_dict()), out, seed=11, max_shard_size="16KB"
            )
            cache[case] = out
        return cache[case]

    return build


@pytest.mark.parametrize("case", list(HF_CONFIGS))
def test_written_init_statistics(hf_reference, hf_written, case):
    """The written values follow _init_weights: constants exactly, normals by mean and std
    (5 standard errors) and by a two-sample KS test against transformers' own initialization."""
    ref = hf_reference(case)
    config = ref.config.to_dict()
    out = hf_written(case)
    tensors = {}
    for path in out.glob("*.safetensors"):
        p = parse(path)
        tensors.update({name: p.values(name) for name in p.entries})
    assert set(tensors) == set(ref.saved)
    for name, x in tensors.items():
        hf = ref.state[name].to(torch.float64).numpy()
        rule = expected_rule(name, ref.family, config)
        pad = padding_row(name, ref.family, config)
        if pad is not None:
            assert np.all(x[pad] == 0), f"{name}: padding row {pad} not zeroed"
            assert np.all(hf[pad] == 0), f"{name}: transformers does not zero row {pad}"
            x, hf = np.delete(x, pad, axis=0), np.delete(hf, pad, axis=0)
        if rule == "ones" or rule == "zeros":
            value = 1.0 if rule == "ones" else 0.0
            assert np.all(x == value), name
            assert np.all(hf == value), f"{name}: the test's rule disagrees with transformers"
            continue
        std, n = rule[1], x.size
        assert abs(x.mean()) < MOMENT_SE * std / math.sqrt(n), f"{name}: mean {x.mean()}"
        # sample std of n normals: standard error std / sqrt(2 (n - 1))
        assert abs(x.std() / std - 1) < MOMENT_SE / math.sqrt(2 * (n - 1)), f"{name}: std {x.std()} vs {std}"
        p = stats.ks_2samp(x.ravel(), hf.ravel()).pvalue
        assert p > KS_P_MIN, f"{name}: KS p={p:.3g} against transformers' init"
    if ref.family == "gpt2" and config.get("pad_token_id") is not None:
        assert np.any(tensors["transformer.wte.weight"][config["pad_token_id"]] != 0)


@pytest.mark.parametrize("case", list(HF_CONFIGS))
def test_written_checkpoint_loads_in_transformers(hf_reference, hf_written, case):
    """from_pretrained finds every key (no missing, unexpected or mismatched ones) and holds
    exactly the file's values; tied weights come back tied."""
    ref = hf_reference(case)
    out = hf_written(case)
    model, info = transformers.AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"] and not info["error_msgs"], info
    state = model.state_dict()
    for name, data in all_tensors(out).items():
        got = state[name]
        assert got.dtype == TORCH_OF_CODE[ref.saved[name][1]], name
        assert got.reshape(-1).view(torch.uint8).numpy().tobytes() == data, name
    if ref.config.tie_word_embeddings:
        emb = "transformer.wte.weight" if ref.family == "gpt2" else "model.embed_tokens.weight"
        assert torch.equal(state["lm_head.weight"], state[emb])


def test_written_config_json_is_the_models(hf_reference, tmp_path):
    ref = hf_reference("llama-gqa-tied-attention_bias-mlp_bias")
    ck.write_checkpoint(ck.manifest_from_config(ref.config.to_dict(), dtype="bfloat16"), tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["dtype"] == "bfloat16" and "torch_dtype" not in written
    assert written["architectures"] == ["LlamaForCausalLM"]
    for key in ("hidden_size", "num_key_value_heads", "tie_word_embeddings", "attention_bias"):
        assert written[key] == ref.config.to_dict()[key]
    assert all(e["dtype"] == "BF16" for e in parse(tmp_path / "model.safetensors").entries.values())


def test_different_names_and_layers_are_independent(hf_written):
    t = all_tensors(hf_written("qwen2-gqa-untied"))
    a, b = t["model.layers.0.self_attn.q_proj.weight"], t["model.layers.1.self_attn.q_proj.weight"]
    assert len(a) == len(b) and a != b


# ---- presets -----------------------------------------------------------------------------------------

# Parameter counts as published (model cards / the safetensors index of each Hugging Face repo),
# to the precision published: value, relative precision of the rounding.
PUBLISHED = {
    "tinyllama-1.1b": (1.10e9, 0.005),
    "llama-7b": (6.74e9, 0.001),
    "llama-13b": (13.0e9, 0.004),
    "llama-70b": (69.0e9, 0.001),
    "llama3-8b": (8.03e9, 0.001),
    "llama3-70b": (70.6e9, 0.001),
    "llama3-405b": (405.9e9, 0.0002),
    "mistral-7b": (7.24e9, 0.001),
    "qwen2-0.5b": (0.494e9, 0.001),
    "qwen2-7b": (7.62e9, 0.001),
    "gpt2": (124e6, 0.004),
    "gpt2-medium": (355e6, 0.002),
    "gpt2-xl": (1.558e9, 0.001),
}


def test_every_preset_has_a_published_size():
    assert set(PUBLISHED) == set(ck.PRESETS)


@pytest.mark.parametrize("name", sorted(ck.PRESETS))
def test_preset_manifest_matches_transformers_meta_model(name):
    """The preset's manifest against a transformers model built on the meta device (no memory):
    same names, shapes, dtypes and parameter count, and the count matches the published one."""
    config = ck.preset_config(name)
    manifest = ck.manifest_from_config(config)
    published, precision = PUBLISHED[name]
    assert manifest.numel == pytest.approx(published, rel=precision)
    hf_config = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(hf_config)
    # named_parameters drops the second name of a tied parameter, as save_pretrained does
    params = {
        k: (tuple(v.shape), ST_CODES[str(v.dtype).removeprefix("torch.")])
        for k, v in model.named_parameters()
    }
    assert manifest_table(manifest) == params
    assert manifest.numel == sum(math.prod(s) for s, _ in params.values())


def test_preset_config_is_a_copy_and_unknown_names_fail():
    a = ck.preset_config("llama-7b")
    a["hidden_size"] = 1
    assert ck.preset_config("llama-7b")["hidden_size"] == 4096
    with pytest.raises(ck.CheckpointError, match="unknown preset 'llama-8b'") as e:
        ck.preset_config("llama-8b")
    one_line(e.value)


# ---- config errors -------------------------------------------------------------------------------

LLAMA = dict(model_type="llama", hidden_size=32, intermediate_size=48, num_hidden_layers=2,
             num_attention_heads=4, vocab_size=96)  # fmt: skip

# id -> (config, a fragment the one-line message must contain)
BAD_CONFIGS = {  # transformers' own refusals (the model is built by transformers), in one line
    "not-a-dict": ([1, 2], "JSON object"),
    "no-model_type": ({k: v for k, v in LLAMA.items() if k != "model_type"}, "'model_type'"),
    "unknown-model_type": ({**LLAMA, "model_type": "not-a-model"}, "Unrecognized model identifier: not-a-model"),
    "float-hidden_size": ({**LLAMA, "hidden_size": 32.0}, "'hidden_size'"),
    "string-heads": ({**LLAMA, "num_attention_heads": "4"}, "'num_attention_heads'"),
    "bool-vocab": ({**LLAMA, "vocab_size": True}, "'vocab_size'"),
    "hidden-not-divisible-by-heads": ({**LLAMA, "num_attention_heads": 5}, "not a multiple of the number of attention heads"),
    "negative-initializer_range": ({**LLAMA, "initializer_range": -0.1}, "'initializer_range'"),
    "nan-initializer_range": ({**LLAMA, "initializer_range": float("nan")}, "'initializer_range'"),
    "unsupported-dtype": ({**LLAMA, "dtype": "int8"}, "int8"),
    "gpt2-negative-n_inner": (
        dict(model_type="gpt2", n_embd=32, n_layer=2, n_head=4, n_positions=8, vocab_size=96, n_inner=-4),
        "negative dimension -4"),
    "implausible-layers": ({**LLAMA, "num_hidden_layers": 10**9}, "not plausible"),
}  # fmt: skip


def test_config_keys_left_out_take_transformers_defaults():
    """The model is what transformers builds from the config: its defaults fill what is missing."""
    from transformers import LlamaConfig

    m = ck.manifest_from_config({k: v for k, v in LLAMA.items() if k != "vocab_size"})
    assert m.tensors[0].name == "model.embed_tokens.weight"
    assert m.tensors[0].shape == (LlamaConfig().vocab_size, LLAMA["hidden_size"])
    assert len(ck.manifest_from_config({**LLAMA, "num_hidden_layers": 0})) == 3  # embed, norm, lm_head


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_gives_one_line_error(case):
    config, fragment = BAD_CONFIGS[case]
    with pytest.raises(ck.CheckpointError) as e:
        ck.manifest_from_config(config)
    assert fragment in one_line(e.value)


def test_config_dtype_argument_beats_the_config():
    m = ck.manifest_from_config({**LLAMA, "torch_dtype": "float16"})
    assert {t.dtype.name for t in m.tensors} == {"float16"}
    m = ck.manifest_from_config({**LLAMA, "torch_dtype": "float16"}, dtype="bf16")
    assert {t.dtype.name for t in m.tensors} == {"bfloat16"} and m.config["dtype"] == "bfloat16"
    assert "torch_dtype" not in m.config


# ---- JSON manifests ----------------------------------------------------------------------------------


def test_json_manifest_forms_and_dtypes(tmp_path):
    tensors = [
        {"name": "emb", "shape": [6, 4], "init": {"scheme": "normal", "std": 0.5}, "zero_rows": [2]},
        {"name": "w", "shape": [4, 3], "dtype": "float64", "init": {"scheme": "xavier_uniform"}},
        {"name": "b", "shape": [3], "init": {"scheme": "zeros"}},
    ]
    as_dict = ck.manifest_from_json({"tensors": tensors, "dtype": "bfloat16", "config": {"model_type": "x"}})
    assert [(t.name, t.shape, t.dtype.name) for t in as_dict.tensors] == [
        ("emb", (6, 4), "bfloat16"), ("w", (4, 3), "float64"), ("b", (3,), "bfloat16")]  # fmt: skip
    assert as_dict.tensors[0].zero_rows == (2,)
    assert as_dict.config == {"model_type": "x"}
    bare = ck.manifest_from_json(tensors)  # a bare list: float32 default, no config
    assert [t.dtype.name for t in bare.tensors] == ["float32", "float64", "float32"] and bare.config is None
    text = ck.manifest_from_json(json.dumps({"tensors": tensors}))
    assert [t.init for t in text.tensors] == [t.init for t in bare.tensors]
    forced = ck.manifest_from_json({"tensors": tensors, "dtype": "bfloat16"}, dtype="float16")
    assert {t.dtype.name for t in forced.tensors} == {"float16"}

    ck.write_checkpoint(as_dict, tmp_path, seed=4)
    assert json.loads((tmp_path / "config.json").read_text()) == {"model_type": "x"}
    p = parse(tmp_path / "model.safetensors")
    assert np.all(p.values("emb")[2] == 0) and np.all(p.values("emb")[[0, 1, 3, 4, 5]] != 0)
    assert json.loads(p.metadata["fastinit.tensors"])["emb"]["zero_rows"] == [2]
    for spec in as_dict.tensors:
        assert p.tensor(spec.name) == expected_bytes(spec, 4), spec.name
    bare_dir = tmp_path / "bare"
    ck.write_checkpoint(bare, bare_dir)
    assert listing(bare_dir) == ["model.safetensors"]  # no config, no config.json


def _t(**fields):
    return {"name": "w", "shape": [4, 4], "init": {"scheme": "normal"}, **fields}


# id -> (spec, fragment the one-line message must contain)
BAD_MANIFESTS = {
    "not-json": ("{", "not valid JSON"),
    "object-without-tensors": ({"dtype": "float32"}, "'tensors'"),
    "tensors-not-a-list": ({"tensors": {"w": 1}}, "'tensors' must be a non-empty list"),
    "empty-list": ([], "non-empty list"),
    "tensor-not-an-object": ([5], "tensor 0 must be an object"),
    "no-name": ([{"shape": [2], "init": {"scheme": "zeros"}}], "tensor 0 has no name"),
    "duplicate-name": ([_t(), _t()], "'w' appears twice"),
    "no-shape": ([{"name": "w", "init": {"scheme": "zeros"}}], "'w' needs a shape"),
    "negative-dim": ([_t(shape=[4, -1])], "'w' needs a shape"),
    "float-dim": ([_t(shape=[4.0])], "'w' needs a shape"),
    "bool-dim": ([_t(shape=[True])], "'w' needs a shape"),
    "unsupported-dtype": ([_t(dtype="int8")], "int8"),
    "no-init": ([{"name": "w", "shape": [2]}], "'w' needs an init"),
    "init-not-an-object": ([_t(init="normal")], "'w' needs an init"),
    "init-without-scheme": ([_t(init={"std": 1.0})], "scheme"),
    "unknown-scheme": ([_t(init={"scheme": "nosuch"})], "unknown scheme 'nosuch'"),
    "unknown-parameter": ([_t(init={"scheme": "normal", "bogus": 1})], "bogus"),
    # found by these tests: accepted by manifest_from_json, fail later with a non-CheckpointError
    "negative-std": ([_t(init={"scheme": "normal", "std": -1.0})], "std"),
    "scheme-needs-2d": ([_t(shape=[4], init={"scheme": "xavier_uniform"})], "'w'"),
    "eye-on-3d": ([_t(shape=[2, 2, 2], init={"scheme": "eye"})], "'w'"),
    "zero_rows-not-a-list": ([_t(zero_rows=5)], "zero_rows"),
    "zero_rows-not-ints": ([_t(zero_rows=["a"])], "zero_rows"),
    "zero_rows-out-of-range": ([_t(zero_rows=[4])], "zero_rows"),
    "config-not-an-object": ({"tensors": [_t()], "config": [1]}, "config"),
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_bad_manifest_gives_one_line_error(case, tmp_path):
    """A malformed manifest fails with a one-line CheckpointError naming the problem, either when
    read or, at the latest, when written, and then leaves no shard behind."""
    spec, fragment = BAD_MANIFESTS[case]
    with pytest.raises(ck.CheckpointError) as e:
        ck.write_checkpoint(ck.manifest_from_json(spec), tmp_path / "out")
    assert fragment in one_line(e.value)
    assert not list(tmp_path.rglob("*.safetensors*"))


def test_overrides_by_name_pattern(tmp_path):
    m = ck.manifest_from_config({**LLAMA, "pad_token_id": 0})
    rules = {
        "*.o_proj.weight": {"scheme": "normal", "std": 0.001},
        "*.mlp.*": "zeros",
        "model.layers.0.*": fastinit.get_initializer("ones"),  # first match wins for o_proj / mlp
        "lm_head.weight": {"scheme": "truncated_normal", "std": 0.01},
    }
    o = ck.with_overrides(m, rules)
    by = {t.name: t for t in o.tensors}
    assert by["model.layers.1.self_attn.o_proj.weight"].init.to_config() == {"scheme": "normal", "std": 0.001}
    assert by["model.layers.0.self_attn.o_proj.weight"].init.to_config() == {"scheme": "normal", "std": 0.001}
    assert by["model.layers.0.mlp.up_proj.weight"].init.to_config() == {"scheme": "zeros"}
    assert by["model.layers.0.self_attn.q_proj.weight"].init.to_config() == {"scheme": "ones"}
    assert by["model.layers.1.self_attn.q_proj.weight"].init == m.tensors[[t.name for t in m.tensors].index(
        "model.layers.1.self_attn.q_proj.weight")].init  # fmt: skip
    assert by["lm_head.weight"].init.scheme == "truncated_normal"
    assert by["model.embed_tokens.weight"] == m.tensors[0]  # no rule: unchanged, pad row kept
    assert [t.name for t in o.tensors] == [t.name for t in m.tensors]
    assert m.tensors[0].init.to_config()["std"] == 0.02  # the input manifest is not modified

    ck.write_checkpoint(o, tmp_path, seed=2)
    p = parse(tmp_path / "model.safetensors")
    recorded = json.loads(p.metadata["fastinit.tensors"])
    for spec in o.tensors:
        assert recorded[spec.name]["init"] == spec.init.to_config()
        assert p.tensor(spec.name) == expected_bytes(spec, 2), spec.name
    assert ck.verify_checkpoint(tmp_path).passed


@pytest.mark.parametrize(
    "rule, fragment",
    [("nosuch", "unknown scheme 'nosuch'"), ({"std": 1}, "'scheme'"), ({"scheme": "normal", "bogus": 1}, "bogus"),
     ([1], "'scheme'")],
    ids=["unknown-scheme", "no-scheme", "unknown-parameter", "not-a-dict"],
)  # fmt: skip
def test_bad_override_gives_one_line_error(rule, fragment):
    with pytest.raises(ck.CheckpointError) as e:
        ck.with_overrides(small_manifest(), {"layer*": rule})
    text = one_line(e.value)
    assert fragment in text and "'layer*'" in text


# ---- the files: layout, sharding, index, metadata -------------------------------------------------


def test_single_file_when_everything_fits(tmp_path):
    m = small_manifest(n=4, config={"model_type": "custom"})  # 4 x 4096 bytes
    r = ck.write_checkpoint(m, tmp_path, max_shard_size=4 * 4096)  # exactly the limit: fits
    assert r.files == r.written == ["model.safetensors"] and r.skipped == []
    assert r.total_bytes == 4 * 4096
    assert listing(tmp_path) == ["config.json", "model.safetensors"]


# (tensor sizes in bytes as [rows] of float32 x 256 columns = rows KiB, limit) -> expected groups
SHARDING = {
    "equal-fill": ([4, 4, 4, 4], "8KiB", [[0, 1], [2, 3]]),
    "one-over-limit": ([4, 4, 4, 4], 8191, [[0], [1], [2], [3]]),
    "big-tensor-alone": ([1, 9, 1, 1], "4KiB", [[0], [1], [2, 3]]),
    "big-first": ([9, 1, 1], "2KiB", [[0], [1, 2]]),
    "big-last": ([1, 1, 9], "2KiB", [[0, 1], [2]]),
    "all-bigger-than-limit": ([3, 3, 3], "1KB", [[0], [1], [2]]),
    "greedy-in-order": ([3, 2, 2, 3, 1], "5KiB", [[0, 1], [2, 3], [4]]),
}


@pytest.mark.parametrize("case", list(SHARDING))
def test_shards_in_manifest_order_never_split(case, tmp_path):
    rows, limit, groups = SHARDING[case]
    tensors = [
        {"name": f"t{i}", "shape": [r, 256], "init": {"scheme": "uniform"}} for i, r in enumerate(rows)
    ]
    m = ck.manifest_from_json(tensors)
    r = ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size=limit)
    n = len(groups)
    names = [f"model-{k:05d}-of-{n:05d}.safetensors" for k in range(1, n + 1)]
    assert r.files == r.written == names
    assert listing(tmp_path) == sorted(names + ["model.safetensors.index.json"])
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == sum(s.nbytes for s in m.tensors) == r.total_bytes
    expected_map = {f"t{i}": names[k] for k, g in enumerate(groups) for i in g}
    assert index["weight_map"] == expected_map
    data_total = 0
    for k, g in enumerate(groups):
        p = parse(tmp_path / names[k])
        assert p.order == [f"t{i}" for i in g]  # whole tensors, in manifest order
        data_total += len(p.data)
    assert data_total == index["metadata"]["total_size"]


def test_index_and_metadata(tmp_path):
    m = ck.manifest_from_config({**LLAMA, "pad_token_id": 1})
    ck.write_checkpoint(m, tmp_path, seed=12345, max_shard_size="20KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == {t.name for t in m.tensors}
    assert index["metadata"]["total_size"] == m.nbytes
    seen = {}
    for file in sorted(set(index["weight_map"].values())):
        p = parse(tmp_path / file)
        assert p.metadata["format"] == "pt"
        assert p.metadata["fastinit.version"] == fastinit.__version__
        assert p.metadata["fastinit.stream_version"] == str(fastinit.STREAM_VERSION)
        assert p.metadata["fastinit.seed"] == "12345"
        recorded = json.loads(p.metadata["fastinit.tensors"])
        assert set(recorded) == set(p.entries)  # exactly this shard's tensors
        for name in p.entries:
            assert index["weight_map"][name] == file
            seen[name] = recorded[name]
    for spec in m.tensors:
        assert seen[spec.name]["init"] == spec.init.to_config()
        assert seen[spec.name].get("zero_rows", []) == list(spec.zero_rows)


def test_headers_are_consistent(tmp_path):
    """Every header: offsets contiguous from 0, each range = numel * itemsize, the data section
    exactly covered (no holes, no trailing bytes), padded with spaces to 8 bytes."""
    tensors = [
        {"name": "a", "shape": [3, 5], "init": {"scheme": "normal"}},
        {"name": "b", "shape": [7], "dtype": "float64", "init": {"scheme": "uniform"}},
        {"name": "c", "shape": [2, 3], "dtype": "bfloat16", "init": {"scheme": "normal"}},
        {"name": "empty", "shape": [0, 3], "init": {"scheme": "normal"}},
        {"name": "scalar", "shape": [], "dtype": "float16", "init": {"scheme": "normal"}},
    ]
    ck.write_checkpoint(ck.manifest_from_json(tensors), tmp_path)
    raw = (tmp_path / "model.safetensors").read_bytes()
    p = parse(tmp_path / "model.safetensors")
    assert raw[8:16].startswith(b"{") and raw[8 + p.header_len - 1 : 8 + p.header_len] in (b"}", b" ")
    assert p.order == [t["name"] for t in tensors]
    offset = 0
    for t in tensors:
        e = p.entries[t["name"]]
        itemsize = {"F32": 4, "F64": 8, "BF16": 2, "F16": 2}[e["dtype"]]
        assert e["shape"] == t["shape"]
        assert e["data_offsets"] == [offset, offset + itemsize * math.prod(t["shape"])]
        offset = e["data_offsets"][1]
    assert offset == len(p.data)


# ---- golden bytes: against the safetensors package ----------------------------------------------

GOLDEN_TENSORS = [  # in the order safetensors sorts them (dtype size descending, then name)
    {"name": "a.weight", "shape": [5, 3], "dtype": "float64", "init": {"scheme": "normal"}},
    {"name": "b.bias", "shape": [7], "dtype": "float32", "init": {"scheme": "zeros"}},
    {"name": "b.weight", "shape": [7, 5], "dtype": "float32", "init": {"scheme": "xavier_uniform"}},
    {
        "name": "c.weight",
        "shape": [4, 2],
        "dtype": "float16",
        "init": {"scheme": "truncated_normal", "std": 0.1},
    },
]


def test_golden_bytes_equal_safetensors_numpy_save_file(tmp_path):
    """For the same arrays and metadata, safetensors.numpy.save_file writes the same parsed header
    (dtypes, shapes, offsets, metadata) and a byte-identical data section; only the JSON key order
    and padding of the header may differ."""
    m = ck.manifest_from_json(GOLDEN_TENSORS)
    ck.write_checkpoint(m, tmp_path / "ours", seed=9)
    ours = parse(tmp_path / "ours" / "model.safetensors")
    arrays = {
        name: ours.values(name).astype(NP_OF_CODE[ours.entries[name]["dtype"]]) for name in ours.entries
    }
    for spec in m.tensors:  # the arrays are the API's values
        assert arrays[spec.name].tobytes() == expected_bytes(spec, 9)
    safetensors.numpy.save_file(arrays, tmp_path / "ref.safetensors", metadata=ours.metadata)
    ref = parse(tmp_path / "ref.safetensors")
    assert ref.metadata == ours.metadata
    assert ref.entries == ours.entries
    assert ref.data == ours.data
    loaded = safetensors.numpy.load_file(tmp_path / "ours" / "model.safetensors")
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and loaded[name].tobytes() == array.tobytes()


def test_golden_bytes_against_safetensors_torch_any_order(tmp_path):
    """A manifest in an order safetensors would not choose, with bfloat16 and empty / scalar
    tensors: safetensors.torch writes the same tensors (compared tensor by tensor) and reads ours."""
    tensors = [
        {"name": "z", "shape": [3, 4], "dtype": "bfloat16", "init": {"scheme": "normal"}},
        {"name": "y", "shape": [5], "dtype": "float64", "init": {"scheme": "uniform", "low": -1.0}},
        {"name": "x", "shape": [0, 2], "init": {"scheme": "normal"}},
        {"name": "w", "shape": [], "dtype": "float16", "init": {"scheme": "constant", "value": 0.5}},
        {"name": "v", "shape": [2, 3, 2], "init": {"scheme": "kaiming_uniform"}},
    ]
    ck.write_checkpoint(ck.manifest_from_json(tensors), tmp_path / "ours", seed=3)
    path = tmp_path / "ours" / "model.safetensors"
    loaded = safetensors.torch.load_file(path)
    ours = parse(path)
    for t in tensors:
        got = loaded[t["name"]]
        assert (
            list(got.shape) == t["shape"] and got.dtype == TORCH_OF_CODE[ST_CODES[t.get("dtype", "float32")]]
        )
        assert got.reshape(-1).view(torch.uint8).numpy().tobytes() == ours.tensor(t["name"])
    safetensors.torch.save_file(loaded, tmp_path / "ref.safetensors", metadata=ours.metadata)
    ref = parse(tmp_path / "ref.safetensors")
    assert ref.metadata == ours.metadata
    for t in tensors:
        n = t["name"]
        assert (
            ref.entries[n]["dtype"] == ours.entries[n]["dtype"]
            and ref.entries[n]["shape"] == ours.entries[n]["shape"]
        )
        assert ref.tensor(n) == ours.tensor(n)
    with safe_open(path, "pt") as f:
        assert f.metadata() == ours.metadata and list(f.keys()) == sorted(t["name"] for t in tensors)


def test_loads_with_numpy_torch_and_flax(tmp_path):
    jnp = pytest.importorskip("jax.numpy")
    import safetensors.flax

    tensors = [
        {"name": "f32", "shape": [6, 5], "init": {"scheme": "normal"}},
        {"name": "f16", "shape": [4, 3], "dtype": "float16", "init": {"scheme": "uniform"}},
        {"name": "bf16", "shape": [3, 7], "dtype": "bfloat16", "init": {"scheme": "normal", "std": 3.0}},
        {"name": "f64", "shape": [5], "dtype": "float64", "init": {"scheme": "normal"}},
    ]
    ck.write_checkpoint(ck.manifest_from_json(tensors), tmp_path, seed=8, max_shard_size=120)
    files = sorted(tmp_path.glob("*.safetensors"))
    assert len(files) == 2
    for file in files:
        parsed = parse(file)
        as_torch = safetensors.torch.load_file(file)
        as_flax = safetensors.flax.load_file(file)
        as_numpy = safetensors.numpy.load_file(file) if "BF16" not in str(parsed.entries) else {}
        for name in parsed.entries:
            expected = parsed.values(name)
            assert np.array_equal(as_torch[name].to(torch.float64).numpy(), expected), name
            assert as_flax[name].shape == expected.shape, name
            # JAX without x64 holds float64 as float32
            got = np.asarray(as_flax[name].astype(jnp.float32), np.float64)
            assert np.array_equal(got, expected.astype(np.float32)), name
            if as_numpy:  # NumPy has no bfloat16: safetensors.numpy cannot load such a file
                code = parsed.entries[name]["dtype"]
                assert as_numpy[name].dtype == np.dtype(NP_OF_CODE[code]), name
                assert np.array_equal(as_numpy[name], expected), name
    assert any("BF16" not in str(parse(f).entries) for f in files)


PINNED_VERSION = "0.0.0+format-pin"
# Format-stability pin: sha256 of the whole file for GOLDEN_TENSORS + a bfloat16 tensor with a
# padding row, seed 2024, written with the version string PINNED_VERSION. A change means the header
# layout, the metadata or the stream changed: if intended, say so in the changelog (a stream change
# also bumps STREAM_VERSION) and update the pins.
PINNED_FILE_SHA256 = "fcd91ecaa32a2d3f60a30272d7b4b8335da97bd8a0caf4186321d62d40d420da"
PINNED_DATA_SHA256 = "62324b80287a4f3a8427dc57ae171bc04c3a52d6cda7b8a609ce640ab84bbbc5"


def test_format_stability_pin(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "__version__", PINNED_VERSION)
    tensors = GOLDEN_TENSORS + [
        {
            "name": "emb",
            "shape": [5, 4],
            "dtype": "bfloat16",
            "init": {"scheme": "normal", "std": 0.02},
            "zero_rows": [1],
        }
    ]
    ck.write_checkpoint(
        ck.manifest_from_json({"tensors": tensors, "config": {"model_type": "pin"}}), tmp_path, seed=2024
    )
    raw = (tmp_path / "model.safetensors").read_bytes()
    p = parse(tmp_path / "model.safetensors")
    assert p.metadata["fastinit.version"] == PINNED_VERSION
    assert hashlib.sha256(p.data).hexdigest() == PINNED_DATA_SHA256, "the tensor bytes changed"
    assert hashlib.sha256(raw).hexdigest() == PINNED_FILE_SHA256, "the file layout or metadata changed"


# ---- invariance: the bytes depend only on (manifest, seed) ----------------------------------------


@pytest.fixture(scope="module")
def invariance_manifest():
    m = ck.manifest_from_config({**LLAMA, "vocab_size": 200, "pad_token_id": 3, "tie_word_embeddings": True})
    return ck.with_overrides(m, {"*.o_proj.weight": {"scheme": "orthogonal", "gain": 0.5}})


@pytest.fixture(scope="module")
def reference_tensors(invariance_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    ck.write_checkpoint(invariance_manifest, out, seed=21)
    return all_tensors(out)


def test_file_bytes_equal_the_functional_api(invariance_manifest, reference_tensors):
    assert set(reference_tensors) == {t.name for t in invariance_manifest.tensors}
    for spec in invariance_manifest.tensors:
        assert reference_tensors[spec.name] == expected_bytes(spec, 21), spec.name


@pytest.mark.parametrize(
    "options",
    [dict(threads=1), dict(threads=2), dict(chunk_bytes=1), dict(chunk_bytes=100), dict(chunk_bytes=1 << 30),
     dict(max_shard_size="10KB"), dict(max_shard_size=1), dict(max_shard_size="3KiB", chunk_bytes=300, threads=1)],
    ids=["threads1", "threads2", "chunk1B", "chunk100B", "chunk1GiB", "shard10KB", "shard1B", "mixed"],
)  # fmt: skip
def test_bytes_independent_of_threads_chunks_and_shards(
    invariance_manifest, reference_tensors, tmp_path, options
):
    if options.get("threads", 1) > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("needs more cores")
    ck.write_checkpoint(invariance_manifest, tmp_path, seed=21, **options)
    assert all_tensors(tmp_path) == reference_tensors


def test_different_seeds_differ(invariance_manifest, reference_tensors, tmp_path):
    ck.write_checkpoint(invariance_manifest, tmp_path, seed=22)
    other = all_tensors(tmp_path)
    for spec in invariance_manifest.tensors:
        same = other[spec.name] == reference_tensors[spec.name]
        assert same == (spec.init.scheme in ("ones", "zeros")), spec.name


# scheme tables: whole-tensor schemes (orthogonal, sparse) and row-chunked ones, tiny chunks
SCHEMES = {
    "normal": ({"scheme": "normal", "mean": 1.0, "std": 2.0}, [33, 17]),
    "uniform": ({"scheme": "uniform", "low": -1.0, "high": 3.0}, [33, 17]),
    "truncated_normal": ({"scheme": "truncated_normal", "std": 0.02}, [33, 17]),
    "xavier_uniform-3d": ({"scheme": "xavier_uniform"}, [9, 5, 3]),
    "kaiming_normal": ({"scheme": "kaiming_normal", "nonlinearity": "relu"}, [33, 17]),
    "variance_scaling-jax": ({"scheme": "variance_scaling", "scale": 2.0}, [17, 33]),
    "orthogonal": ({"scheme": "orthogonal", "gain": 2.0}, [33, 17]),
    "sparse": ({"scheme": "sparse", "sparsity": 0.5}, [33, 17]),
    "eye": ({"scheme": "eye"}, [33, 17]),
    "dirac": ({"scheme": "dirac"}, [4, 4, 3]),
    "constant": ({"scheme": "constant", "value": -0.25}, [33]),
}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("case", list(SCHEMES))
def test_every_scheme_streams_by_chunks(case, dtype, tmp_path):
    init, shape = SCHEMES[case]
    m = ck.manifest_from_json([{"name": f"{case}.weight", "shape": shape, "dtype": dtype, "init": init}])
    ck.write_checkpoint(m, tmp_path, seed=5, chunk_bytes=40)  # chunks of one or two rows
    assert all_tensors(tmp_path)[f"{case}.weight"] == expected_bytes(m.tensors[0], 5)
    assert ck.verify_checkpoint(tmp_path, chunk_bytes=300).passed  # one to a few rows a chunk


def test_verify_with_rows_larger_than_the_chunk(tmp_path):
    """The writer grows its buffer when one row exceeds chunk_bytes; verify must too. (With the
    default 64 MiB chunk this is a stacked-experts tensor such as (8, 4096, 4096) in float32.)"""
    m = ck.manifest_from_json([{"name": "experts", "shape": [3, 8, 5], "init": {"scheme": "normal"}},
                               {"name": "vector", "shape": [50], "init": {"scheme": "uniform"}}])  # fmt: skip
    ck.write_checkpoint(m, tmp_path, seed=5, chunk_bytes=16)
    assert all_tensors(tmp_path)["experts"] == expected_bytes(m.tensors[0], 5)
    assert ck.verify_checkpoint(tmp_path, chunk_bytes=16).passed


def test_progress_reports_every_byte(tmp_path):
    m = small_manifest(n=5)
    seen = []
    ck.write_checkpoint(m, tmp_path, max_shard_size="8KiB", chunk_bytes=1000, progress=seen.append)
    assert sum(seen) == m.nbytes and len(seen) > 5
    os.remove(tmp_path / "model-00002-of-00003.safetensors")
    seen.clear()
    r = ck.write_checkpoint(m, tmp_path, max_shard_size="8KiB", resume=True, progress=seen.append)
    assert sum(seen) == m.nbytes and r.written == ["model-00002-of-00003.safetensors"]


def test_fsync_flushes_each_shard_and_the_directory(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    r = ck.write_checkpoint(small_manifest(n=3), tmp_path, max_shard_size="4KiB", fsync=True)
    assert len(r.files) == 3 and len(calls) >= 4
    calls.clear()
    ck.write_checkpoint(small_manifest(n=3), tmp_path / "nofsync", max_shard_size="4KiB")
    assert calls == []


@pytest.mark.parametrize(
    "kwargs, fragment",
    [(dict(seed=-1), "seed"), (dict(seed=2**64), "seed"), (dict(seed=1.5), "seed"), (dict(threads=0), "threads"),
     (dict(threads=10**6), "threads"), (dict(threads=True), "threads"), (dict(max_shard_size="0"), "max_shard_size"),
     (dict(max_shard_size="5G"), "max_shard_size"), (dict(chunk_bytes=-1), "chunk_bytes")],
    ids=["seed-negative", "seed-too-big", "seed-float", "threads-0", "threads-huge", "threads-bool", "shard-0",
         "shard-unit", "chunk-negative"],
)  # fmt: skip
def test_bad_arguments_name_the_argument(kwargs, fragment, tmp_path):
    before = numba.get_num_threads()
    with pytest.raises((ck.CheckpointError, TypeError, ValueError)) as e:
        ck.write_checkpoint(small_manifest(n=1), tmp_path, **kwargs)
    assert fragment in one_line(e.value)
    assert numba.get_num_threads() == before
    assert not list(tmp_path.glob("*.safetensors*"))


def test_threads_restored_after_a_run(tmp_path):
    before = numba.get_num_threads()
    ck.write_checkpoint(small_manifest(n=1), tmp_path, threads=1)
    assert numba.get_num_threads() == before


def test_empty_manifest_is_refused(tmp_path):
    with pytest.raises(ck.CheckpointError, match="no tensors"):
        ck.write_checkpoint(ck.Manifest([]), tmp_path)


# ---- safety on failure -----------------------------------------------------------------------------


def shard_names(n):
    return [f"model-{k:05d}-of-{n:05d}.safetensors" for k in range(1, n + 1)]


def only_final_files(directory, manifest_files, config=True, index=True):
    expected = list(manifest_files) + (["config.json"] if config else [])
    if index and len(manifest_files) > 1:
        expected.append("model.safetensors.index.json")
    return listing(directory) == sorted(expected)


def test_no_final_name_while_writing(tmp_path, monkeypatch):
    """Mid-write (second chunk of the second shard) the shard exists only under its hidden
    partial name; the first shard is already final."""
    m = small_manifest(n=4, config={"model_type": "x"})
    real, seen = writer.generate_chunk, []

    def spy(spec, seed, r0, r1, buf):
        if spec.name == "layer2.weight" and r0 == 8:
            seen.append(listing(tmp_path))
        return real(spec, seed, r0, r1, buf)

    monkeypatch.setattr(writer, "generate_chunk", spy)
    ck.write_checkpoint(m, tmp_path, max_shard_size="8KiB", chunk_bytes=1024)
    names = shard_names(2)
    assert len(seen) == 1 and seen[0][0] == ".fastinit-lock-1-of-1" and seen[0][2] == names[0]
    assert re.fullmatch(rf"\.{names[1]}\.[0-9a-f]{{16}}\.fastinit-partial", seen[0][1]) and len(seen[0]) == 3
    assert only_final_files(tmp_path, names)


@pytest.mark.parametrize("fail_in", ["first-shard", "second-shard"])
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failure_during_generation_leaves_no_partial_or_final_file(tmp_path, monkeypatch, fail_in, exc):
    m = small_manifest(n=4, config={"model_type": "x"})
    target = "layer0.weight" if fail_in == "first-shard" else "layer2.weight"
    real = writer.generate_chunk

    def boom(spec, seed, r0, r1, buf):
        if spec.name == target and r0 > 0:  # after the tensor's first chunk
            raise exc("injected")
        return real(spec, seed, r0, r1, buf)

    monkeypatch.setattr(writer, "generate_chunk", boom)
    with pytest.raises(exc, match="injected"):
        ck.write_checkpoint(m, tmp_path, max_shard_size="8KiB", chunk_bytes=1024)
    names = shard_names(2)
    assert listing(tmp_path) == ([] if fail_in == "first-shard" else [names[0]])


KILL_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import fastinit.checkpoint as ck
    from fastinit.checkpoint import writer

    spec, out, marker = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    real = writer.generate_chunk

    def held(tensor, seed, r0, r1, buf):
        if tensor.name == "layer2.weight" and r0 == 16:  # third chunk of shard 2's first tensor
            open(marker, "w").close()
            time.sleep(600)
        return real(tensor, seed, r0, r1, buf)

    writer.generate_chunk = held
    ck.write_checkpoint(ck.manifest_from_json(spec), out, seed=6, max_shard_size="8KiB", chunk_bytes=1024)
    """
)


@pytest.mark.slow
def test_sigkill_mid_write_then_resume(tmp_path):
    """A writer killed with SIGKILL while writing shard 2 of 3 leaves shard 1 final and complete,
    nothing under shard 2's or 3's final names, no index or config; resume=True then skips
    shard 1, writes the rest, removes the partial file, and the result equals a clean run."""
    spec = {"tensors": [{"name": f"layer{i}.weight", "shape": [32, 32], "init": {"scheme": "normal"}}
                        for i in range(6)], "config": {"model_type": "x"}}  # fmt: skip
    out, marker = tmp_path / "out", tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=str(Path(fastinit.__file__).parents[1]))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, json.dumps(spec), str(out), str(marker)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"writer exited early ({proc.returncode}): {proc.stderr.read().decode()}")
            assert time.monotonic() < deadline, "writer never reached shard 2"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    names = shard_names(3)
    left = listing(out)
    assert names[0] in left
    assert names[1] not in left and names[2] not in left
    assert not {"config.json", "model.safetensors.index.json"} & set(left)
    extra = set(left) - {names[0], ".fastinit-lock-1-of-1"}  # (the dead run's lock: taken over next)
    assert all(re.fullmatch(rf"\.{names[1]}\.[0-9a-f]{{16}}\.fastinit-partial", e) for e in extra), left

    m = ck.manifest_from_json(spec)
    clean = tmp_path / "clean"
    ck.write_checkpoint(m, clean, seed=6, max_shard_size="8KiB")
    assert (out / names[0]).read_bytes() == (clean / names[0]).read_bytes()
    inode = (out / names[0]).stat().st_ino
    r = ck.write_checkpoint(m, out, seed=6, max_shard_size="8KiB", resume=True)
    assert r.skipped == [names[0]] and r.written == names[1:]
    assert (out / names[0]).stat().st_ino == inode
    assert listing(out) == listing(clean)
    for name in listing(clean):
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name


def test_disk_full_during_pwrite(tmp_path, monkeypatch):
    """ENOSPC after some bytes reached the file: a one-line CheckpointError, no partial, no final."""
    real, calls = os.pwrite, []

    def pwrite(fd, data, offset):
        calls.append(offset)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    with pytest.raises(ck.CheckpointError) as e:
        ck.write_checkpoint(small_manifest(n=2, config={"model_type": "x"}), tmp_path, chunk_bytes=1024)
    assert "disk full" in one_line(e.value) and "model.safetensors" in str(e.value)
    assert len(calls) >= 3 and listing(tmp_path) == []


def test_disk_full_at_fallocate(tmp_path, monkeypatch):
    def fallocate(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", fallocate, raising=False)
    with pytest.raises(ck.CheckpointError, match="disk full") as e:
        ck.write_checkpoint(small_manifest(n=2), tmp_path)
    one_line(e.value)
    assert listing(tmp_path) == []


def test_fallocate_unsupported_is_not_an_error(tmp_path, monkeypatch):
    def fallocate(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(os, "posix_fallocate", fallocate, raising=False)
    m = small_manifest(n=2)
    ck.write_checkpoint(m, tmp_path, seed=1)
    assert ck.verify_checkpoint(tmp_path).passed


def test_not_enough_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    usage = writer.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(writer.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(ck.CheckpointError, match="not enough space") as e:
        ck.write_checkpoint(small_manifest(n=2), tmp_path / "out")
    one_line(e.value)
    assert listing(tmp_path / "out") == []


@pytest.mark.parametrize(
    "failing, code",
    [("open", errno.EACCES), ("open", errno.EROFS), ("replace", errno.EACCES), ("replace", errno.EIO)],
    ids=["open-EACCES", "open-EROFS", "rename-EACCES", "rename-EIO"],
)
def test_os_errors_give_checkpoint_error_and_no_files(tmp_path, monkeypatch, failing, code):
    real = getattr(os, failing)

    def fake(path, *args, **kwargs):
        if str(path).endswith(".fastinit-partial") and ".safetensors." in str(path):  # a shard's
            raise OSError(code, os.strerror(code), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, failing, fake)
    with pytest.raises(ck.CheckpointError) as e:
        ck.write_checkpoint(small_manifest(n=2), tmp_path)
    text = one_line(e.value)
    assert "model.safetensors" in text and os.strerror(code) in text
    assert listing(tmp_path) == []


def test_output_under_a_regular_file(tmp_path):
    """Tests run as root, so chmod cannot make a directory unwritable: a parent that is a file."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(ck.CheckpointError, match="cannot create") as e:
        ck.write_checkpoint(small_manifest(n=1), tmp_path / "file" / "ckpt")
    one_line(e.value)
    with pytest.raises(ck.CheckpointError, match="cannot create"):
        ck.write_checkpoint(small_manifest(n=1), tmp_path / "file")


def test_unwritable_directory(tmp_path, monkeypatch):
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path else real(p, mode, **kw)
    )
    with pytest.raises(ck.CheckpointError, match="cannot write to") as e:
        ck.write_checkpoint(small_manifest(n=1), tmp_path)
    one_line(e.value)
    assert listing(tmp_path) == []


# ---- resume and stale files ------------------------------------------------------------------------


def _truncate(path):
    os.truncate(path, path.stat().st_size - 10)


def _flip_header(path):
    raw = bytearray(path.read_bytes())
    i = raw.index(b'"shape":[32,32]')
    raw[i + 9 : i + 11] = b"23"  # same length, different shape
    path.write_bytes(bytes(raw))


def _append(path):
    with open(path, "ab") as f:
        f.write(b"\0" * 8)


def _other_seed(path):
    tmp = path.parent / "other"
    ck.write_checkpoint(small_manifest(n=4, config={"model_type": "x"}), tmp, seed=99, max_shard_size="8KiB")
    os.replace(tmp / path.name, path)
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


def _delete(path):
    path.unlink()


def _leave_partial(path):
    (path.parent / f".{path.name}.fastinit-partial").write_bytes(b"junk")
    path.unlink()


RESUME_DAMAGE = {
    "deleted": _delete,
    "truncated": _truncate,
    "header-changed": _flip_header,
    "trailing-bytes": _append,
    "written-with-another-seed": _other_seed,
    "partial-left-over": _leave_partial,
}


@pytest.mark.parametrize("damage", list(RESUME_DAMAGE))
def test_resume_rewrites_only_the_damaged_shard(tmp_path, damage):
    """A shard whose header is not this checkpoint's is another checkpoint's file: refused
    unless overwrite=True (which removes it first)."""
    m = small_manifest(n=4, config={"model_type": "x"})
    ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB")
    names = shard_names(2)
    clean = {n: (tmp_path / n).read_bytes() for n in names}
    inode = (tmp_path / names[0]).stat().st_ino
    RESUME_DAMAGE[damage](tmp_path / names[1])
    foreign = damage in ("header-changed", "written-with-another-seed")
    if foreign:
        with pytest.raises(ck.CheckpointError, match="overwrite"):
            ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB", resume=True)
    r = ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB", resume=True, overwrite=foreign)
    assert r.skipped == [names[0]] and r.written == [names[1]]
    assert (tmp_path / names[0]).stat().st_ino == inode  # not rewritten
    assert {n: (tmp_path / n).read_bytes() for n in names} == clean
    assert only_final_files(tmp_path, names)


def test_resume_of_a_complete_checkpoint_writes_nothing(tmp_path):
    m = small_manifest(n=4, config={"model_type": "x"})
    ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB")
    r = ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB", resume=True)
    assert r.written == [] and r.skipped == shard_names(2)
    r = ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB")  # without resume: rewrite all
    assert r.written == shard_names(2) and r.skipped == []


def test_resume_checks_the_recorded_hash_verify_checks_the_data(tmp_path):
    """resume keeps a final shard only when its bytes still have the digest recorded when it was
    written: a changed value is found by ``verify`` and rewritten by ``resume``."""
    m = small_manifest(n=2)
    ck.write_checkpoint(m, tmp_path, seed=1)
    path = tmp_path / "model.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert ck.verify_checkpoint(tmp_path).different == [("layer1.weight", "model.safetensors")]
    assert ck.write_checkpoint(m, tmp_path, seed=1, resume=True).written == ["model.safetensors"]
    assert ck.verify_checkpoint(tmp_path).passed


@pytest.mark.parametrize("before, after", [("3KiB", "1GB"), ("1GB", "3KiB"), ("3KiB", "8KiB")],
                         ids=["sharded-to-single", "single-to-sharded", "3-to-2-shards"])  # fmt: skip
def test_another_layout_is_refused_and_replaced_with_overwrite(tmp_path, before, after):
    """Another shard size is another checkpoint: refused (nothing changes); overwrite=True removes
    its shards, index and any other weight file first; other files are left alone."""
    m = small_manifest(n=4, rows=24, config={"model_type": "x"})  # 3 KiB tensors
    ck.write_checkpoint(m, tmp_path, max_shard_size=before)
    foreign = tmp_path / "model-00001-of-00009.safetensors"  # not fastinit's: shadows nothing, still weights
    safetensors.numpy.save_file({"x": np.zeros(2, np.float32)}, foreign)
    (tmp_path / "notes.txt").write_text("mine")
    before_files = listing(tmp_path)
    for resume in (False, True):
        with pytest.raises(ck.CheckpointError, match="overwrite"):
            ck.write_checkpoint(m, tmp_path, max_shard_size=after, resume=resume)
        assert listing(tmp_path) == before_files
    r = ck.write_checkpoint(m, tmp_path, max_shard_size=after, overwrite=True)
    index = ["model.safetensors.index.json"] if len(r.files) > 1 else []
    assert listing(tmp_path) == sorted(r.files + index + ["config.json", "notes.txt"])
    assert ck.verify_checkpoint(tmp_path).passed
    if len(r.files) > 1:
        index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
        assert sorted(set(index["weight_map"].values())) == r.files


def test_partial_files_of_a_dead_run_are_removed_without_resume(tmp_path):
    (tmp_path / ".model-00003-of-00007.safetensors.fastinit-partial").write_bytes(b"x" * 100)
    (tmp_path / ".config.json.fastinit-partial").write_text("{")
    ck.write_checkpoint(small_manifest(n=1, config={"a": 1}), tmp_path)
    assert listing(tmp_path) == ["config.json", "model.safetensors"]


# ---- verify ----------------------------------------------------------------------------------------


@pytest.fixture
def sharded_checkpoint(tmp_path):
    m = ck.manifest_from_config({**LLAMA, "pad_token_id": 2})
    ck.write_checkpoint(m, tmp_path, seed=31, max_shard_size="20KB")
    return tmp_path, m


def test_verify_passes_an_intact_checkpoint(sharded_checkpoint):
    out, m = sharded_checkpoint
    report = ck.verify_checkpoint(out, chunk_bytes=512)
    assert report.passed and report.different == [] and sorted(report.ok) == sorted(t.name for t in m.tensors)
    files = ck.checkpoint_files(out)
    assert [Path(f).name for f in files] == shard_names(len(files))
    assert ck.verify_checkpoint(files[0]).passed  # one file alone


def _flip(path: Path, name: str, element: int):
    p = parse(path)
    begin = p.entries[name]["data_offsets"][0]
    raw = bytearray(path.read_bytes())
    raw[8 + p.header_len + begin + element * 2] ^= 0x01  # low byte of a 16- or 32-bit value
    path.write_bytes(bytes(raw))


def test_verify_names_every_changed_tensor(sharded_checkpoint):
    out, m = sharded_checkpoint
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    changed = ["model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight", "model.norm.weight"]
    for k, name in enumerate(changed):
        _flip(out / index[name], name, element=k * 7)
    report = ck.verify_checkpoint(out)
    assert not report.passed
    assert sorted(report.different) == sorted((name, index[name]) for name in changed)
    assert len(report.ok) == len(m.tensors) - len(changed)


def test_verify_refuses_files_it_did_not_write(tmp_path):
    safetensors.numpy.save_file({"w": np.ones((2, 2), np.float32)}, tmp_path / "model.safetensors")
    with pytest.raises(ck.CheckpointError, match="not written by fastinit") as e:
        ck.verify_checkpoint(tmp_path)
    one_line(e.value)


def _header_file(header: bytes, data: bytes = b""):
    return struct.pack("<Q", len(header)) + header + data


_META = '"__metadata__":{"fastinit.seed":"0","fastinit.tensors":"{\\"w\\":{\\"init\\":{\\"scheme\\":\\"zeros\\"}}}"}'
# id -> file bytes: none is a valid fastinit file; each must give a one-line CheckpointError
BAD_FILES = {
    "empty": b"",
    "text": b'{"hidden_size": 32, "vocab_size": 100}\n',
    "huge-header-length": struct.pack("<Q", 2**40) + b"{}",
    "header-not-json": _header_file(b"{not json"),
    "header-a-list": _header_file(b"[]      "),
    "integer-dtype": _header_file(b'{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', bytes(8)),
    "no-data_offsets": _header_file(("{" + _META + ',"w":{"dtype":"F32","shape":[1]}}').encode(), bytes(4)),
    "tensors-record-not-json": _header_file(
        b'{"__metadata__":{"fastinit.seed":"0","fastinit.tensors":"{"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
        bytes(4)),
    "seed-not-a-number": _header_file(
        ("{" + _META.replace('"0"', '"x"') + ',"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}').encode(), bytes(4)),
    "unknown-scheme": _header_file(
        ("{" + _META.replace("zeros", "nosuch") + ',"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}').encode(),
        bytes(4)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_verify_bad_file_gives_one_line_error(tmp_path, case):
    path = tmp_path / "model.safetensors"
    path.write_bytes(BAD_FILES[case])
    with pytest.raises(ck.CheckpointError) as e:
        ck.verify_checkpoint(tmp_path)
    assert "model.safetensors" in one_line(e.value)


def test_verify_a_valid_zeros_file_sanity(tmp_path):
    """The hand-made header of BAD_FILES is valid when nothing is broken (so each case tests one
    defect)."""
    (tmp_path / "model.safetensors").write_bytes(
        _header_file(
            ("{" + _META + ',"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}').encode(), bytes(4)
        )
    )
    assert ck.verify_checkpoint(tmp_path).ok == ["w"]


def test_verify_missing_shard_is_a_clear_error(sharded_checkpoint):
    out, _ = sharded_checkpoint
    (out / shard_names(len(ck.checkpoint_files(out)))[1]).unlink()
    with pytest.raises(ck.CheckpointError) as e:
        ck.verify_checkpoint(out)
    assert shard_names(len(ck.checkpoint_files(out)))[1] in one_line(e.value)


def test_verify_rejects_trailing_bytes(sharded_checkpoint):
    """safetensors refuses a file whose data section has bytes after the last tensor
    ("incomplete metadata, file not fully covered"), so verify must not pass it."""
    out, _ = sharded_checkpoint
    path = Path(ck.checkpoint_files(out)[0])
    _append(path)
    with pytest.raises(Exception, match="not fully covered"):
        safetensors.numpy.load_file(path)
    try:
        report = ck.verify_checkpoint(out)
    except ck.CheckpointError as e:
        assert path.name in one_line(e)
    else:
        assert not report.passed, "verify passed a file safetensors cannot load"


def test_verify_directory_errors(tmp_path):
    with pytest.raises(ck.CheckpointError, match="no such file"):
        ck.verify_checkpoint(tmp_path / "missing")
    with pytest.raises(ck.CheckpointError, match="no .safetensors files"):
        ck.verify_checkpoint(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text("{")
    with pytest.raises(ck.CheckpointError, match="not a valid index") as e:
        ck.verify_checkpoint(tmp_path)
    one_line(e.value)


# ---- parts: n machines, each writing every n-th shard -------------------------------------------


def _file_digests(directory) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(directory).iterdir())}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_parts_together_equal_the_single_run(tmp_path, n):
    """Each part writes its own shard files; the union of the parts' files is the single run's,
    file for file, even written into separate directories. A part alone never writes the index
    and config: once the directories are merged, a run without part and with resume (which
    keeps every shard) writes them."""
    m = small_manifest(n=7, config={"model_type": "custom"})
    ck.write_checkpoint(m, tmp_path / "single", seed=4, max_shard_size="5KB")
    single = _file_digests(tmp_path / "single")
    assert len([f for f in single if f.endswith(".safetensors")]) == 7
    union: dict[str, str] = {}
    for k in range(1, n + 1):
        result = ck.write_checkpoint(m, tmp_path / f"part{k}", seed=4, max_shard_size="5KB", part=(k, n))
        files = _file_digests(tmp_path / f"part{k}")
        shards = sorted(f for f in files if f.endswith(".safetensors"))
        all_shards = sorted(f for f in single if f.endswith(".safetensors"))  # = file order
        assert shards == sorted(result.files) == all_shards[k - 1 :: n]
        for name, digest in files.items():
            assert union.setdefault(name, digest) == digest, f"parts disagree on {name}"
    small = () if n == 1 else ("config.json", "model.safetensors.index.json")  # (part 1/1 is the whole)
    assert union == {k: v for k, v in single.items() if k not in small}
    merged = tmp_path / "merged"
    for k in range(1, n + 1):
        shutil.copytree(tmp_path / f"part{k}", merged, dirs_exist_ok=True)
    r = ck.write_checkpoint(m, merged, seed=4, max_shard_size="5KB", resume=True)
    assert r.written == [] and r.complete and _file_digests(merged) == single


def test_parts_in_one_directory_make_a_verified_checkpoint(tmp_path):
    m = small_manifest(n=5)
    for k in (2, 1):  # any order
        ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="5KB", part=(k, 2))
    assert ck.verify_checkpoint(tmp_path).passed
    assert all_tensors(tmp_path) == {t.name: expected_bytes(t, 1) for t in m.tensors}


@pytest.mark.parametrize("part, fragment", [((0, 2), "1 <= k <= n"), ((3, 2), "1 <= k <= n"), ((1, 9), "only 4"),
                                            ("1/2", "part="), ((True, 2), "part=")])  # fmt: skip
def test_bad_part_is_refused_before_writing(tmp_path, part, fragment):
    with pytest.raises(ck.CheckpointError) as e:
        ck.write_checkpoint(small_manifest(n=4), tmp_path / "out", max_shard_size="5KB", part=part)
    assert fragment in one_line(e.value)
    assert not (tmp_path / "out").exists()


def test_a_tensor_named_metadata_is_refused(tmp_path):
    """safetensors keeps '__metadata__' for the header's metadata: a tensor of that name would
    replace it and leave a file no loader reads."""
    spec = [{"name": "__metadata__", "shape": [2], "init": {"scheme": "normal"}}]
    with pytest.raises(ck.CheckpointError, match="__metadata__"):
        ck.write_checkpoint(ck.manifest_from_json(spec), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("pad", "row"), [(-1, 95), (-96, 0), (95, 95)])
def test_pad_token_id_is_the_row_nn_embedding_zeroes(pad, row):
    """nn.Embedding(padding_idx=p) counts a negative p from the end (p + num_embeddings)."""
    m = ck.manifest_from_config(dict(LLAMA, pad_token_id=pad))
    embed = next(t for t in m.tensors if t.name == "model.embed_tokens.weight")
    assert embed.zero_rows == (row,)


@pytest.mark.parametrize("pad", [96, -97, 10**30])
def test_pad_token_id_outside_the_vocabulary_is_refused(pad):
    """transformers' from_config asserts 'Padding_idx must be within num_embeddings' for these."""
    with pytest.raises(ck.CheckpointError, match="Padding_idx must be within num_embeddings|pad_token_id"):
        ck.manifest_from_config(dict(LLAMA, pad_token_id=pad))
