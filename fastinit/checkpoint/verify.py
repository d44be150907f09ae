"""Verify a fastinit checkpoint: regenerate every tensor from its recorded initializer and seed
and compare it, chunk by chunk, with the file.

Works on any directory written by ``write_checkpoint`` (single file or sharded) and on a single
``.safetensors`` file. Each shard's ``__metadata__`` holds the seed and, per tensor, the
initializer config (and rows zeroed after drawing, overlays, the virtual tensor it is a block of:
manifest.py), which is all regeneration needs.

The files are untrusted. Before any value is generated the whole checkpoint is checked: only
regular files inside the directory are read (files.py); every header is consistent with its
file's size (safetensors_format.py); the index lists every shard and nothing else, and names
every tensor exactly once, in the shard that holds it; every shard has the same seed and stream
version; every recorded initializer, ``zero_rows``, ``writes`` and ``source`` is valid for its
tensor (records are data: each field's type is checked before it is used). Any failure is a
``CheckpointError``. A custom scheme whose function is not registered in this process is never
imported: the tensor is reported as one that cannot be regenerated. The work stays proportional to
the files: a block of a virtual tensor costs its own bytes, except under a scheme that needs its
whole stream tensor (orthogonal, sparse, ...), which is refused when that tensor is larger than
the files verified together (or 1 GiB, if more).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..rng.streams import STREAM_VERSION, check_seed
from ..schemes import Initializer
from ..typing import StrPath
from .files import member_path, open_regular, read_regular, shown
from .manifest import CheckpointError, TensorSource, TensorSpec, writes_from_json
from .safetensors_format import read_header
from .writer import INDEX_NAME, generate_chunk, row_chunks, shard_cache, whole_tensor

__all__ = ["verify_checkpoint", "VerifyReport", "checkpoint_files"]

MAX_INDEX_BYTES = 100_000_000
WHOLE_STREAM_FLOOR = 1 << 30  # bytes of a whole stream tensor always allowed (module docstring)
_SHARD_NAME = re.compile(r"model-(\d{5})-of-(\d{5})\.safetensors")


@dataclass
class VerifyReport:
    """Per tensor: verified equal, different, or not regenerable here (a custom scheme whose
    function is not registered in this process), by name, with its file."""

    ok: list[str] = field(default_factory=list)
    different: list[tuple[str, str]] = field(default_factory=list)
    unverifiable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.different and not self.unverifiable


def _load_json(path: str, what: str):
    raw = read_regular(path, MAX_INDEX_BYTES)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path}: not a valid {what} (not JSON)") from None


def _read_index(directory: str) -> dict[str, str]:
    """The index's weight_map, checked to map tensor names to file names in the directory."""
    path = os.path.join(directory, INDEX_NAME)
    index = _load_json(member_path(directory, INDEX_NAME), "index")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{path}: not a valid index (weight_map must be a non-empty object)")
    for name, file in weight_map.items():
        if not isinstance(file, str):
            raise CheckpointError(
                f"{path}: tensor {shown(name)} is mapped to {type(file).__name__}, not a file name"
            )
        member_path(directory, file)
    return weight_map


def _layout(path: str) -> tuple[list[str], dict[str, str] | None]:
    """(the checkpoint's files, the index's weight_map or None): every file a regular file
    inside the directory, every shard listed."""
    if not os.path.isdir(path):
        if not os.path.lexists(path):
            raise CheckpointError(f"{path}: no such file or directory")
        return [path], None
    entries = sorted(n for n in os.listdir(path) if n.endswith(".safetensors"))
    if os.path.lexists(os.path.join(path, INDEX_NAME)):
        weight_map = _read_index(path)
        listed = sorted(set(weight_map.values()))
        unlisted = sorted(set(entries) - set(listed))
        if unlisted:
            raise CheckpointError(f"{path}: {', '.join(shown(n) for n in unlisted[:3])}: a safetensors file the "
                                  "index does not list")  # fmt: skip
        _check_shard_names(path, listed)
        return [os.path.join(path, n) for n in listed], weight_map
    sharded = [n for n in entries if _SHARD_NAME.fullmatch(n)]
    if sharded:
        raise CheckpointError(f"{path}: shard files ({sharded[0]}, ...) but no {INDEX_NAME}: the checkpoint is "
                              "incomplete")  # fmt: skip
    if "model.safetensors" in entries:
        entries = ["model.safetensors"]
    if not entries:
        raise CheckpointError(f"{path}: no .safetensors files")
    for name in entries:
        member_path(path, name)
    return [os.path.join(path, n) for n in entries], None


def _check_shard_names(directory: str, names: list[str]) -> None:
    """Shards named model-0000k-of-0000N: all N of them, one N."""
    numbered = [_SHARD_NAME.fullmatch(n) for n in names]
    if not any(numbered):
        return
    counts = {int(m.group(2)) for m in numbered if m}
    expected = {f"model-{k:05d}-of-{n:05d}.safetensors" for n in counts for k in range(1, n + 1)}
    if len(counts) != 1 or set(names) != expected:
        missing = sorted(expected - set(names)) or sorted(set(names) - expected)
        raise CheckpointError(f"{directory}: the index lists shards that do not make one checkpoint "
                              f"({shown(missing[0])} is missing or extra)")  # fmt: skip


def checkpoint_files(path: StrPath) -> list[str]:
    """The safetensors files of a checkpoint directory (or the one file given), each checked to
    be a file inside the directory that its index lists (module docstring)."""
    return _layout(os.fspath(path))[0]


@dataclass
class _Shard:
    path: str
    seed: int
    stream_version: str | None
    checkpoint: str | None  # the writer's checkpoint id (absent in files of older versions)
    data_start: int
    specs: list = field(default_factory=list)  # (TensorSpec, HeaderEntry, regenerable)


def _shard(path: str) -> _Shard:
    """A shard's header and records, every recorded initializer checked against its tensor."""
    try:
        metadata, entries, data_start = read_header(path)
    except CheckpointError:
        raise
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    if "fastinit.tensors" not in metadata or "fastinit.seed" not in metadata:
        raise CheckpointError(f"{path}: no fastinit metadata: not written by fastinit, cannot regenerate")
    try:
        records = json.loads(metadata["fastinit.tensors"])
    except (ValueError, RecursionError):
        raise CheckpointError(
            f"{path}: unreadable fastinit metadata (fastinit.tensors is not JSON)"
        ) from None
    if not isinstance(records, dict):
        raise CheckpointError(f"{path}: unreadable fastinit metadata (fastinit.tensors is not an object)")
    text = metadata["fastinit.seed"]
    try:
        seed = check_seed(int(text) if re.fullmatch(r"[0-9]{1,20}", text) else -1, "fastinit.seed")
    except ValueError:
        raise CheckpointError(f"{path}: fastinit.seed must be an integer in [0, 2**64)") from None
    stream_version = metadata.get("fastinit.stream_version")
    if stream_version is not None and stream_version != str(STREAM_VERSION):
        raise CheckpointError(f"{path}: written with another stream version than this fastinit's "
                              f"({STREAM_VERSION}): cannot regenerate")  # fmt: skip
    names = {entry.name for entry in entries}
    extra = sorted(set(records) - names)
    if extra:
        raise CheckpointError(f"{path}: a record for tensor {shown(extra[0])}, which the file does not hold")
    shard = _Shard(path, seed, stream_version, metadata.get("fastinit.checkpoint"), data_start)
    for entry in entries:
        shard.specs.append(_spec(path, entry, records.get(entry.name)))
    return shard


def _spec(path: str, entry, record) -> tuple[TensorSpec, object, bool]:
    where = f"{path}: tensor {shown(entry.name)}"
    if not isinstance(record, dict) or not isinstance(record.get("init"), dict):
        raise CheckpointError(f"{where} has no recorded initializer")
    zero_rows = record.get("zero_rows", [])
    if not isinstance(zero_rows, list):
        raise CheckpointError(f"{where}: zero_rows must be a list of row numbers")
    try:
        init = Initializer.from_config(record["init"])
    except (TypeError, ValueError, KeyError, RecursionError) as error:
        raise CheckpointError(f"{where}: {error}") from None
    try:
        source = TensorSource.from_json(record["source"], where) if "source" in record else None
        writes = writes_from_json(record["writes"], f"{where}: writes") if "writes" in record else ()
    except RecursionError:
        raise CheckpointError(f"{where}: unreadable source or writes record") from None
    try:
        spec = TensorSpec(entry.name, entry.shape, entry.dtype, init, tuple(zero_rows), writes, source)
        # a custom function named but not registered is never imported: nothing to call
        spec.check() if spec.resolved else spec.check_rows()
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    return spec, entry, spec.resolved


def _check_consistency(path: str, shards: list[_Shard], weight_map: dict[str, str] | None) -> None:
    """One seed and stream version; with an index, every tensor exactly once, where it says."""
    seeds = {s.seed for s in shards}
    if len(seeds) > 1:
        raise CheckpointError(
            f"{path}: shards written with different seeds ({', '.join(map(str, sorted(seeds)))})"
        )
    if len({s.stream_version for s in shards}) > 1:
        raise CheckpointError(f"{path}: shards written with different stream versions")
    if len({s.checkpoint for s in shards}) > 1:
        raise CheckpointError(
            f"{path}: shards of different checkpoints (another config, manifest or shard layout)"
        )
    holder: dict[str, str] = {}
    for shard in shards:
        file = os.path.basename(shard.path)
        for spec, _, _ in shard.specs:
            if spec.name in holder:
                raise CheckpointError(
                    f"{path}: tensor {shown(spec.name)} is in {holder[spec.name]} and in {file}"
                )
            holder[spec.name] = file
    if weight_map is None:
        return
    for name, file in holder.items():
        if name not in weight_map:
            raise CheckpointError(f"{path}: tensor {shown(name)} of {file} is not in the index")
        if weight_map[name] != file:
            raise CheckpointError(f"{path}: the index puts tensor {shown(name)} in {shown(weight_map[name])}, "
                                  f"but {file} holds it")  # fmt: skip
    for name in weight_map:
        if name not in holder:
            raise CheckpointError(f"{path}: the index names tensor {shown(name)}, which no shard holds")


def _check_work(path: str, shards: list[_Shard]) -> None:
    """Refuse a whole-tensor scheme on a stream tensor larger than the files (module docstring)."""
    budget = max(sum(os.stat(s.path).st_size for s in shards), WHOLE_STREAM_FLOOR)
    for shard in shards:
        for spec, _, regenerable in shard.specs:
            if spec.source is None or not regenerable or not whole_tensor(spec):
                continue
            need = math.prod(spec.stream_shape) * spec.dtype.itemsize
            if need > budget:
                raise CheckpointError(
                    f"{shard.path}: tensor {shown(spec.name)} needs its whole stream tensor of {need:,} bytes "
                    f"(source {shown(spec.stream_name)}), more than the {budget:,} bytes of the files: not plausible"
                )


def verify_checkpoint(
    path: StrPath, *, chunk_bytes: int = 64 << 20, progress: Callable[[int], object] | None = None
) -> VerifyReport:
    """Check the checkpoint's structure (module docstring), then regenerate and compare every
    tensor; the report lists those that differ, by name.

    >>> import tempfile, fastinit.checkpoint as ckpt
    >>> m = ckpt.manifest_from_json([{"name": "w", "shape": [8, 4], "init": {"scheme": "normal"}}])
    >>> out = tempfile.mkdtemp(); _ = ckpt.write_checkpoint(m, out, seed=3)
    >>> ckpt.verify_checkpoint(out).passed
    True
    """
    path = os.fspath(path)
    files, weight_map = _layout(path)
    shards = [_shard(file) for file in files]
    _check_consistency(path, shards, weight_map)
    _check_work(path, shards)
    report = VerifyReport()
    for shard in shards:
        file = os.path.basename(shard.path)
        with os.fdopen(open_regular(shard.path), "rb") as f, shard_cache():  # (blocks of one fused tensor)
            for spec, entry, regenerable in shard.specs:
                if not regenerable:
                    report.unverifiable.append((spec.name, file))
                    continue
                equal = _compare(f, spec, entry, shard, chunk_bytes, progress)
                (report.ok.append(spec.name) if equal else report.different.append((spec.name, file)))
    return report


def _compare(f, spec: TensorSpec, entry, shard: _Shard, chunk_bytes: int, progress) -> bool:
    equal = True
    chunks = list(row_chunks(spec, max(chunk_bytes, spec.nbytes) if whole_tensor(spec) else chunk_bytes))
    buf = np.empty(max([b1 - b0 for _, _, b0, b1 in chunks] + [1]), np.uint8)  # rows > chunk too
    for r0, r1, b0, b1 in chunks:
        try:
            expected = generate_chunk(spec, shard.seed, r0, r1, buf)
        except (TypeError, ValueError, ArithmeticError, MemoryError) as error:
            raise CheckpointError(
                f"{shard.path}: tensor {shown(spec.name)}: cannot regenerate ({str(error) or 'out of memory'})"
            ) from None
        f.seek(shard.data_start + entry.begin + b0)
        if f.read(b1 - b0) != expected.tobytes():
            equal = False
        if progress is not None:
            progress(b1 - b0)
    return equal
