"""Checkpoints: manifests of model tensors, the streaming sharded safetensors writer, and
verification. See writer.py for how files are written and what is safe on failure."""

from .manifest import (
    CheckpointError,
    Manifest,
    TensorSource,
    TensorSpec,
    manifest_from_config,
    manifest_from_json,
    manifest_to_json,
    with_overrides,
)
from .presets import PRESETS, preset_config
from .verify import VerifyReport, checkpoint_files, verify_checkpoint
from .writer import WriteResult, parse_size, plan_shards, write_checkpoint

__all__ = [
    "PRESETS",
    "CheckpointError",
    "Manifest",
    "TensorSource",
    "TensorSpec",
    "VerifyReport",
    "WriteResult",
    "checkpoint_files",
    "manifest_from_config",
    "manifest_from_json",
    "manifest_to_json",
    "parse_size",
    "plan_shards",
    "preset_config",
    "verify_checkpoint",
    "with_overrides",
    "write_checkpoint",
]
