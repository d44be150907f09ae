"""Acceptance tests: a traced transformers init, for any causal LM transformers can build.

The API under test (issue #13):

- ``fastinit.transformers.from_config(config, *, seed=0, dtype=None, device="cpu", auto_class=None)``
  builds what ``AutoModelForCausalLM.from_config(config)`` builds, every random tensor drawn by
  fastinit as the model's own ``_init_weights`` would draw it (the scheme of the model's last
  draw into that tensor, from the stream of its state_dict key), every deterministic tensor
  equal to transformers' own, whatever torch's global RNG.
- ``fastinit.torch.init_module(model, seed=0)`` on a transformers model built on ``meta`` and
  materialized with ``to_empty`` gives exactly ``from_config(config, seed=0)``.
- ``fastinit checkpoint --config config.json --out DIR --seed S`` writes what ``from_pretrained``
  loads, with no missing / unexpected / mismatched key, as ``from_config(config, seed=S)``.
- Without transformers, ``import fastinit.transformers`` is a one-line ImportError.

What is compared, and against what:

(a) for every architecture of ``ARCHS`` (dense, MoE with fused expert tensors, state-space and
    hybrids, encoder-style LM heads as decoders): the same model class, state_dict keys, shapes,
    dtypes, buffers and tying as transformers' ``AutoModelForCausalLM.from_config``. A tensor is
    deterministic when transformers gives the same values under two different torch seeds; then
    fastinit's must be equal, byte for byte. Every other tensor must have transformers' law: a
    two-sample KS test of fastinit's values against transformers' must give p > 1e-4 (a correct
    implementation fails one such check with probability 1e-4; the data are fixed by the seeds,
    so the outcome does not vary from run to run). Same seed -> same bytes whatever torch's
    global RNG; seed=1 changes every random tensor and no deterministic one.
(b) named tensors equal the named fastinit stream exactly: llama (normal, padding row zeroed),
    gpt2 (the second, scaled draw into c_proj wins), mamba (kaiming_uniform, uniform; the dt
    bias derived from ``torch.rand``: uniform once mapped back), rwkv (orthogonal with a gain).
(c) ``init_module`` on meta + ``to_empty`` equals ``from_config`` byte for byte, logits too.
(d) the checkpoint command's round trip through ``from_pretrained`` and ``fastinit verify``.
(e) a config transformers refuses: exit status 2, transformers' message on one line.

The modules under test do not exist before #13: each test imports them itself (collection
succeeds; the tests fail with ImportError / AttributeError until the implementation lands).
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

import fastinit

transformers = pytest.importorskip("transformers")

# ---- the architectures: model_type -> kwargs of a tiny config --------------------------------------
# hidden 32, 2 layers, vocab 128, 4 experts where MoE: each builds in a few milliseconds.

_IDS = {"vocab_size": 128, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
_DECODER = {
    **_IDS,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 64,
}
_MHA = {k: v for k, v in _DECODER.items() if k not in ("num_key_value_heads", "head_dim")}
_SSM = {**_IDS, "hidden_size": 32, "num_hidden_layers": 2}

ARCHS: dict[str, dict] = {
    # dense decoders
    "llama": {**_DECODER, "initializer_range": 0.03},
    "qwen2": {**_DECODER},
    "qwen3": {**_DECODER},
    "mistral": {**_DECODER},
    "gemma": {**_DECODER},
    "gemma2": {**_DECODER},
    "gemma3_text": {**_DECODER},
    "phi3": {**_DECODER},
    "olmo2": {**_DECODER},
    "cohere": {**_DECODER},
    "starcoder2": {**_DECODER},
    "phi": {**_MHA},
    "gpt2": {**_IDS, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64},
    "gpt_neox": {**_MHA},
    "bloom": {**_IDS, "hidden_size": 32, "n_layer": 2, "n_head": 4},
    "opt": {**_MHA, "ffn_dim": 64, "word_embed_proj_dim": 32},
    # mixtures of experts (fused 3-D expert tensors in memory)
    "mixtral": {**_DECODER, "num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen3_moe": {**_DECODER, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32},
    "olmoe": {**_DECODER, "num_experts": 4, "num_experts_per_tok": 2},
    "qwen2_moe": {
        **_DECODER,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 32,
    },
    "phimoe": {**_DECODER, "num_local_experts": 4, "num_experts_per_tok": 2},
    "gpt_oss": {**_DECODER, "num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": 16},
    "deepseek_v3": {  # MLA attention, a dense first layer, shared + routed experts
        **_MHA,
        "num_key_value_heads": 4,
        "moe_intermediate_size": 32,
        "n_routed_experts": 4,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "n_group": 1,
        "topk_group": 1,
        "first_k_dense_replace": 1,
        "kv_lora_rank": 16,
        "q_lora_rank": 24,
        "qk_rope_head_dim": 8,
        "qk_nope_head_dim": 8,
        "v_head_dim": 8,
    },
    # state-space models and hybrids
    "mamba": {**_SSM, "state_size": 8, "expand": 2, "conv_kernel": 4},
    # rescale_prenorm_residual: out_proj is divided in place by sqrt(n_layers) after its draw
    "falcon_mamba": {
        **_SSM,
        "state_size": 8,
        "expand": 2,
        "conv_kernel": 4,
        "rescale_prenorm_residual": True,
    },
    "mamba2": {
        **_SSM,
        "num_heads": 8,
        "head_dim": 8,
        "state_size": 8,
        "expand": 2,
        "n_groups": 2,
        "chunk_size": 16,
    },
    "jamba": {
        **_DECODER,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "attn_layer_period": 2,
        "attn_layer_offset": 1,
        "expert_layer_period": 2,
        "expert_layer_offset": 1,
        "mamba_d_state": 8,
        "use_mamba_kernels": False,
    },
    "bamba": {
        **_DECODER,
        "attn_layer_indices": [1],
        "mamba_n_heads": 8,
        "mamba_d_head": 8,
        "mamba_d_state": 8,
        "mamba_chunk_size": 16,
    },
    "falcon_h1": {
        **_DECODER,
        "mamba_d_ssm": 64,
        "mamba_n_heads": 8,
        "mamba_d_head": 8,
        "mamba_d_state": 8,
        "mamba_chunk_size": 16,
    },
    # two hybrid layers share one transformer block: one tensor under two state_dict keys
    "zamba2": {
        **_MHA,
        "num_hidden_layers": 3,
        "layers_block_type": ["mamba", "hybrid", "hybrid"],
        "mamba_d_state": 8,
        "n_mamba_heads": 8,
        "adapter_rank": 8,
        "chunk_size": 16,
        "use_mamba_kernels": False,
    },
    "lfm2": {**_DECODER, "layer_types": ["conv", "full_attention"], "block_multiple_of": 16},
    "nemotron_h": {
        **_DECODER,
        "layers_block_type": ["mamba", "attention"],
        "ssm_state_size": 8,
        "mamba_num_heads": 8,
        "mamba_head_dim": 8,
        "n_groups": 2,
        "chunk_size": 16,
        "use_mamba_kernels": False,
        "moe_intermediate_size": 32,
        "moe_shared_expert_intermediate_size": 32,
        "n_routed_experts": 4,
    },
    "recurrent_gemma": {
        **_IDS,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "lru_width": 32,
        "attention_window_size": 16,
        "block_types": ["recurrent", "attention"],
    },
    "rwkv": {**_SSM, "attention_hidden_size": 32, "intermediate_size": 64, "context_length": 64},
    "xlstm": {**_SSM, "embedding_dim": 32, "num_heads": 4, "num_blocks": 2},
    # encoder-style LM heads used as decoders
    "bert": {**_MHA, "is_decoder": True},
    "roberta": {**_MHA, "is_decoder": True},
}

INIT_MODULE_SUBSET = ["llama", "qwen3_moe", "mamba", "gpt2", "gemma3_text", "zamba2"]
CHECKPOINT_SUBSET = ["llama", "mixtral", "qwen3_moe", "deepseek_v3", "mamba", "gpt2", "gemma3_text"]
CHECKPOINT_SEED = 3

# A config transformers refuses -> (config, a piece of transformers' own message)
UNBUILDABLE = {
    "heads-do-not-divide-hidden": (
        {"model_type": "llama", **_DECODER, "hidden_size": 30, "head_dim": None},
        "not a multiple of the number of attention heads",
    ),
    "mamba2-inconsistent-heads": (
        {"model_type": "mamba2", **_SSM, "num_heads": 3, "head_dim": 8, "expand": 2},
        "must equal num_heads * head_dim",
    ),
    "unknown-model-type": ({"model_type": "not_a_model", "hidden_size": 32}, "not_a_model"),
}

KS_P_MIN = 1e-4
MIN_LAW_SAMPLES = 256  # transformers' values pooled over torch seeds until at least this many
MAX_REFERENCE_SEEDS = 16
INPUT_IDS = torch.tensor([[5, 17, 42, 3, 99, 64, 8, 120]])


# ---- helpers --------------------------------------------------------------------------------------


def fi_transformers():
    """The module under test, imported when a test runs (it does not exist before #13)."""
    return importlib.import_module("fastinit.transformers")


def fi_torch():
    return importlib.import_module("fastinit.torch")


@pytest.fixture(scope="module", autouse=True)
def _quiet_transformers():
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    yield
    transformers.utils.logging.enable_progress_bar()
    transformers.logging.set_verbosity(verbosity)


def hf_config(model_type: str, **extra):
    """A fresh config each time (from_config may write to the config it is given)."""
    return transformers.AutoConfig.for_model(model_type, **{**ARCHS[model_type], **extra})


def tbytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and tbytes(a) == tbytes(b)


def as_torch(x) -> torch.Tensor:
    """A fastinit result as a torch tensor (DLPack, no copy)."""
    return torch.from_dlpack(x)


class Snapshot:
    """What a built model is made of, detached from the model."""

    def __init__(self, model: torch.nn.Module):
        self.cls = type(model)
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.buffers = {k: v.detach().clone() for k, v in model.named_buffers(remove_duplicate=False)}
        self.tying = tying_groups(model)
        self.leaf_params = all(p.is_leaf and p.grad_fn is None for p in model.parameters())


def tying_groups(model: torch.nn.Module) -> set[frozenset[str]]:
    """Sets of names (parameters and buffers) that are one tensor object."""
    groups: dict[int, set[str]] = {}
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    for name, t in named:
        groups.setdefault(id(t), set()).add(name)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


@functools.cache
def hf_snapshot(model_type: str, torch_seed: int) -> Snapshot:
    """transformers' own model, built under a fixed torch seed."""
    with torch.random.fork_rng():
        torch.manual_seed(torch_seed)
        return Snapshot(transformers.AutoModelForCausalLM.from_config(hf_config(model_type)))


@functools.cache
def fi_snapshot(model_type: str, seed: int, torch_seed: int = 0) -> Snapshot:
    """fastinit's model (seed), built while torch's global RNG is at torch_seed."""
    with torch.random.fork_rng():
        torch.manual_seed(torch_seed)
        return Snapshot(fi_transformers().from_config(hf_config(model_type), seed=seed))


def is_deterministic(model_type: str, key: str, *, buffer: bool = False) -> bool:
    """transformers gives the same values under two torch seeds."""
    a, b = hf_snapshot(model_type, 0), hf_snapshot(model_type, 1)
    table_a, table_b = (a.buffers, b.buffers) if buffer else (a.state, b.state)
    return same_tensor(table_a[key], table_b[key])


def _values(tensors) -> np.ndarray:
    return np.concatenate([t.detach().double().reshape(-1).numpy() for t in tensors])


def law_pvalue(model_type: str, key: str) -> float:
    """Two-sample KS p-value: fastinit's values (seeds 0 and 1, independent streams) against
    transformers' (torch seeds 0, 1, ..., pooled until MIN_LAW_SAMPLES values: a 4-element
    tensor such as gpt_oss' attention sinks gets 16 torch draws, so that a wrong law can fail)."""
    numel = hf_snapshot(model_type, 0).state[key].numel()
    n_ref = min(MAX_REFERENCE_SEEDS, max(2, math.ceil(MIN_LAW_SAMPLES / numel)))
    theirs = [hf_snapshot(model_type, s).state[key] for s in range(n_ref)]
    ours = [fi_snapshot(model_type, 0).state[key], fi_snapshot(model_type, 1).state[key]]
    if all(bool((t == t.reshape(-1)[0]).all()) for t in theirs):
        # one random value repeated over the whole tensor: fastinit's must be constant too, and
        # the KS test compares the per-draw values
        assert all(bool((t == t.reshape(-1)[0]).all()) for t in ours), key
        theirs, ours = [t.reshape(-1)[:1] for t in theirs], [t.reshape(-1)[:1] for t in ours]
    return stats.ks_2samp(_values(ours), _values(theirs)).pvalue


# ---- (a) every architecture against transformers' own init ----------------------------------------


def test_the_table_is_broad():
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    assert len(ARCHS) >= 22
    assert set(ARCHS) <= set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


@pytest.mark.parametrize("model_type", ARCHS)
def test_same_model_as_transformers(model_type):
    """Class, state_dict keys (in order), shapes, dtypes, buffers and tied tensors."""
    ours, theirs = fi_snapshot(model_type, 0), hf_snapshot(model_type, 0)
    assert ours.cls is theirs.cls
    assert list(ours.state) == list(theirs.state)
    for k, t in theirs.state.items():
        assert (ours.state[k].shape, ours.state[k].dtype) == (t.shape, t.dtype), k
        assert ours.state[k].device == torch.device("cpu"), k
    assert list(ours.buffers) == list(theirs.buffers)
    assert ours.tying == theirs.tying
    assert ours.leaf_params


@pytest.mark.parametrize("model_type", ARCHS)
def test_deterministic_tensors_equal_transformers(model_type):
    """Norm weights (ones, or gemma's zeros), biases, Mamba's A_log and D, rwkv's time mixes, the
    rotary inv_freq, embed scales, position ids, ...: exactly transformers' values."""
    ours, theirs = fi_snapshot(model_type, 0), hf_snapshot(model_type, 0)
    checked = 0
    for k, t in theirs.state.items():
        if is_deterministic(model_type, k):
            assert same_tensor(ours.state[k], t), k
            checked += 1
    for k, t in theirs.buffers.items():  # non-persistent buffers too
        if is_deterministic(model_type, k, buffer=True):
            assert same_tensor(ours.buffers[k], t), k
    assert checked > 0


@pytest.mark.parametrize("model_type", ARCHS)
def test_random_tensors_follow_transformers_law(model_type):
    theirs = hf_snapshot(model_type, 0)
    random_keys = [k for k in theirs.state if not is_deterministic(model_type, k)]
    assert random_keys
    for k in random_keys:
        if not theirs.state[k].is_floating_point():
            continue
        pvalue = law_pvalue(model_type, k)
        assert pvalue > KS_P_MIN, (k, pvalue)


@pytest.mark.parametrize("model_type", ARCHS)
def test_reproducible_whatever_torchs_global_rng(model_type):
    a, b = fi_snapshot(model_type, 0, torch_seed=0), fi_snapshot(model_type, 0, torch_seed=12345)
    assert a.state.keys() == b.state.keys()
    for k in a.state:
        assert same_tensor(a.state[k], b.state[k]), k
    for k in a.buffers:
        assert same_tensor(a.buffers[k], b.buffers[k]), k


@pytest.mark.parametrize("model_type", ARCHS)
def test_seed_changes_every_random_tensor_and_only_those(model_type):
    s0, s1 = fi_snapshot(model_type, 0), fi_snapshot(model_type, 1)
    for k, t in s0.state.items():
        if is_deterministic(model_type, k):
            assert same_tensor(s1.state[k], t), k
        else:
            changed = float((s1.state[k] != t).double().mean())
            assert changed >= 0.5, (k, changed)  # (a zeroed padding row keeps its zeros)


# ---- from_config's arguments ----------------------------------------------------------------------


def test_config_as_dict_file_or_directory(tmp_path):
    ftt = fi_transformers()
    reference = ftt.from_config(hf_config("llama"), seed=4).state_dict()
    as_dict = {"model_type": "llama", **ARCHS["llama"]}
    hf_config("llama").to_json_file(tmp_path / "config.json")
    for config in (as_dict, str(tmp_path / "config.json"), tmp_path / "config.json", str(tmp_path)):
        state = ftt.from_config(config, seed=4).state_dict()
        assert state.keys() == reference.keys(), config
        for k in reference:
            assert same_tensor(state[k], reference[k]), (config, k)


def test_dtype_bfloat16_rounds_the_same_streams():
    ftt = fi_transformers()
    model = ftt.from_config(hf_config("llama"), seed=2, dtype=torch.bfloat16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs = transformers.AutoModelForCausalLM.from_config(hf_config("llama"), dtype=torch.bfloat16)
    ours_state, their_state = model.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(their_state)
    for k, t in their_state.items():
        assert ours_state[k].dtype == t.dtype, k
    key = "model.layers.1.mlp.down_proj.weight"
    w = ours_state[key]
    assert w.dtype == torch.bfloat16
    expected = as_torch(fastinit.normal(tuple(w.shape), 0.0, 0.03, seed=2, name=key, dtype="bfloat16"))
    assert same_tensor(w, expected)
    # computed in float32 and rounded once: the float32 model's tensor, rounded
    f32 = ftt.from_config(hf_config("llama"), seed=2).state_dict()[key]
    assert same_tensor(w, f32.to(torch.bfloat16))
    assert torch.all(ours_state["model.norm.weight"] == 1)
    ours_buf, their_buf = dict(model.named_buffers()), dict(theirs.named_buffers())
    for k, t in their_buf.items():
        assert same_tensor(ours_buf[k], t), k


def test_auto_class_picks_the_head_and_the_names():
    ftt = fi_transformers()
    model = ftt.from_config(hf_config("llama"), seed=0, auto_class=transformers.AutoModel)
    assert type(model) is transformers.LlamaModel
    key = "layers.0.mlp.down_proj.weight"  # the base model's own key is the stream's name
    w = model.state_dict()[key]
    assert same_tensor(w, as_torch(fastinit.normal(tuple(w.shape), 0.0, 0.03, seed=0, name=key)))


# ---- (b) exact streams ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 7])
def test_llama_tensors_are_the_normal_streams_of_their_keys(seed):
    cfg = hf_config("llama")
    state = fi_transformers().from_config(cfg, seed=seed).state_dict()
    std = cfg.initializer_range
    for key in (
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.self_attn.k_proj.weight",
        "lm_head.weight",
    ):
        w = state[key]
        assert same_tensor(w, as_torch(fastinit.normal(tuple(w.shape), 0.0, std, seed=seed, name=key))), key
    # the embedding: the same stream, its padding row zeroed (through a view, as transformers does)
    key = "model.embed_tokens.weight"
    expected = as_torch(fastinit.normal(tuple(state[key].shape), 0.0, std, seed=seed, name=key)).clone()
    expected[cfg.pad_token_id] = 0
    assert same_tensor(state[key], expected)


def test_gpt2_residual_projections_take_the_last_draw():
    """GPT-2's Conv1D weights are drawn with std 0.02, then c_proj again with 0.02/sqrt(2 n_layer)."""
    cfg = hf_config("gpt2")
    state = fi_transformers().from_config(cfg, seed=1).state_dict()
    scaled = cfg.initializer_range / math.sqrt(2 * cfg.n_layer)
    for key, std in (
        ("transformer.h.0.attn.c_proj.weight", scaled),
        ("transformer.h.1.mlp.c_proj.weight", scaled),
        ("transformer.h.0.attn.c_attn.weight", cfg.initializer_range),  # Conv1D: (in, out)
        ("transformer.wpe.weight", cfg.initializer_range),
    ):
        w = state[key]
        assert same_tensor(w, as_torch(fastinit.normal(tuple(w.shape), 0.0, std, seed=1, name=key))), key


def test_mamba_non_normal_schemes():
    cfg = hf_config("mamba")
    state = fi_transformers().from_config(cfg, seed=5).state_dict()
    prefix = "backbone.layers.1.mixer."
    # conv1d and out_proj: normal_, then kaiming_uniform_(a=sqrt(5)): the last draw wins
    for key in (prefix + "conv1d.weight", prefix + "out_proj.weight"):
        w = state[key]
        expected = fastinit.kaiming_uniform(tuple(w.shape), a=math.sqrt(5), seed=5, name=key)
        assert same_tensor(w, as_torch(expected)), key
    # dt_proj.weight: uniform(-r, r), r = time_step_rank**-0.5 * time_step_scale
    key = prefix + "dt_proj.weight"
    r = cfg.time_step_rank**-0.5 * cfg.time_step_scale
    expected = fastinit.uniform(tuple(state[key].shape), -r, r, seed=5, name=key)
    assert same_tensor(state[key], as_torch(expected))
    # dt_proj.bias: transformers draws torch.rand(n) into a temporary and maps it through
    # exp / clamp / inverse softplus. Which stream feeds that draw is the trace's choice (no
    # state_dict key exists when torch.rand runs); what is fixed is the map: softplus(bias)
    # taken back to [0, 1) must be uniform, for every layer.
    u = []
    for layer in range(cfg.num_hidden_layers):
        bias = state[f"backbone.layers.{layer}.mixer.dt_proj.bias"].double()
        dt = torch.nn.functional.softplus(bias)
        low, high = math.log(cfg.time_step_min), math.log(cfg.time_step_max)
        u.append(((torch.log(dt) - low) / (high - low)).numpy())
    u = np.concatenate(u)
    assert u.min() > -1e-5 and u.max() < 1 + 1e-5, (u.min(), u.max())
    assert stats.kstest(u, "uniform").pvalue > KS_P_MIN


def test_rwkv_orthogonal_with_gain():
    """RWKV draws normal_, then orthogonal_(gain=sqrt(rows / cols)) into every Linear."""
    state = fi_transformers().from_config(hf_config("rwkv"), seed=0).state_dict()
    for key in ("rwkv.blocks.0.attention.key.weight", "rwkv.blocks.1.feed_forward.key.weight"):
        w = state[key]
        rows, cols = w.shape
        gain = math.sqrt(rows / cols) if rows > cols else 1.0
        assert same_tensor(w, as_torch(fastinit.orthogonal(tuple(w.shape), gain, seed=0, name=key))), key


# ---- (c) init_module on a meta-built model ---------------------------------------------------------


@pytest.mark.parametrize("model_type", INIT_MODULE_SUBSET)
def test_init_module_on_meta_equals_from_config(model_type):
    ours = fi_transformers().from_config(hf_config(model_type), seed=0)
    with torch.device("meta"):
        meta = transformers.AutoModelForCausalLM.from_config(hf_config(model_type))
    assert all(p.is_meta for p in meta.parameters())
    meta.to_empty(device="cpu")  # (torch 2.13: this unties lm_head / zamba2's shared block)
    fi_torch().init_module(meta, seed=0)  # ... which init_module ties again, as init_weights does

    a, b = meta.state_dict(), ours.state_dict()
    assert list(a) == list(b)
    for k in b:
        assert same_tensor(a[k], b[k]), k
    buffers_a, buffers_b = dict(meta.named_buffers()), dict(ours.named_buffers())
    assert buffers_a.keys() == buffers_b.keys()
    for k in buffers_b:
        assert same_tensor(buffers_a[k], buffers_b[k]), k
    assert tying_groups(meta) == tying_groups(ours)
    meta.eval()
    ours.eval()
    with torch.no_grad():
        assert torch.equal(meta(INPUT_IDS).logits, ours(INPUT_IDS).logits)


# ---- (d) and (e): the checkpoint command -----------------------------------------------------------


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "fastinit", *map(str, args)]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(Path(fastinit.__file__).parents[1]))


def _run_all(commands: dict[str, list[str]], timeout: float = 300) -> dict[str, subprocess.CompletedProcess]:
    """Run the commands at once (each pays the torch / transformers import), wait for all."""
    procs = {
        k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for k, c in commands.items()
    }
    done = {}
    for k, p in procs.items():
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        done[k] = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    return done


@pytest.fixture(scope="module")
def checkpoint_runs(tmp_path_factory):
    """`python -m fastinit checkpoint --config ...` for CHECKPOINT_SUBSET and UNBUILDABLE, all at once."""
    root = tmp_path_factory.mktemp("checkpoints")
    commands, outs = {}, {}
    for model_type in CHECKPOINT_SUBSET:
        config = root / f"{model_type}.json"
        config.write_text(json.dumps({"model_type": model_type, **ARCHS[model_type]}))
        outs[model_type] = root / model_type
        commands[model_type] = _cli("checkpoint", "--config", config, "--out", outs[model_type],
                                    "--seed", CHECKPOINT_SEED, "--no-progress")  # fmt: skip
    for case, (config_dict, _) in UNBUILDABLE.items():
        config = root / f"{case}.json"
        config.write_text(json.dumps(config_dict))
        outs[case] = root / case
        commands[case] = _cli(
            "checkpoint", "--config", config, "--out", outs[case], "--seed", 0, "--no-progress"
        )
    runs = _run_all(commands)
    return {k: (runs[k], outs[k]) for k in commands}


@pytest.fixture(scope="module")
def verify_runs(checkpoint_runs):
    commands = {
        m: _cli("verify", checkpoint_runs[m][1], "--no-progress")
        for m in CHECKPOINT_SUBSET
        if checkpoint_runs[m][0].returncode == 0
    }
    return _run_all(commands)


def file_keys(directory: Path) -> set[str]:
    from safetensors import safe_open

    keys: set[str] = set()
    files = sorted(Path(directory).glob("*.safetensors"))
    assert files, f"no .safetensors in {directory}"
    for f in files:
        with safe_open(str(f), framework="pt") as fh:
            keys |= set(fh.keys())
    return keys


@pytest.mark.slow  # checkpoint_runs: 10 CLI processes, each importing torch and transformers
@pytest.mark.parametrize("model_type", CHECKPOINT_SUBSET)
def test_checkpoint_from_config_round_trip(model_type, checkpoint_runs, verify_runs, tmp_path):
    run, out = checkpoint_runs[model_type]
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr

    # the files hold exactly the keys save_pretrained writes for this config (the hub's layout:
    # per-expert tensors for mixtral / qwen3_moe / deepseek_v3, tied heads left out, ...)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        transformers.AutoModelForCausalLM.from_config(hf_config(model_type)).save_pretrained(tmp_path / "hf")
    assert file_keys(out) == file_keys(tmp_path / "hf")

    loaded, info = transformers.AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["unexpected_keys"], info["unexpected_keys"]
    assert not info["mismatched_keys"], info["mismatched_keys"]
    assert not info.get("error_msgs"), info.get("error_msgs")

    expected = fi_transformers().from_config(hf_config(model_type), seed=CHECKPOINT_SEED).state_dict()
    state = loaded.state_dict()
    assert state.keys() == expected.keys()
    for k in expected:
        assert same_tensor(state[k], expected[k]), k

    verify = verify_runs[model_type]
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.slow  # checkpoint_runs, as above
@pytest.mark.parametrize("case", UNBUILDABLE)
def test_config_transformers_cannot_build_is_a_one_line_error(case, checkpoint_runs):
    run, out = checkpoint_runs[case]
    _, message_piece = UNBUILDABLE[case]
    assert run.returncode == 2, (run.returncode, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert message_piece in lines[0], lines[0]
    assert not list(Path(out).glob("*.safetensors")), "a refused config left weight files"


# ---- without transformers ---------------------------------------------------------------------------


def test_without_transformers_a_one_line_import_error():
    code = "\n".join(
        [
            "import json, sys",
            "sys.modules['transformers'] = None  # as if it were not installed",
            "import fastinit, fastinit.torch  # these need no transformers",
            "try:",
            "    import fastinit.transformers",
            "except ImportError as e:",
            "    print('IMPORTERROR ' + json.dumps(str(e)))",
            "else:",
            "    print('IMPORTED')",
        ]
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert run.returncode == 0, run.stderr
    line = run.stdout.strip().splitlines()[-1]
    assert line.startswith("IMPORTERROR "), run.stdout
    message = json.loads(line[len("IMPORTERROR ") :])
    assert "\n" not in message.strip()
    assert 'pip install "fastinit[transformers]"' in message
