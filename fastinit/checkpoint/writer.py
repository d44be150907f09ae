"""The streaming, sharded safetensors writer.

Layout (Hugging Face's): ``model.safetensors`` when everything fits in ``max_shard_size``,
else ``model-0000k-of-0000N.safetensors`` plus ``model.safetensors.index.json``
(``metadata.total_size``, ``weight_map``), and the model's ``config.json``. Tensors are put in
shards in manifest order, a new shard starting when the next tensor would overflow the current
one (a tensor larger than the limit gets a shard of its own), as ``save_pretrained`` does.

How it writes: every header is computed from shapes before any value exists; each tensor is
then generated in chunks of rows (``index=``) into one of two buffers, while a writer thread
``pwrite``s the other at the tensor's place in the file, so generation overlaps the IO and
memory stays at two chunks whatever the model size. Values depend only on (seed, name, index),
so the bytes do not depend on the chunk size, the shard size or the thread count.

A tensor with a ``source`` (a block of a bigger virtual tensor, manifest.py) is generated the same
way: a chunk of its rows is a sub-block of the stream tensor, generated with ``index=`` straight
into the chunk's buffer seen through the source's axis permutation; an overlay (``writes``) is
generated for exactly the positions where it meets the chunk and written over them, in order. So
a block of a virtual tensor of any size costs its own bytes. The schemes that need their whole
tensor (orthogonal, sparse, ...) write a tensor in one piece; for one with a source the stream
tensor is generated once and kept while the next tensors of the shard are blocks of it (the
per-expert tensors of one fused parameter), so it is not factored again for each block.

Safety: a directory has one owner and holds one checkpoint. A run holds a lock file in it
(dirlock.py; the parts K/N of one checkpoint may hold it together, any other second writer is
refused) and refuses a directory holding another checkpoint (other seed, config, dtype or shard
size) or weight files it did not write, unless ``overwrite=True``, which removes them first. A
shard is written under a hidden temporary name unique to the run, created with
O_EXCL|O_NOFOLLOW (no symlink in the directory is ever followed), and renamed only when complete,
so an interrupted or killed run never leaves a file that looks complete; temporary files of
dead runs are removed by the next run. Each shard's XXH3-128 digest, computed from the bytes as they
are written, is recorded in ``.<shard>.fastinit-xxh3`` (one ``<hex>  <shard>`` line) once the shard
is in place; ``resume=True`` keeps only shards whose header, size and hash match. The index and
config.json are written once every shard is in place, by whichever part completes the set.
Disk-full and permission problems raise ``CheckpointError`` and leave no partial final file.
``fsync=True`` also flushes each shard to the disk before the rename (durable against power
loss; off by default, as ``save_pretrained`` does not flush); ``stream=True`` starts the disk
write of every chunk at once and drops it from the page cache.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import numbers
import os
import re
import shutil
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import xxhash

from .. import __version__
from ..rng.streams import STREAM_VERSION
from ..typing import StrPath
from . import dirlock
from .dirlock import PARTIAL_SUFFIX, DirectoryLock, create_exclusive, temporary_name
from .manifest import CheckpointError, Manifest, TensorSpec
from .safetensors_format import HeaderEntry, build_header

__all__ = [
    "parse_size",
    "plan_shards",
    "prepare_directory",
    "claim_directory",
    "shards_to_write",
    "write_shard",
    "finalize",
    "write_checkpoint",
    "row_chunks",
    "generate_chunk",
    "whole_tensor",
    "ShardPlan",
    "WriteResult",
    "INDEX_NAME",
    "HASH_SUFFIX",
    "hash_record_name",
    "checkpoint_id",
]

INDEX_NAME = "model.safetensors.index.json"
HASH_SUFFIX = ".fastinit-xxh3"
DEFAULT_CHUNK_BYTES = 64 << 20
MAX_CHUNK_BYTES = 2**40  # two buffers of this size are allocated: anything larger is a mistake
# files a loader could pick up as the model's weights: in the directory only if this run wrote them
_WEIGHT_FILE = re.compile(r"\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf|npz)$|\.index\.json$")
# (O_NONBLOCK: opening a FIFO planted at a checkpoint name must not wait for a writer)
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_FADV_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", None)
# the stream-tensor cache of the shard being written or verified in this thread (generate_chunk's
# ``cache`` when none is passed): the blocks of one fused tensor in a shard share its generation
_SHARD_CACHE: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "fastinit_shard_cache", default=None
)
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip
_PREFIXES = {"K": 3, "M": 6, "G": 9, "T": 12}  # a prefix alone: 10**k bytes or 2**(10 k / 3)?


def parse_size(size: int | str) -> int:
    """Bytes from an int or a string such as "100KB", "20MB", "5GB" (powers of 10) or "4GiB"
    (powers of 2), read as transformers' ``save_pretrained(max_shard_size=...)`` reads them:
    units in any case, except that a lowercase final "b" after K, M, G or T means bits ("5Gb"
    is 625,000,000 bytes), and a prefix without "B" ("5G") is refused, as transformers refuses
    it. Beyond transformers: plain byte counts ("150000", "7B"), "TB" / "TiB", decimals that
    come to whole bytes ("1.5GB").

    >>> parse_size("5GB"), parse_size("100KB"), parse_size("1GiB"), parse_size(1000), parse_size("8Mb")
    (5000000000, 100000, 1073741824, 1000, 1000000)
    """
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        value = int(size)
    else:
        match = (
            re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", size) if isinstance(size, str) else None
        )
        unit = match.group(2).upper() if match else None
        if match and unit in _PREFIXES:
            number = match.group(1)
            raise CheckpointError(
                f"max_shard_size={size!r}: say which unit, as transformers requires: {number}{unit}B "
                f"(10**{_PREFIXES[unit]} bytes) or {number}{unit}iB (2**{10 * _PREFIXES[unit] // 3})"
            )
        if not match or unit not in _UNITS and unit != "":
            raise CheckpointError(
                f"max_shard_size={size!r}: use an int number of bytes or a size such as 100KB, 20MB, 5GB, 4GiB"
            )
        exact = Fraction(match.group(1)) * _UNITS.get(unit, 1)  # (exact: "1.1KB" is 1100 bytes)
        if len(unit) == 2 and match.group(2).endswith("b"):
            exact /= 8  # bits, as transformers reads "Gb", "gb", "Mb", ...
        if exact.denominator != 1:
            raise CheckpointError(f"max_shard_size={size!r} is not a whole number of bytes")
        value = int(exact)
    if value <= 0:
        raise CheckpointError(f"max_shard_size={size!r} must be positive")
    return value


@dataclass
class ShardPlan:
    """One output file: its name, tensors, header bytes and data offsets."""

    filename: str
    tensors: list[TensorSpec]
    header: bytes
    entries: list[HeaderEntry]

    @property
    def size(self) -> int:
        return len(self.header) + (self.entries[-1].end if self.entries else 0)


@dataclass
class WriteResult:
    """What ``write_checkpoint`` did. ``complete``: every shard of the checkpoint is in place and
    the index and config.json are written (False for a part whose other parts are not done)."""

    directory: str
    files: list[str]
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    total_bytes: int = 0
    seconds: float = 0.0
    complete: bool = True


def hash_record_name(filename: str) -> str:
    """The file recording a shard's digest: ``.<shard>.fastinit-xxh3``, one ``<hex>  <shard>`` line.

    XXH3-128, not a cryptographic hash: it guards against torn writes and flipped bytes (whoever can
    rewrite a shard can rewrite its record too) and runs at memory speed (~20 GB/s, against ~1 GB/s
    for sha256), so hashing while writing costs the writer nothing measurable.

    >>> hash_record_name("model-00001-of-00002.safetensors")
    '.model-00001-of-00002.safetensors.fastinit-xxh3'
    """
    return f".{filename}{HASH_SUFFIX}"


def file_metadata(tensors: list[TensorSpec], seed: int, checkpoint_id: str) -> dict[str, str]:
    """The ``__metadata__`` of a shard: enough to regenerate or verify every tensor in it, and
    the id of the checkpoint it belongs to (see ``checkpoint_id``)."""
    return {
        "format": "pt",
        "fastinit.version": __version__,
        "fastinit.stream_version": str(STREAM_VERSION),
        "fastinit.seed": str(seed),
        "fastinit.checkpoint": checkpoint_id,
        "fastinit.tensors": json.dumps({t.name: t.describe() for t in tensors}, separators=(",", ":")),
    }


def checkpoint_id(manifest: Manifest, filenames: list[str], groups: list[list[TensorSpec]], seed: int) -> str:
    """Names the whole checkpoint: seed, model config, every tensor's record and which file holds
    it. Every shard records it, so ``verify`` can tell shards of two checkpoints apart even when
    each is consistent alone (same names and seed, another config's initializers)."""
    hasher = hashlib.sha256(f"{seed}\0".encode())
    hasher.update(json.dumps(manifest.config, sort_keys=True, default=str).encode() + b"\0")
    for filename, group in zip(filenames, groups, strict=True):
        hasher.update(filename.encode() + b"\0")
        for t in group:
            hasher.update(json.dumps([t.name, t.describe()], sort_keys=True, default=str).encode() + b"\0")
    return hasher.hexdigest()[:32]


def plan_shards(manifest: Manifest, max_shard_size: int | str, seed: int) -> list[ShardPlan]:
    """Split the manifest into shard files as Hugging Face does (see module docstring)."""
    limit = parse_size(max_shard_size)
    for spec in manifest.tensors:  # (overrides may have changed the initializers)
        spec.check()
    groups: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in manifest.tensors:
        if groups[-1] and size + spec.nbytes > limit:
            groups.append([])
            size = 0
        groups[-1].append(spec)
        size += spec.nbytes
    names = (
        ["model.safetensors"]
        if len(groups) == 1
        else [f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors" for k in range(len(groups))]
    )
    plans = []
    identity = checkpoint_id(manifest, names, groups, seed)
    for filename, group in zip(names, groups, strict=True):
        header, entries = build_header(
            [(t.name, t.dtype, t.shape) for t in group], file_metadata(group, seed, identity)
        )
        plans.append(ShardPlan(filename, group, header, entries))
    return plans


def whole_tensor(spec: TensorSpec) -> bool:
    """Whether the tensor is written in one piece: its initializer, or an overlay's, needs the
    whole tensor at once (a QR, whole columns: its scheme's record says so)."""
    return spec.init.record.whole_tensor or any(init.record.whole_tensor for _, init in spec.writes)


def row_chunks(spec: TensorSpec, chunk_bytes: int):
    """(row_lo, row_hi, byte_lo, byte_hi) pieces of the tensor, each at most ~chunk_bytes (one
    piece, rows None, for a 0-d tensor or a ``whole_tensor`` one)."""
    if spec.numel == 0:
        return
    if not spec.shape or whole_tensor(spec):
        yield None, None, 0, spec.nbytes
        return
    rows = spec.shape[0]
    row_bytes = spec.nbytes // rows
    step = max(1, chunk_bytes // max(row_bytes, 1))
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        yield r0, r1, r0 * row_bytes, r1 * row_bytes


def generate_chunk(
    spec: TensorSpec, seed: int, r0, r1, buf: np.ndarray, *, cache: dict | None = None
) -> np.ndarray:
    """Rows [r0, r1) of the tensor (the whole tensor when r0 is None) into buf; its bytes.

    ``cache``: a dict the caller keeps for a run (a shard): the stream tensor of a whole-tensor
    scheme with a source is kept there (one at a time) for the next blocks of it. Default: the
    cache of the shard this thread is writing or verifying (``shard_cache``), if any."""
    if cache is None:
        cache = _SHARD_CACHE.get()
    storage = spec.dtype.storage
    if r0 is None:
        shape, index = spec.shape, None
    else:
        shape, index = (r1 - r0,) + spec.shape[1:], (slice(r0, r1),)
    nbytes = spec.dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    view = buf[:nbytes].view(storage).reshape(shape)
    if spec.source is None and not spec.writes:
        spec.init(spec.shape, seed=seed, name=spec.name, dtype=spec.dtype, index=index, out=view)
    elif r0 is None and cache is not None and spec.source is not None and whole_tensor(spec):
        geometry = spec.geometry
        stream = _stream_tensor(spec, seed, cache)
        view[...] = stream[geometry.index + (Ellipsis,)].transpose(geometry.axes)
    else:
        _generate_block(spec, seed, r0, r1, view)
    lo = 0 if r0 is None else r0
    for row in spec.zero_rows:
        if lo <= row < lo + (shape[0] if shape else 1):
            view[row - lo] = 0
    return buf[:nbytes]


@contextlib.contextmanager
def shard_cache():
    """``with shard_cache():`` gives the generate_chunk calls of this thread in the block one cache
    (see generate_chunk), dropped at its end."""
    token = _SHARD_CACHE.set({})
    try:
        yield
    finally:
        _SHARD_CACHE.reset(token)


def _generate_block(spec: TensorSpec, seed: int, r0, r1, view: np.ndarray) -> None:
    """Stored rows [r0, r1) (all when r0 is None) of a tensor with a source or overlays into view:
    the stream's sub-block with ``index=``, then each overlay where it meets the sub-block, each
    written through the source's axis permutation straight into view."""
    g = spec.geometry
    region = list(g.region)
    if g.row_dim is None:
        lo, hi = 0, 1
    else:
        a, s, n, _ = region[g.row_dim]
        lo, hi = (0, n) if r0 is None else (r0, r1)
        region[g.row_dim] = (a + lo * s, s, hi - lo, True)
    target = view.transpose(g.inverse)  # the stored chunk in the stream's dimension order
    common = dict(seed=seed, name=spec.stream_name, dtype=spec.dtype)
    spec.init(g.shape, index=_index_of(region), out=target, **common)
    if not g.overlays:
        return
    for k in np.flatnonzero((g.row_first < hi) & (g.row_last >= lo)).tolist():
        init, dims = g.overlays[k]
        index, place = [], []
        for d, ((a, s, _, keep), local) in enumerate(zip(g.region, dims, strict=True)):
            if not keep:
                index.append(a)
                continue
            first, step, count = local
            offset = 0
            if d == g.row_dim:  # the overlay's rows within [lo, hi)
                j0, j1 = max(0, -(-(lo - first) // step)), min(count - 1, (hi - 1 - first) // step)
                first, count, offset = first + j0 * step, j1 - j0 + 1, lo
            start = a + s * first
            stop = start + s * step * count
            index.append(slice(start, stop if stop >= 0 else None, s * step))
            place.append(slice(first - offset, first - offset + step * (count - 1) + 1, step))
        init(g.shape, index=tuple(index), out=target[tuple(place) + (Ellipsis,)], **common)


def _index_of(region) -> tuple:
    """The index= of a region: (start, step, count, kept) per dimension."""
    index = []
    for start, step, count, keep in region:
        stop = start + step * count
        index.append(slice(start, stop if stop >= 0 else None, step) if keep else start)
    return tuple(index)


def _stream_tensor(spec: TensorSpec, seed: int, cache: dict) -> np.ndarray:
    """The whole stream tensor of ``spec`` with its overlays (storage dtype), from the cache when
    the previous tensor was a block of the same one."""
    record = spec.describe()
    key = json.dumps([seed, spec.stream_name, list(spec.stream_shape), spec.dtype.name, record["init"],
                      record.get("writes", [])], sort_keys=True)  # fmt: skip
    if cache.get("key") != key:
        cache.clear()  # (the previous one goes before the next one is made)
        shape = spec.stream_shape
        stream = np.empty(shape, spec.dtype.storage)
        common = dict(seed=seed, name=spec.stream_name, dtype=spec.dtype)
        spec.init(shape, out=stream, **common)
        for index, init in spec.writes:
            init(shape, index=index, out=stream[index + (Ellipsis,)], **common)
        cache.update(key=key, stream=stream)
    return cache["stream"]


def _pwrite_all(fd: int, data, offset: int, stream: bool = False, hasher=None) -> None:
    view = memoryview(data).cast("B")
    start, total = offset, len(view)
    if hasher is not None:  # (chunks arrive in file order: one writer thread, in submission order)
        hasher.update(view)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
    if stream and _FADV_DONTNEED is not None:
        # Start writing this chunk to the disk now and let its pages leave the cache: the disk
        # works while the next chunks are generated, and a checkpoint larger than the RAM never
        # stalls on the kernel's dirty-page limit.
        os.posix_fadvise(fd, start, total, _FADV_DONTNEED)


def _os_error(error: OSError, path: str) -> CheckpointError:
    if error.errno == errno.ENOSPC:
        return CheckpointError(f"disk full while writing {path}; the partial file was removed")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return CheckpointError(f"cannot write {path}: {os.strerror(error.errno)}")
    return CheckpointError(f"writing {path} failed: {error}")


def _open_regular(path: str):
    """A binary file object for a regular file; None for a symlink, a directory, a missing file or
    anything else (checked on the descriptor: fdopen refuses a directory with an OSError)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        regular = False
    if not regular:
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _discard(partial: str | None, error: BaseException, path: str):
    """After a failed write: remove the temporary file it created (if any) and raise the error
    again, an OSError as a one-line CheckpointError naming the final path."""
    if partial is not None:
        try:
            os.remove(partial)
        except OSError:
            pass
    if isinstance(error, OSError):
        raise _os_error(error, path) from None
    raise error


def _read_regular(path: str, limit: int) -> bytes | None:
    """The first ``limit`` bytes of a regular file; None for a symlink, a missing file or anything
    else. (Always bounded: a file planted in the directory may be of any size.)"""
    f = _open_regular(path)
    if f is None:
        return None
    with f:
        return f.read(limit)


def _file_digest(path: str) -> str | None:
    f = _open_regular(path)
    if f is None:
        return None
    hasher = xxhash.xxh3_128()
    with f:
        while block := f.read(8 << 20):
            hasher.update(block)
    return hasher.hexdigest()


def _recorded_digest(directory: str, filename: str) -> str | None:
    raw = _read_regular(os.path.join(directory, hash_record_name(filename)), 4096)
    match = re.fullmatch(rb"([0-9a-f]{32})  (.+)\n", raw or b"")
    return match.group(1).decode() if match and match.group(2) == filename.encode() else None


def _shard_in_place(directory: str, plan: ShardPlan) -> bool:
    """The shard file is there with this plan's header and size, and its hash is recorded."""
    path = os.path.join(directory, plan.filename)
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISREG(info.st_mode) and info.st_size == plan.size
            and _read_regular(path, len(plan.header)) == plan.header
            and _recorded_digest(directory, plan.filename) is not None)  # fmt: skip


def _shard_is_complete(directory: str, plan: ShardPlan) -> bool:
    """A shard from an earlier run is kept when it has this run's header and size and its bytes
    still have the digest recorded when it was written."""
    if not _shard_in_place(directory, plan):
        return False
    return _file_digest(os.path.join(directory, plan.filename)) == _recorded_digest(directory, plan.filename)


def _write_shard(directory: str, plan: ShardPlan, seed: int, chunk_bytes: int, fsync: bool, progress,
                 stream: bool, token: str, lock) -> None:  # fmt: skip
    path = os.path.join(directory, plan.filename)
    partial = os.path.join(directory, temporary_name(plan.filename, token))
    buffers = [np.empty(chunk_bytes, np.uint8), np.empty(chunk_bytes, np.uint8)]
    pending = [None, None]
    hasher = xxhash.xxh3_128(plan.header)
    fd = None
    try:
        fd = create_exclusive(partial)
        try:
            if hasattr(os, "posix_fallocate"):
                try:  # reserve the space now: a full disk fails here, not half-way
                    os.posix_fallocate(fd, 0, plan.size)
                except OSError as error:
                    if error.errno == errno.ENOSPC:
                        raise
            _pwrite_all(fd, plan.header, 0)
            data_start = len(plan.header)
            with (
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastinit-writer") as writer,
                shard_cache(),  # (a fused stream tensor its blocks in this shard share)
            ):
                k = 0
                for spec, entry in zip(plan.tensors, plan.entries, strict=True):
                    big = max(chunk_bytes, spec.nbytes) if whole_tensor(spec) else chunk_bytes
                    for r0, r1, b0, b1 in row_chunks(spec, big):
                        slot = k % 2
                        if pending[slot] is not None:
                            pending[slot].result()  # the write that used this buffer is done
                        if buffers[slot].size < b1 - b0:
                            buffers[slot] = np.empty(b1 - b0, np.uint8)
                        data = generate_chunk(spec, seed, r0, r1, buffers[slot])
                        pending[slot] = writer.submit(
                            _pwrite_all, fd, data, data_start + entry.begin + b0, stream, hasher
                        )
                        if progress is not None:
                            pending[slot].add_done_callback(lambda _f, n=b1 - b0: progress(n))
                        k += 1
                for p in pending:
                    if p is not None:
                        p.result()
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if lock is not None:
            lock.check()
        os.replace(partial, path)
    except BaseException as error:
        _discard(partial if fd is not None else None, error, path)
    _write_small_file(os.path.join(directory, hash_record_name(plan.filename)),
                      f"{hasher.hexdigest()}  {plan.filename}\n", token, fsync=fsync)  # fmt: skip


def _write_small_file(path: str, text: str, token: str, fsync: bool = False) -> None:
    directory, filename = os.path.split(path)
    partial = os.path.join(directory, temporary_name(filename, token))
    created = False
    try:
        fd = create_exclusive(partial)
        created = True
        with os.fdopen(fd, "w") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException as error:
        _discard(partial if created else None, error, path)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise CheckpointError(f"cannot remove {path}: {os.strerror(error.errno or 0)}") from None


# A lock's own temporary exists before its lock does (it is hard-linked into place), so its
# token is in no lock yet: it is removed only once older than any lock creation can take.
_LOCK_TEMPORARY_MAX_AGE = 600.0  # seconds


def _remove_dead_temporaries(directory: str, lock: DirectoryLock) -> None:
    """Temporary files of runs that no longer hold the directory (killed, or an older fastinit)."""
    temporaries = [e for e in os.listdir(directory) if e.endswith(PARTIAL_SUFFIX)]
    live = lock.live_tokens()  # (listed after the files: a run's lock exists before its files)
    now = time.time()
    for entry in temporaries:
        if dirlock.token_of_temporary(entry) in live:
            continue
        path = os.path.join(directory, entry)
        if entry.startswith(dirlock.LOCK_PREFIX):
            try:
                if now - os.lstat(path).st_mtime < _LOCK_TEMPORARY_MAX_AGE:
                    continue
            except OSError:
                continue
        _remove(path)


def expected_small_files(manifest: Manifest, plans: list[ShardPlan]) -> dict[str, str]:
    """The index (when sharded) and config.json (when the manifest has a config): name -> text."""
    files = {}
    if len(plans) > 1:
        weight_map = {t.name: p.filename for p in plans for t in p.tensors}
        index = {
            "metadata": {"total_parameters": manifest.numel, "total_size": manifest.nbytes},
            "weight_map": dict(sorted(weight_map.items())),
        }
        files[INDEX_NAME] = json.dumps(index, indent=2) + "\n"
    if manifest.config is not None:
        files["config.json"] = json.dumps(manifest.config, indent=2) + "\n"
    return files


def checkpoint_fingerprint(manifest: Manifest, plans: list[ShardPlan]) -> str:
    """Names every byte of the checkpoint: equal for two runs exactly when they write the same files."""
    hasher = hashlib.sha256()
    for plan in plans:
        hasher.update(plan.filename.encode() + b"\0" + plan.header)
    for name, text in sorted(expected_small_files(manifest, plans).items()):
        hasher.update(name.encode() + b"\0" + text.encode())
    return hasher.hexdigest()


def other_content(directory: str, manifest: Manifest, plans: list[ShardPlan]) -> list[str]:
    """Entries of the directory that are not part of this checkpoint but could be loaded with it:
    its shard names with another header (or not regular files), an index or config.json with
    other content, any other weight file."""
    shards = {p.filename: p for p in plans}
    small = expected_small_files(manifest, plans)
    found = []
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        if entry in shards:
            plan = shards[entry]
            if _read_regular(path, len(plan.header)) != plan.header:
                found.append(entry)
        elif entry in small:
            expected = small[entry].encode()
            if _read_regular(path, len(expected) + 1) != expected:  # (a longer file is simply different)
                found.append(entry)
        elif _WEIGHT_FILE.search(entry) and not entry.startswith("."):
            found.append(entry)
    return found


def claim_directory(directory: str, manifest: Manifest, plans: list[ShardPlan], *, part=None,
                    overwrite: bool = False) -> DirectoryLock:  # fmt: skip
    """Take the directory's lock for this run (``part`` of the checkpoint ``plans``), remove
    temporary files of dead runs, and refuse (or, with ``overwrite``, remove) the files of any
    other checkpoint. Returns the held lock; release it when the run ends."""
    lock = DirectoryLock(directory, part or (1, 1), checkpoint_fingerprint(manifest, plans)).acquire()
    try:
        _remove_dead_temporaries(directory, lock)
        others = other_content(directory, manifest, plans)
        if others and not overwrite:
            shown = ", ".join(map(repr, others[:3])) + (
                f" and {len(others) - 3} more" if len(others) > 3 else ""
            )
            raise CheckpointError(
                f"{directory} holds another checkpoint or weight files fastinit did not write ({shown}); "
                "use --overwrite (overwrite=True) to replace them, or another directory"
            )
        if others:  # the index and config of a checkpoint being replaced go too: it is not complete
            others += [e for e in expected_small_files(manifest, plans) if e not in others and os.path.lexists(
                os.path.join(directory, e))]  # fmt: skip
        for entry in others:  # overwrite promises to replace files, not to delete a directory tree
            path = os.path.join(directory, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                raise CheckpointError(
                    f"{directory} has a directory at the checkpoint file name {entry!r}; overwrite removes "
                    "files, never directories: move it away or use another directory"
                )
        for entry in sorted(others, key=lambda e: not e.endswith(".index.json")):  # the index first
            _remove(os.path.join(directory, entry))
        names = {p.filename for p in plans}
        for entry in os.listdir(directory):  # hash records of shards that are not this checkpoint's
            if entry.startswith(".") and entry.endswith(HASH_SUFFIX):
                if entry[1 : -len(HASH_SUFFIX)] not in names or entry[1 : -len(HASH_SUFFIX)] in others:
                    _remove(os.path.join(directory, entry))
    except BaseException:
        lock.release()
        raise
    return lock


def check_run_arguments(seed, chunk_bytes) -> int:
    """The seed as an int; CheckpointError naming a bad seed or chunk_bytes."""
    from ..rng.streams import check_seed

    try:
        seed = check_seed(seed)
    except (TypeError, ValueError) as error:
        raise CheckpointError(str(error)) from None
    if (
        isinstance(chunk_bytes, bool)
        or not isinstance(chunk_bytes, int)
        or not 1 <= chunk_bytes <= MAX_CHUNK_BYTES
    ):
        raise CheckpointError(f"chunk_bytes={chunk_bytes!r} must be a number of bytes in [1, 2**40]")
    return seed


def check_progress(progress) -> None:
    """TypeError unless ``progress`` is None or a callable (called with a number of bytes)."""
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be None or a callable taking a number of bytes, not {type(progress).__name__}"
        )


def part_of(plans: list[ShardPlan], part) -> list[ShardPlan]:
    """The shard plans of ``part=(k, n)``: every n-th shard starting at the k-th (1-based)."""
    if part is None:
        return plans
    try:
        k, n = part
        valid = (
            all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (k, n)) and 1 <= k <= n
        )
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise CheckpointError(f"part={part!r} must be (k, n), two ints with 1 <= k <= n")
    k, n = int(k), int(n)
    if n > len(plans):
        raise CheckpointError(
            f"part={k}/{n}: the checkpoint has only {len(plans)} shard file(s); use at most "
            f"{len(plans)} parts or a smaller max_shard_size"
        )
    return plans[k - 1 :: n]


def prepare_directory(directory) -> str:
    """Create the output directory if needed and check it is writable."""
    directory = os.fspath(directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"cannot create {directory}: {os.strerror(error.errno or 0)}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot write to {directory}: permission denied")
    return directory


def shards_to_write(
    directory: str, plans: list[ShardPlan], *, resume: bool
) -> tuple[list[ShardPlan], list[str]]:
    """The plans still to write (and the file names kept), after checking free space."""
    todo, kept = [], []
    for plan in plans:
        if resume and _shard_is_complete(directory, plan):
            kept.append(plan.filename)
        else:
            todo.append(plan)
    needed = sum(p.size for p in todo)
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise CheckpointError(
            f"not enough space in {directory}: {needed / 1e9:.2f} GB to write, {free / 1e9:.2f} GB free"
        )
    return todo, kept


def write_shard(directory: str, plan: ShardPlan, seed: int, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                fsync: bool = False, stream: bool = False, progress=None, token: str | None = None,
                lock: DirectoryLock | None = None) -> str:  # fmt: skip
    """Write one shard file completely (under a temporary name, then renamed) and record its
    digest; return its name.

    The unit of work of a distributed writer: any process with the directory mounted can
    write any shard, and the file is byte-identical to the single-process writer's. ``token``
    names the run in its temporary file names (the token of its ``lock``, if it holds one).
    """
    check_progress(progress)
    token = lock.token if lock is not None else token or dirlock.new_token()
    _write_shard(directory, plan, seed, chunk_bytes, fsync, progress, stream, token, lock)
    return plan.filename


def finalize(directory: str, manifest: Manifest, plans: list[ShardPlan], *, fsync: bool = False,
             token: str | None = None) -> bool:  # fmt: skip
    """Once every shard is in place (with its hash recorded), write the index (when sharded)
    and config.json; True when it did. Several parts may finish at once: they write the same
    bytes, each under its own temporary name."""
    if not all(_shard_in_place(directory, plan) for plan in plans):
        return False
    token = token or dirlock.new_token()
    for name, text in expected_small_files(manifest, plans).items():
        _write_small_file(os.path.join(directory, name), text, token, fsync=fsync)
    if fsync and hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(directory, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return True


class _NumbaThreadCount:
    """Set Numba's thread count for a block (validated), restoring it after."""

    def __init__(self, threads):
        import numba

        self.numba, self.threads = numba, threads
        if threads is not None and (
            isinstance(threads, bool)
            or not isinstance(threads, int)
            or not 1 <= threads <= numba.config.NUMBA_NUM_THREADS
        ):
            raise CheckpointError(
                f"threads={threads!r} must be an int in [1, {numba.config.NUMBA_NUM_THREADS}]"
            )

    def __enter__(self):
        self.previous = self.numba.get_num_threads()
        if self.threads is not None:
            self.numba.set_num_threads(self.threads)

    def __exit__(self, *exc):
        self.numba.set_num_threads(self.previous)


def write_checkpoint(
    manifest: Manifest,
    directory: StrPath,
    *,
    seed: int = 0,
    max_shard_size: int | str = "5GB",
    threads: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    fsync: bool = False,
    stream: bool = False,
    progress: Callable[[int], object] | None = None,
    chunk_bytes: int | None = None,
    part: tuple[int, int] | None = None,
) -> WriteResult:
    """Write ``manifest``'s tensors, initialized from ``seed``, as a Hugging Face checkpoint.

    ``progress(nbytes)`` is called as chunks reach the file. ``stream=True`` sends each chunk
    to the disk as soon as it is written and drops it from the page cache (for checkpoints much
    larger than the RAM, or to leave other programs' cache alone); by default the kernel
    decides, as for any other write. Returns a ``WriteResult``.

    A directory holding another checkpoint (or weight files fastinit did not write) is refused
    unless ``overwrite=True``, which removes those files first; a directory another run is
    writing is refused. ``resume=True`` keeps the shards of this same checkpoint whose bytes
    still have their recorded digest; without it every shard is rewritten.

    ``part=(k, n)`` (1 <= k <= n) writes only shard files k, k + n, k + 2n, ...: n machines,
    each running its part with no communication (at the same time or not, into one shared
    directory), together write the checkpoint one machine would, file for file. The part that
    completes the set writes the index and config.json.

    >>> import tempfile, fastinit.checkpoint as ck
    >>> m = ck.manifest_from_json([{"name": "w", "shape": [64, 32], "init": {"scheme": "normal"}}])
    >>> out = tempfile.mkdtemp()
    >>> ck.write_checkpoint(m, out, seed=0).files
    ['model.safetensors']
    """
    chunk_bytes = DEFAULT_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    seed = check_run_arguments(seed, chunk_bytes)
    check_progress(progress)
    if not manifest.tensors:
        raise CheckpointError("the manifest has no tensors")
    started = time.perf_counter()
    plans = plan_shards(manifest, max_shard_size, seed)  # (a bad manifest fails before any IO)
    mine = part_of(plans, part)
    sampling_threads = _NumbaThreadCount(threads)
    directory = prepare_directory(directory)
    lock = claim_directory(directory, manifest, plans, part=part, overwrite=overwrite)
    try:
        todo, kept = shards_to_write(directory, mine, resume=resume)
        result = WriteResult(directory, [p.filename for p in mine], skipped=kept,
                             total_bytes=sum(p.size - len(p.header) for p in mine))  # fmt: skip
        if progress is not None:
            for plan in mine:
                if plan.filename in kept:
                    progress(plan.size - len(plan.header))
        with sampling_threads:
            for plan in todo:
                result.written.append(write_shard(directory, plan, seed, chunk_bytes=chunk_bytes, fsync=fsync,
                                                  stream=stream, progress=progress, lock=lock))  # fmt: skip
        lock.check()
        result.complete = finalize(directory, manifest, plans, fsync=fsync, token=lock.token)
    finally:
        lock.release()
    result.seconds = time.perf_counter() - started
    return result
