"""``fastinit checkpoint`` on a traced manifest against the hand-written family code it
replaced (issue #13): the same TinyLlama-1.1B-shaped bfloat16 checkpoint written by each, in
alternating fresh processes, and the tensors compared.

    python benchmarks/traced_manifest_writer.py --old /path/to/checkout-of-579a4b4 [--repeat 3]

The old checkout is imported through PYTHONPATH; its kernels compile on its first run (not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
import fastinit.checkpoint as ck
out = sys.argv[1]
start = time.perf_counter()
manifest = ck.manifest_from_config(ck.preset_config("tinyllama-1.1b"), dtype="bfloat16")
built = time.perf_counter()
ck.write_checkpoint(manifest, out, seed=0, max_shard_size="5GB")
done = time.perf_counter()
print(json.dumps({"manifest_s": built - start, "write_s": done - built, "tensors": len(manifest)}))
"""


def run(pythonpath: str | None, out: str) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    shutil.rmtree(out, ignore_errors=True)
    os.sync()  # the previous run's dirty pages reach the disk first: each run starts clean
    result = subprocess.run(
        [sys.executable, "-c", CHILD, out], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def same_tensors(a: str, b: str) -> bool:
    from safetensors import safe_open

    def load(d):
        tensors = {}
        for name in sorted(os.listdir(d)):
            if name.endswith(".safetensors"):
                with safe_open(os.path.join(d, name), "pt") as f:
                    tensors.update({k: f.get_tensor(k) for k in f.keys()})
        return tensors

    x, y = load(a), load(b)
    return x.keys() == y.keys() and all(bool((x[k] == y[k]).all()) for k in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old", required=True, help="a checkout of the commit before the trace (579a4b4)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="fastinit-traced-")
    try:
        outs = {"traced": os.path.join(root, "traced"), "hand-written": os.path.join(root, "old")}
        paths = {"traced": None, "hand-written": os.path.abspath(args.old)}
        run(paths["hand-written"], outs["hand-written"])  # compiles the old checkout's kernels
        results: dict[str, list[dict]] = {k: [] for k in outs}
        for _ in range(args.repeat):
            for which in outs:
                results[which].append(run(paths[which], outs[which]))
        for which, runs in results.items():
            writes = ", ".join(f"{r['write_s']:.2f}" for r in runs)
            best = min(r["write_s"] for r in runs)
            manifest = min(r["manifest_s"] for r in runs)
            print(f"{which:>13}: write best {best:.2f} s (runs: {writes}); manifest {manifest:.2f} s; "
                  f"{runs[0]['tensors']} tensors")  # fmt: skip
        print("same tensor bytes:", same_tensors(outs["traced"], outs["hand-written"]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
