"""Experiment (GPU): what each of the dense kernels' SASS reductions buys, timed A/B in one run.

The committed dense kernels (backends/cuda.py) run Philox in its uint32 form (libdevice umulhi
and a 32-bit multiply: 4 SASS per round) and store with unsigned indices (no wrap-around of
negative indices). This script rebuilds the kernels without either change, as they were when
last timed on an H200 (2026-12-04: uniform 2.04 ms, normal 2.82, truncated normal 3.31 at
2**30 float32), and times every variant through the public API, with the bytes of each compared
with the committed kernels'.

    python benchmarks/gpu_kernel_variants.py                  # 2**30 float32 values
    python benchmarks/gpu_kernel_variants.py --size-log2 8    # a smoke run (also the simulator)

Variants: "committed"; "uint64 Philox" (the CPU's form of the rounds, rng/philox.py
``philox4x32_block``); "signed indices" (stores through a signed index, as before);
"both" (the Philox and store forms as they were). Then a column shard (one contiguous run per
row) through the dense kernels against the general kernel.
"""

from __future__ import annotations

import argparse
import sys
import types

import numpy as np
from numba import float32, uint64

from fastinit.backends.cuda import STORE_BF16, STORE_SAME
from fastinit.distributions.rounding import bfloat16_bits, float16_bits
from fastinit.rng.philox import ROUNDS, philox4x32_block

VARIANTS = ("committed", "uint64 Philox", "signed indices", "both")


def _rebuilt(fn, **new_globals):
    """``fn`` with some of its globals replaced (its closure kept)."""
    return types.FunctionType(fn.__code__, {**fn.__globals__, **new_globals}, fn.__name__, fn.__defaults__,
                              fn.__closure__)  # fmt: skip


def _store_signed(out, kind, i, x):
    """backends/cuda.py's _store before it indexed with uint64 (Numba wraps signed indices)."""
    if kind == STORE_SAME:
        out[i] = x
    elif kind == STORE_BF16:
        out[i] = bfloat16_bits(float32(x))
    else:
        out[i] = float16_bits(float32(x))


def _block_words_u64(block, key):
    """backends/cuda.py's _block_words before the uint32 form: the CPU's uint64 rounds."""
    return philox4x32_block(block & uint64(0xFFFFFFFF), block >> uint64(32), key[2], key[3], key[0], key[1],
                            ROUNDS)  # fmt: skip


def variant_kernels(backend, cuda, variant: str, names):
    """{kernel name: compiled kernel} of ``variant`` for the dense float32 kernels ``names``."""
    if variant == "committed":
        return {name: backend.kernels()[name] for name in names}
    replace = {}
    if variant in ("uint64 Philox", "both"):
        replace["_block_words_dev"] = cuda.jit(device=True)(_rebuilt(_block_words_u64))
    if variant in ("signed indices", "both"):
        replace["_store_dev"] = cuda.jit(device=True)(_rebuilt(_store_signed))
    dense = cuda.jit(device=True)(_rebuilt(backend._dense32, **replace))
    return {name: cuda.jit(_rebuilt(backend.PY_KERNELS[name], _dense32_dev=dense)) for name in names}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-log2", type=int, default=30, help="n = 2**SIZE_LOG2 float32 values (default 30)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions, best kept (default 5)")
    parser.add_argument("--calls", type=int, default=10, help="calls back to back per repetition (default 10)")
    args = parser.parse_args(argv)
    n = 1 << args.size_log2

    import fastinit
    from fastinit.backends import cuda as backend

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from gpu_figures import Timer

    cuda = backend.load()
    out = cuda.device_array(n, np.float32)
    try:
        import torch

        if torch.cuda.is_available():  # (a tensor carries its stream: no wait after each call)
            out = torch.empty(n, device="cuda")
    except ImportError:
        pass
    host = (lambda: out.cpu().numpy().copy()) if hasattr(out, "cpu") else out.copy_to_host
    timer = Timer(cuda, args.repeats, args.calls)
    calls = {
        "fill32_dense_uniform": ("uniform", lambda: fastinit.uniform(n, -1.0, 1.0, out=out)),
        "fill32_dense_normal": ("normal", lambda: fastinit.normal(n, 0.0, 0.02, out=out)),
        "fill32_dense_central": (
            "truncated normal (central)",
            lambda: fastinit.truncated_normal(n, 0.0, 0.02, -0.04, 0.04, out=out),
        ),
    }
    kernels = {variant: variant_kernels(backend, cuda, variant, calls) for variant in VARIANTS}
    committed = dict(backend._KERNELS)
    header = " | ".join(f"{v} (ms)" for v in VARIANTS)
    print(f"| float32, n = 2**{args.size_log2} | {header} | same bytes |")
    print("|" + " --- |" + " ---: |" * len(VARIANTS) + " --- |")
    for name, (label, call) in calls.items():
        times, same = [], True
        call()
        reference = host()
        for variant in VARIANTS:
            backend._KERNELS[name] = kernels[variant][name]
            try:
                times.append(timer.best_ms(call))
                same = same and host().tobytes() == reference.tobytes()
            finally:
                backend._KERNELS.update(committed)
        print(f"| {label} | " + " | ".join(f"{t:.3f}" for t in times) + f" | {same} |")

    # a column shard (tensor parallelism): one run per row, (rows x cols) of a (rows x 8 cols)
    # tensor; the dense kernels fill one run per grid row, the general ones divide per element
    rows = 1 << (args.size_log2 // 2)
    cols = n // rows
    shard = out.view(rows, cols) if hasattr(out, "is_cuda") else out.reshape(rows, cols)  # torch / Numba
    index = (slice(None), slice(3 * cols, 4 * cols))
    print()
    print(f"| column shard, {rows} x {cols} of {rows} x {8 * cols}, float32 | dense runs (ms) | general kernel (ms) | same bytes |")
    print("| --- | ---: | ---: | --- |")
    for label, call in {
        "uniform": lambda: fastinit.uniform((rows, 8 * cols), -1.0, 1.0, index=index, out=shard),
        "normal": lambda: fastinit.normal((rows, 8 * cols), 0.0, 0.02, index=index, out=shard),
    }.items():
        dense = timer.best_ms(call)
        reference = host()
        with backend.general_kernels_only():
            general = timer.best_ms(call)
            same = host().tobytes() == reference.tobytes()
        print(f"| {label} | {dense:.3f} | {general:.3f} | {same} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
