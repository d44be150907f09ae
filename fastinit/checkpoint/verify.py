"""Verify a fastinit checkpoint: regenerate every tensor from its recorded initializer and seed
and compare it, chunk by chunk, with the file.

Works on any directory written by ``write_checkpoint`` (single file or sharded) and on a single
``.safetensors`` file. Each shard's ``__metadata__`` holds the seed and, per tensor, the
initializer config (and rows zeroed after drawing), which is all regeneration needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..schemes import Initializer
from .manifest import CheckpointError, TensorSpec
from .safetensors_format import read_header
from .writer import INDEX_NAME, _generate, _row_chunks

__all__ = ["verify_checkpoint", "VerifyReport", "checkpoint_files"]


@dataclass
class VerifyReport:
    """Per tensor: verified equal, or different (by name, with its file)."""

    ok: list[str] = field(default_factory=list)
    different: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.different


def checkpoint_files(path) -> list[str]:
    """The safetensors files of a checkpoint directory (or the one file given)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise CheckpointError(f"{path}: no such file or directory")
    index = os.path.join(path, INDEX_NAME)
    if os.path.exists(index):
        try:
            with open(index) as f:
                names = sorted(set(json.load(f)["weight_map"].values()))
        except (OSError, ValueError, KeyError) as error:
            raise CheckpointError(f"{index}: not a valid index ({error})") from None
        return [os.path.join(path, name) for name in names]
    single = os.path.join(path, "model.safetensors")
    if os.path.exists(single):
        return [single]
    files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".safetensors"))
    if not files:
        raise CheckpointError(f"{path}: no .safetensors files")
    return files


def _tensors_of(path: str):
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: missing (the index names it, but there is no such file)")
    try:
        metadata, entries, data_start = read_header(path)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        detail = error if isinstance(error, ValueError) else f"{path}: malformed safetensors header ({error!r})"
        raise CheckpointError(str(detail)) from None
    if not isinstance(metadata, dict) or "fastinit.tensors" not in metadata or "fastinit.seed" not in metadata:
        raise CheckpointError(f"{path}: no fastinit metadata: not written by fastinit, cannot regenerate")
    try:
        records = json.loads(metadata["fastinit.tensors"])
        seed = int(metadata["fastinit.seed"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable fastinit metadata ({error})") from None
    size, end = os.path.getsize(path), data_start + max((e.end for e in entries), default=0)
    if size != end:
        raise CheckpointError(
            f"{path}: the file has {size} bytes but its header describes {end} "
            f"({'trailing bytes' if size > end else 'truncated'})"
        )
    specs = []
    for entry in entries:
        record = records.get(entry.name) if isinstance(records, dict) else None
        if not isinstance(record, dict) or "init" not in record:
            raise CheckpointError(f"{path}: tensor {entry.name} has no recorded initializer")
        try:
            init = Initializer.from_config(record["init"])
        except (TypeError, ValueError, ImportError) as error:
            raise CheckpointError(f"{path}: tensor {entry.name}: {error}") from None
        spec = TensorSpec(entry.name, entry.shape, entry.dtype, init, tuple(record.get("zero_rows", ())))
        if entry.end - entry.begin != spec.nbytes:
            raise CheckpointError(f"{path}: tensor {entry.name} has {entry.end - entry.begin} bytes for "
                                  f"shape {entry.shape} in {entry.dtype.name}")  # fmt: skip
        specs.append((spec, entry))
    return seed, specs, data_start


def verify_checkpoint(path, *, chunk_bytes: int = 64 << 20, progress=None) -> VerifyReport:
    """Regenerate and compare every tensor; the report lists those that differ, by name.

    >>> import tempfile, fastinit.checkpoint as ckpt
    >>> m = ckpt.manifest_from_json([{"name": "w", "shape": [8, 4], "init": {"scheme": "normal"}}])
    >>> out = tempfile.mkdtemp(); _ = ckpt.write_checkpoint(m, out, seed=3)
    >>> ckpt.verify_checkpoint(out).passed
    True
    """
    report = VerifyReport()
    for file in checkpoint_files(path):
        seed, specs, data_start = _tensors_of(file)
        with open(file, "rb") as f:
            for spec, entry in specs:
                equal = True
                big = max(chunk_bytes, spec.nbytes) if spec.init.scheme in ("orthogonal", "delta_orthogonal",
                                                                            "sparse") else chunk_bytes  # fmt: skip
                chunks = list(_row_chunks(spec, big))
                buf = np.empty(max([b1 - b0 for _, _, b0, b1 in chunks] + [1]), np.uint8)  # rows > chunk too
                for r0, r1, b0, b1 in chunks:
                    expected = _generate(spec, seed, r0, r1, buf)
                    f.seek(data_start + entry.begin + b0)
                    if f.read(b1 - b0) != expected.tobytes():
                        equal = False
                    if progress is not None:
                        progress(b1 - b0)
                (
                    report.ok.append(spec.name)
                    if equal
                    else report.different.append((spec.name, os.path.basename(file)))
                )
    return report
