"""Instructions per value of the CPU tile loops, from the assembly Numba generates on this host.

    NUMBA_CACHE_DIR=$(mktemp -d) python benchmarks/kernel_asm.py

(an empty cache directory: code loaded from Numba's cache cannot be inspected). For each
sampler it finds the vector loop with the most vector instructions and prints its length, the
values it stores per iteration (from its vector stores, so unrolling is counted), instructions
per value, zmm/ymm use, stack references and branches. docs/benchmarks.md has the table, and the
environment that shows the AVX2 code on an AVX-512 host.
"""

from __future__ import annotations

import pathlib
import re
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from fastinit.backends import cpu  # noqa: E402


def _loops(asm: str):
    """(instructions of each backward-jump loop) in a function's assembly."""
    ins, labels = [], {}
    for line in asm.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.match(r"^(\.?\w+):", s)
        if m and not line.startswith("\t"):
            labels[m.group(1)] = len(ins)
            continue
        if not s.startswith("."):
            ins.append(s)
    for i, s in enumerate(ins):
        m = re.match(r"j\w+\s+(\.LBB\w+)", s)
        if m and labels.get(m.group(1), i + 1) <= i:
            yield ins[labels[m.group(1)] : i + 1]


_WIDTH = {"x": 16, "y": 32, "z": 64}
# AVX-512's narrowing stores write a fraction of their source register
_NARROWING = {"vpmovdw": 2, "vpmovqd": 2, "vpmovqw": 4, "vpmovdb": 4, "vpmovqb": 8}


def _stored_bytes(body) -> int:
    """Bytes the loop body writes outside the stack: its vector stores (plain or narrowing)."""
    total = 0
    for x in body:
        m = re.match(r"(v\w+)\s+%([xyz])mm\d+, (-?\d*)\(%(\w+)", x)
        if m and m.group(4) != "rsp":
            total += _WIDTH[m.group(2)] // _NARROWING.get(m.group(1)[:7], 1)
    return total


def main() -> None:
    key = np.zeros(4, np.uint64)
    p = np.array([0.0, 1.0, -1.0, 1.0, 0.0228, 0.0228, 0.4772, 0.9545])
    f32, u16, f64 = np.zeros(256, np.float32), np.zeros(256, np.uint16), np.zeros(128)
    cases = []
    for name in ("uniform_f32", "normal_f32", "truncnorm_central_f32", "truncnorm_f32"):
        cases += [(f"{name} float32", name, f32), (f"{name} bfloat16", name, u16)]
    cases += [(f"{n} float64", n, f64) for n in ("uniform_f64", "normal_f64", "truncnorm_central_f64")]
    for label, name, buf in cases:
        fn = getattr(cpu, f"_fill_tiles_{name}")
        fn(buf, 0, 4, p, key)
        sig = [s for s in fn.signatures if s[0].dtype == cpu.numba.from_dtype(buf.dtype)][0]
        vector = [b for b in _loops(fn.inspect_asm(sig)) if any("mm" in x for x in b)]
        body = max(vector, key=lambda b: sum("zmm" in x or "ymm" in x for x in b))
        n = len(body)
        # values per iteration from the bytes stored: LLVM may unroll the tile loop
        values = _stored_bytes(body) // buf.itemsize
        per_value = f"{n / values:5.2f} instr/value" if values else "  (scalar stores)"
        print(
            f"{label:32s} {n:5d} instr/loop, {values:4d} values, {per_value}, "
            f"zmm {sum('zmm' in x for x in body)}, ymm {sum('ymm' in x for x in body)}, "
            f"stack refs {sum('(%rsp)' in x for x in body)}, branches {sum(x.startswith('j') for x in body)}"
        )


if __name__ == "__main__":
    main()
