"""fastinit.transformers: configs are data, one trace at a time, checkpoints of odd layouts."""

import json
import math
import threading

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import fastinit.checkpoint as ck  # noqa: E402
import fastinit.transformers as ftr  # noqa: E402

LLAMA = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96}  # fmt: skip


@pytest.mark.parametrize(
    "key, value",
    [
        ("attn_implementation", "kernels-community/flash-attn"),
        ("attn_implementation", "evilorg/evil-kernel"),
        ("use_kernels", True),
        ("auto_map", {"AutoModelForCausalLM": "evil.EvilModel"}),
        ("quantization_config", {"quant_method": "bitsandbytes", "load_in_4bit": True}),
    ],
)
def test_a_config_file_never_asks_for_code_or_quantized_weights(tmp_path, key, value):
    (tmp_path / "config.json").write_text(json.dumps({**LLAMA, key: value}))
    model = ftr.from_config(tmp_path, seed=0)
    assert model.config._attn_implementation in ("eager", "sdpa")
    assert getattr(model.config, "quantization_config", None) is None
    manifest = ck.manifest_from_config({**LLAMA, key: value})
    assert key not in manifest.config


def test_concurrent_from_config_calls_leave_transformers_as_they_found_it():
    from transformers.modeling_utils import PreTrainedModel

    original = PreTrainedModel._initialize_weights
    results, errors = {}, []

    def build(seed):
        try:
            results[seed] = ftr.from_config(LLAMA, seed=seed).state_dict()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=build, args=(seed % 2,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert PreTrainedModel._initialize_weights is original
    alone = ftr.from_config(LLAMA, seed=1).state_dict()
    assert all(torch.equal(alone[k], results[1][k]) for k in alone)


def test_a_fused_tensor_split_with_a_dimension_of_length_one(tmp_path):
    """kimi_linear saves its fused (3C, 1, K) short convolution as q/k/v (C, 1, K) tensors."""
    config = {**LLAMA, "model_type": "kimi_linear", "hidden_size": 64, "intermediate_size": 128,
              "num_attention_heads": 4, "vocab_size": 128, "pad_token_id": 0, "bos_token_id": 1,
              "eos_token_id": 2}  # fmt: skip
    manifest = ck.manifest_from_config(config, seed=3)
    ck.write_checkpoint(manifest, tmp_path, seed=3)
    loaded, info = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values())
    built = ftr.from_config(config, seed=3)
    ours = built.state_dict()
    assert all(torch.equal(t, ours[k]) for k, t in loaded.state_dict().items())
    assert ck.verify_checkpoint(tmp_path).passed
    a_log = ours["model.layers.0.self_attn.forget_gate.A_log"]
    assert 0.0 <= float(a_log.min()) and float(a_log.max()) <= math.log(16.0)  # log U(1, 16)
