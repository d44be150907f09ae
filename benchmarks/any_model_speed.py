"""Building a TinyLlama-1.1B-shaped model in bfloat16: transformers' own init against
``fastinit.transformers.from_config``, and a plain fill of the same bytes, each in a fresh
process (peak RSS per process). Issue #13's figure.

    python benchmarks/any_model_speed.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

CONFIG = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
              num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048)  # fmt: skip

CHILD = r"""
import json, resource, sys, time
import torch
from transformers import LlamaConfig
cfg = LlamaConfig(**json.loads(sys.argv[2]))
which = sys.argv[1]
if which == "fastinit":
    import fastinit.transformers
    fastinit.transformers.from_config(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, vocab_size=128), dtype=torch.bfloat16)  # compiled kernels loaded: not timed
start = time.perf_counter()
if which == "transformers":
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
elif which == "fastinit":
    model = fastinit.transformers.from_config(cfg, seed=0, dtype=torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
else:  # a plain fill of the same number of bfloat16 values, one tensor
    n = 1_100_048_384
    torch.empty(n, dtype=torch.bfloat16).fill_(1.0)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "params": n, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def run(which: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, which, json.dumps(CONFIG)], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())  # fmt: skip
    print(f"CPU: {cpu}; torch threads: default; {args.repeat} alternating runs, fresh processes")
    results: dict[str, list[dict]] = {"transformers": [], "fastinit": [], "plain fill": []}
    for _ in range(args.repeat):
        for which in results:
            results[which].append(run(which))
    for which, runs in results.items():
        best = min(r["seconds"] for r in runs)
        rss = max(r["peak_rss_gb"] for r in runs)
        shown = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(f"{which:>12}: best {best:6.2f} s  (runs: {shown})  peak RSS {rss:.2f} GB")
    t = min(r["seconds"] for r in results["transformers"])
    f = min(r["seconds"] for r in results["fastinit"])
    print(f"fastinit.transformers.from_config is {t / f:.1f} x faster than AutoModelForCausalLM.from_config")


if __name__ == "__main__":
    main()
