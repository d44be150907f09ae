"""Named configs of well-known model shapes, so ``fastinit checkpoint --preset llama-7b`` needs
no file. Shapes as published in each model's Hugging Face config.json."""

from __future__ import annotations

__all__ = ["PRESETS", "preset_config"]


def _llama(hidden, inter, layers, heads, kv, vocab, positions, **extra):
    return {
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "vocab_size": vocab,
        "max_position_embeddings": positions,
        "rms_norm_eps": 1e-5,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "dtype": "bfloat16",
        **extra,
    }


PRESETS = {
    "tinyllama-1.1b": _llama(2048, 5632, 22, 32, 4, 32000, 2048),
    "llama-7b": _llama(4096, 11008, 32, 32, 32, 32000, 4096),
    "llama-13b": _llama(5120, 13824, 40, 40, 40, 32000, 4096),
    "llama-70b": _llama(8192, 28672, 80, 64, 8, 32000, 4096),
    "llama3-8b": _llama(4096, 14336, 32, 32, 8, 128256, 8192, rope_theta=500000.0),
    "llama3-70b": _llama(8192, 28672, 80, 64, 8, 128256, 8192, rope_theta=500000.0),
    "llama3-405b": _llama(16384, 53248, 126, 128, 8, 128256, 131072, rope_theta=500000.0),
    "mistral-7b": {
        **_llama(4096, 14336, 32, 32, 8, 32000, 32768, rope_theta=1000000.0),
        "model_type": "mistral",
        "head_dim": 128,
    },
    "qwen2-0.5b": {
        **_llama(896, 4864, 24, 14, 2, 151936, 32768, rope_theta=1000000.0, rms_norm_eps=1e-6),
        "model_type": "qwen2",
        "tie_word_embeddings": True,
    },
    "qwen2-7b": {
        **_llama(3584, 18944, 28, 28, 4, 152064, 32768, rope_theta=1000000.0, rms_norm_eps=1e-6),
        "model_type": "qwen2",
    },
    "gpt2": {
        "model_type": "gpt2",
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "n_positions": 1024,
        "vocab_size": 50257,
        "initializer_range": 0.02,
        "dtype": "float32",
    },  # fmt: skip
    "gpt2-medium": {
        "model_type": "gpt2",
        "n_embd": 1024,
        "n_layer": 24,
        "n_head": 16,
        "n_positions": 1024,
        "vocab_size": 50257,
        "initializer_range": 0.02,
        "dtype": "float32",
    },  # fmt: skip
    "gpt2-xl": {
        "model_type": "gpt2",
        "n_embd": 1600,
        "n_layer": 48,
        "n_head": 25,
        "n_positions": 1024,
        "vocab_size": 50257,
        "initializer_range": 0.02,
        "dtype": "float32",
    },  # fmt: skip
}


def preset_config(name: str) -> dict:
    """A copy of the preset's config.

    >>> preset_config("llama-7b")["hidden_size"]
    4096
    """
    from .manifest import CheckpointError

    if name not in PRESETS:
        raise CheckpointError(f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    return dict(PRESETS[name])
