"""Before/after of the checkpoint writer's per-shard digest (XXH3-128) (TinyLlama bf16, 2.2 GB), interleaved.

    python benchmarks/writer_hash_overhead.py OUTDIR [durable] [REV]   (ROUNDS=3 by default)

"before" is writer.py at git revision REV (default b41e542~1, the writer without hashing),
"after" the working tree's; also a plain write of the same number of bytes, and XXH3-128 and sha256 alone (the
digest the writer uses and the one it first used).
Prints wall seconds and the process's CPU seconds (steadier on a shared machine).
"""
import hashlib, importlib.util, xxhash, os, resource, shutil, subprocess, sys, tempfile, time
import numpy as np
import fastinit.checkpoint as ck
from fastinit.checkpoint import writer as new

rev = sys.argv[3] if len(sys.argv) > 3 else "b41e542~1"
source = subprocess.run(["git", "show", f"{rev}:fastinit/checkpoint/writer.py"], capture_output=True, check=True,
                        cwd=os.path.dirname(os.path.abspath(__file__))).stdout
old_path = os.path.join(tempfile.mkdtemp(), "old_writer.py")
with open(old_path, "wb") as f:
    f.write(source)
spec = importlib.util.spec_from_file_location("fastinit.checkpoint.old_writer", old_path)
old = importlib.util.module_from_spec(spec); sys.modules[spec.name] = old; spec.loader.exec_module(old)
base = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "page cache"
opts = {} if mode == "page cache" else dict(stream=True, fsync=True)
m = ck.manifest_from_config(ck.preset_config("tinyllama-1.1b"), dtype="bfloat16")
nbytes = m.nbytes
buf = np.random.default_rng(0).integers(0, 255, 64 << 20, dtype=np.uint8)

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
cpus = {}
def run(label, f):
    out = os.path.join(base, label.replace(" ", "_"))
    shutil.rmtree(out, ignore_errors=True)
    c = cpu(); t = time.perf_counter(); f(out); dt = time.perf_counter() - t
    cpus.setdefault(label, []).append(cpu() - c)
    shutil.rmtree(out, ignore_errors=True)
    return dt

def plain(out):
    os.makedirs(out)
    fd = os.open(os.path.join(out, "x"), os.O_WRONLY | os.O_CREAT)
    left = nbytes
    while left > 0:
        n = min(left, buf.size); os.write(fd, buf[:n]); left -= n
    if opts: os.fsync(fd)
    os.close(fd)

def digest(hasher):
    h = hasher(); left = nbytes
    while left > 0:
        n = min(left, buf.size); h.update(buf[:n]); left -= n

variants = {
    "before (no hash)": lambda out: old.write_checkpoint(m, out, seed=0, **opts),
    "after (xxh3 while writing)": lambda out: new.write_checkpoint(m, out, seed=0, **opts),
    "plain write of the same bytes": plain,
    "xxh3_128 alone, 1 thread": lambda out: digest(xxhash.xxh3_128),
    "sha256 alone, 1 thread": lambda out: digest(hashlib.sha256),
}
times = {k: [] for k in variants}
run("warm", variants["after (xxh3 while writing)"]); run("warm", variants["before (no hash)"])
for r in range(int(os.environ.get("ROUNDS", "3"))):
    keys = list(variants) if r % 2 == 0 else list(variants)[::-1]
    for k in keys:
        times[k].append(run(k, variants[k]))
cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
print(f"{mode}; {cpu}, {os.cpu_count()} cores; {nbytes/1e9:.2f} GB; load {os.getloadavg()[0]:.1f}")
for k, v in times.items():
    c = cpus[k][-len(v):]
    print(f"{k:32s} best {min(v):6.2f} s ({nbytes/min(v)/1e9:5.2f} GB/s)  all {' '.join(f'{x:.2f}' for x in v)}"
          f"  | CPU s: min {min(c):.2f} all {' '.join(f'{x:.2f}' for x in c)}")
