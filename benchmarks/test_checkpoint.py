"""Checkpoint writer figures (TinyLlama-1.1B shapes, bfloat16, ~2.2 GB per write).

- fastinit's writer vs the same writer writing constant bytes (generation replaced by a
  zero-filled buffer: the IO-only floor) and vs transformers building the model on the CPU and
  ``save_pretrained``-ing it in bfloat16;
- peak resident memory of the writer in a fresh process, for TinyLlama and for a model twice
  its size (the writer's memory should not grow with the model);
- a 7B-shaped run when FASTINIT_BENCH_7B=1 (13.5 GB on disk).

Every write goes to a temporary directory under FASTINIT_BENCH_DIR (default: the system's
temporary directory), removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from fastinit import checkpoint as ck
from fastinit.checkpoint import writer as writer_module

GROUP = "checkpoint: TinyLlama-1.1B shapes, bfloat16 (2.2 GB)"
BENCH_DIR = os.environ.get("FASTINIT_BENCH_DIR") or None


@pytest.fixture
def outdir():
    path = tempfile.mkdtemp(prefix="fastinit-bench-", dir=BENCH_DIR)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _manifest(preset="tinyllama-1.1b"):
    return ck.manifest_from_config(ck.preset_config(preset), dtype="bfloat16")


# "page cache": the default (the kernel writes back when it likes; the run ends when the bytes
# are in the page cache); "durable": stream=True (each chunk sent to the disk as soon as it
# is written) and fsync=True (the run ends when the bytes are on the disk).
MODES = {"page cache": {}, "durable": dict(stream=True, fsync=True)}


def _write(manifest, out, **options):
    shutil.rmtree(out, ignore_errors=True)
    ck.write_checkpoint(manifest, out, seed=0, max_shard_size="5GB", **options)


def _constant(spec, seed, r0, r1, buf):
    """The writer's generate_chunk with the sampling left out: the buffer's bytes as they are."""
    rows = spec.shape[0] if r0 is None else r1 - r0
    nbytes = spec.nbytes if r0 is None else rows * (spec.nbytes // spec.shape[0])
    return buf[:nbytes]


def _write_constant(manifest, out, **options):
    generate = writer_module.generate_chunk
    writer_module.generate_chunk = _constant
    try:
        _write(manifest, out, **options)
    finally:
        writer_module.generate_chunk = generate


@pytest.mark.parametrize("mode", list(MODES))
def test_fastinit_writer(record, outdir, mode):
    """fastinit's writer, and (interleaved, same machine state) the same writer writing
    constant bytes: the x-fill column of this row is floor time / writer time."""
    m = _manifest()
    floor_dir = outdir + "-floor"
    options = MODES[mode]
    try:
        record(f"{GROUP}, {mode}", "fastinit checkpoint (sample + write)", lambda: _write(m, outdir, **options),
               m.numel, 2, rounds=3, fill=lambda: _write_constant(m, floor_dir, **options))  # fmt: skip
    finally:
        shutil.rmtree(floor_dir, ignore_errors=True)


def test_constant_bytes_writer(record, outdir):
    """The same writer with generation replaced by a buffer of zeros: the IO floor."""
    m = _manifest()
    record(f"{GROUP}, page cache", "same writer, constant bytes (IO floor)", lambda: _write_constant(m, outdir),
           m.numel, 2, rounds=2)  # fmt: skip


def test_digest_of_the_same_bytes(record):
    """What the writer's per-shard XXH3-128 digest costs: one thread hashing as many bytes as the
    checkpoint holds (the writer hashes each chunk on its IO thread as it writes it)."""
    import xxhash

    m = _manifest()
    block = memoryview(np.full(64 << 20, 7, np.uint8))

    def digest():
        hasher, left = xxhash.xxh3_128(), m.nbytes
        while left > 0:
            hasher.update(block[: min(left, len(block))])
            left -= len(block)
        return hasher.hexdigest()

    record(f"{GROUP}, page cache", "XXH3-128 of the same bytes, one thread (the writer's digest)", digest, m.numel, 2,
           rounds=3)  # fmt: skip


def test_transformers_build_and_save(record, outdir):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        **{k: v for k, v in ck.preset_config("tinyllama-1.1b").items() if k != "dtype"}
    )
    m = _manifest()

    def build_and_save():
        shutil.rmtree(outdir, ignore_errors=True)
        model = transformers.AutoModelForCausalLM.from_config(config)
        model.to(torch.bfloat16).save_pretrained(outdir)

    record(f"{GROUP}, page cache", "transformers: from_config + save_pretrained(bf16)", build_and_save, m.numel, 2, rounds=1,
           warmup=False)  # fmt: skip


_RSS_SCRIPT = """
import json, sys
from fastinit import checkpoint as ck
config = ck.preset_config("tinyllama-1.1b")
config["num_hidden_layers"] = int(sys.argv[2])
m = ck.manifest_from_config(config, dtype="bfloat16")
ck.write_checkpoint(m, sys.argv[1], seed=0)
# VmHWM: this address space's peak (ru_maxrss would include the parent's, inherited at fork)
hwm_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"params": m.numel, "bytes": m.nbytes, "max_rss_mib": hwm_kib / 1024}))
"""


@pytest.mark.parametrize("layers", [22, 44], ids=["tinyllama-22-layers", "twice-as-large-44-layers"])
def test_peak_resident_memory(record, outdir, layers):
    """Peak RSS of a fresh process writing the checkpoint (printed; its time goes in the table)."""
    result = {}

    def run():
        shutil.rmtree(outdir, ignore_errors=True)
        out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, outdir, str(layers)], check=True,
                             capture_output=True, text=True)  # fmt: skip
        result.update(json.loads(out.stdout.strip().splitlines()[-1]))

    record("checkpoint: the writer in a fresh process (peak RSS printed)", f"{layers} layers", run, 1, 2, rounds=1,
           warmup=False)  # fmt: skip
    print(f"\n{layers} layers: {result['params'] / 1e9:.2f} B params, {result['bytes'] / 1e9:.2f} GB, "
          f"peak RSS {result['max_rss_mib']:.0f} MiB")  # fmt: skip
    assert np.isfinite(result["max_rss_mib"])


@pytest.mark.skipif(
    not os.environ.get("FASTINIT_BENCH_7B"), reason="set FASTINIT_BENCH_7B=1 (writes 13.5 GB)"
)
def test_llama_7b(record, outdir):
    m = _manifest("llama-7b")
    record("checkpoint: llama-7b shapes, bfloat16 (13.5 GB)", "fastinit checkpoint (sample + write)",
           lambda: _write(m, outdir), m.numel, 2, rounds=1, warmup=False)  # fmt: skip
