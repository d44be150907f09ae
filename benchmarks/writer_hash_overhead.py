"""Before/after of the checkpoint writer's per-shard digest (TinyLlama bf16, 2.2 GB), interleaved.

    python benchmarks/writer_hash_overhead.py OUTDIR [durable] [REV]   (ROUNDS=3 by default)

"before" is writer.py at git revision REV (default b41e542~1, the writer without digests),
"after" the working tree's (XXH3-128 of each chunk on the IO thread as it is written). Also
timed in the same rounds: a plain write of the same number of bytes, and XXH3-128 and sha256
alone over them. Prints wall seconds and the process's CPU seconds (steadier on a shared
machine) and the CPU model.
"""

import hashlib
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import xxhash

import fastinit.checkpoint as ck
from fastinit.checkpoint import writer as new


def load_old_writer(rev: str):
    here = os.path.dirname(os.path.abspath(__file__))
    source = subprocess.run(["git", "show", f"{rev}:fastinit/checkpoint/writer.py"], capture_output=True,
                            check=True, cwd=here).stdout  # fmt: skip
    path = os.path.join(tempfile.mkdtemp(), "old_writer.py")
    with open(path, "wb") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("fastinit.checkpoint.old_writer", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    base = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "page cache"
    old = load_old_writer(sys.argv[3] if len(sys.argv) > 3 else "b41e542~1")
    opts = {} if mode == "page cache" else dict(stream=True, fsync=True)
    m = ck.manifest_from_config(ck.preset_config("tinyllama-1.1b"), dtype="bfloat16")
    nbytes = m.nbytes
    buf = np.random.default_rng(0).integers(0, 255, 64 << 20, dtype=np.uint8)

    def plain(out):
        os.makedirs(out)
        fd = os.open(os.path.join(out, "x"), os.O_WRONLY | os.O_CREAT)
        left = nbytes
        while left > 0:
            n = min(left, buf.size)
            os.write(fd, buf[:n])
            left -= n
        if opts:
            os.fsync(fd)
        os.close(fd)

    def digest(hasher):
        h, left = hasher(), nbytes
        while left > 0:
            n = min(left, buf.size)
            h.update(buf[:n])
            left -= n

    variants = {
        "before (no digest)": lambda out: old.write_checkpoint(m, out, seed=0, **opts),
        "after (xxh3 while writing)": lambda out: new.write_checkpoint(m, out, seed=0, **opts),
        "plain write of the same bytes": plain,
        "xxh3_128 alone, 1 thread": lambda out: digest(xxhash.xxh3_128),
        "sha256 alone, 1 thread": lambda out: digest(hashlib.sha256),
    }
    times = {k: [] for k in variants}
    cpus = {k: [] for k in variants}

    def run(label, f):
        out = os.path.join(base, label.replace(" ", "_").replace("(", "").replace(")", ""))
        shutil.rmtree(out, ignore_errors=True)
        c, t = cpu_seconds(), time.perf_counter()
        f(out)
        dt = time.perf_counter() - t
        shutil.rmtree(out, ignore_errors=True)
        return dt, cpu_seconds() - c

    run("warm", variants["after (xxh3 while writing)"])
    run("warm", variants["before (no digest)"])
    for r in range(int(os.environ.get("ROUNDS", "3"))):
        for k in list(variants) if r % 2 == 0 else list(variants)[::-1]:
            dt, c = run(k, variants[k])
            times[k].append(dt)
            cpus[k].append(c)
    model = next(
        line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
    )
    print(f"{mode}; {model}, {os.cpu_count()} cores; {nbytes / 1e9:.2f} GB; load {os.getloadavg()[0]:.1f}")
    for k, v in times.items():
        c = cpus[k]
        print(f"{k:32s} best {min(v):6.2f} s ({nbytes / min(v) / 1e9:5.2f} GB/s)  all "
              f"{' '.join(f'{x:.2f}' for x in v)}  | CPU s: min {min(c):.2f} all {' '.join(f'{x:.2f}' for x in c)}")  # fmt: skip


if __name__ == "__main__":
    main()
