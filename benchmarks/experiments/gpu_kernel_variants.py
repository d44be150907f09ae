"""Experiment (GPU): what each of the dense kernels' SASS reductions buys, timed A/B in one run.

The committed dense kernels (backends/cuda/device_code.py) run Philox in its uint32 form (libdevice umulhi
and a 32-bit multiply: 4 SASS per round), store with unsigned indices (no wrap-around of
negative indices) and fill whole tiles in a loop without bounds checks. This script rebuilds
the kernel as it was when last timed on an H200 (2026-12-04: uniform 2.04 ms, normal 2.82,
truncated normal 3.31 at 2**30 float32) and the committed one without one change at a time,
and times every variant through the public API, with the bytes of each compared with the
committed kernels'.

    python benchmarks/experiments/gpu_kernel_variants.py                  # 2**30 float32 values
    python benchmarks/experiments/gpu_kernel_variants.py --size-log2 8    # a smoke run (also the simulator)

Variants: "as timed on the H200" (one loop with bounds checks, the uint64 rounds, signed
stores); "uint64 Philox" (the committed kernel with the CPU's form of the rounds, rng/philox.py
``philox4x32_block``); "signed indices" (the committed kernel storing through signed indices);
"committed". Then a column shard (one contiguous run per row) through the dense kernels
against the general kernel, and (on a GPU, not the simulator) the bfloat16 normal kernel with
its rounding done by the GPU's ``cvt.rn.bf16.f32`` (one instruction) instead of fastinit's
integer rounding (about 7 per value): the same bits for every non-NaN value, which the bytes
check confirms; a candidate for the bfloat16 target (1e9 values in <= 2 ms), not committed.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import types

import numpy as np
from numba import float32, uint64

from fastinit.backends.cuda import STORE_BF16, STORE_SAME
from fastinit.distributions.rounding import bfloat16_bits, float16_bits
from fastinit.rng.philox import ROUNDS, philox4x32_block

VARIANTS = ("committed", "uint64 Philox", "signed indices", "as timed on the H200")


def _rebuilt(fn, **new_globals):
    """``fn`` with some of its globals replaced (its closure kept)."""
    return types.FunctionType(fn.__code__, {**fn.__globals__, **new_globals}, fn.__name__, fn.__defaults__,
                              fn.__closure__)  # fmt: skip


def _store_signed(out, kind, i, x):
    """backends/cuda/device_code.py's _store before it indexed with uint64 (Numba wraps signed indices)."""
    if kind == STORE_SAME:
        out[i] = x
    elif kind == STORE_BF16:
        out[i] = bfloat16_bits(float32(x))
    else:
        out[i] = float16_bits(float32(x))


def _block_words_u64(block, key):
    """backends/cuda/device_code.py's _block_words before the uint32 form: the CPU's uint64 rounds."""
    return philox4x32_block(block & uint64(0xFFFFFFFF), block >> uint64(32), key[2], key[3], key[0], key[1],
                            ROUNDS)  # fmt: skip


def _store_bf16_by_cvt():
    """A _store for bfloat16 outputs rounding with PTX ``cvt.rn.bf16.f32`` (sm_80 and later)."""
    from llvmlite import ir
    from numba import types as nt
    from numba.core.extending import intrinsic

    @intrinsic
    def cvt_rn_bf16(typingctx, x):
        def codegen(context, builder, signature, args):
            fnty = ir.FunctionType(ir.IntType(16), [ir.FloatType()])
            return builder.asm(fnty, "cvt.rn.bf16.f32 $0, $1;", "=h,f", args, False, "cvt_rn_bf16")

        return nt.uint16(nt.float32), codegen

    def store(out, kind, i, x):
        out[uint64(i)] = cvt_rn_bf16(float32(x))

    return store


# _dense32_one_loop's globals, given by variant_kernels() from backends/cuda/device_code.py
_TILE32 = _L = cuda = _block_words_dev = _pair32 = _store_dev = None


def _dense32_one_loop(out, kind, dbase, sbase, n, dist, p, key):
    """backends/cuda/device_code.py's _dense32 as timed on the H200: one loop, bounds checked per item."""
    t0 = sbase // _TILE32
    b0 = t0 * _L
    e0 = t0 * _TILE32 - sbase
    items = _L * ((n - e0 + _TILE32 - 1) // _TILE32)
    for item in range(cuda.grid(1), items, cuda.gridsize(1)):
        block = uint64(b0 + item)
        w0, w1, w2, w3 = _block_words_dev(block, key)
        x0, x1 = _pair32(w0, w1, dist, p, -1)
        x2, x3 = _pair32(w2, w3, dist, p, -1)
        e = e0 + (item >> 4) * _TILE32 + (item & 15)
        if e >= 0 and e + 3 * _L < n:
            _store_dev(out, kind, dbase + e, x0)
            _store_dev(out, kind, dbase + e + _L, x1)
            _store_dev(out, kind, dbase + e + 2 * _L, x2)
            _store_dev(out, kind, dbase + e + 3 * _L, x3)
        else:
            for k in range(4):
                if 0 <= e + k * _L < n:
                    x = x0 if k == 0 else x1 if k == 1 else x2 if k == 2 else x3
                    _store_dev(out, kind, dbase + e + k * _L, x)


def variant_kernels(backend, cuda, variant: str, names):
    """{kernel name: compiled kernel} of ``variant`` for the dense float32 kernels ``names``."""
    if variant == "committed":
        return {name: backend.kernels()[name] for name in names}
    old = variant == "as timed on the H200"
    code = backend.device_code
    replace = {}
    if variant == "uint64 Philox" or old:
        replace["_block_words_dev"] = cuda.jit(device=True)(_rebuilt(_block_words_u64))
    if variant == "signed indices" or old:
        replace["_store_dev"] = cuda.jit(device=True)(_rebuilt(_store_signed))
    if not old:  # the committed loops take their values from _tile_values32
        values = _rebuilt(code._tile_values32, **replace)
        replace["_tile_values32_dev"] = cuda.jit(device=True)(values)
    body = _dense32_one_loop if old else code._dense32
    dense = cuda.jit(device=True)(_rebuilt(body, **{**vars(code), **replace}))
    return {name: cuda.jit(_rebuilt(code.PY_KERNELS[name], _dense32_dev=dense)) for name in names}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-log2", type=int, default=30, help="n = 2**SIZE_LOG2 float32 values (default 30)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions, best kept (default 5)")
    parser.add_argument(
        "--calls", type=int, default=10, help="calls back to back per repetition (default 10)"
    )
    args = parser.parse_args(argv)
    n = 1 << args.size_log2

    import fastinit
    from fastinit.backends import cuda as backend
    from fastinit.cuda_runtime import is_simulator

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # benchmarks/: gpu_figures.py
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
    nan = np.full(n, np.nan, np.float32)

    def written_by(call) -> bytes:
        """The bytes one call leaves in out, which holds NaN before it (so a kernel that writes
        nothing, or part of its elements, cannot pass for one that writes them all)."""
        out.fill_(float("nan")) if hasattr(out, "fill_") else out.copy_to_device(nan)
        call()
        cuda.synchronize()
        return host().tobytes()

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
    committed = dict(backend.compiler.KERNELS)
    header = " | ".join(f"{v} (ms)" for v in VARIANTS)
    print(f"| float32, n = 2**{args.size_log2} | {header} | same bytes |")
    print("|" + " --- |" + " ---: |" * len(VARIANTS) + " --- |")
    for name, (label, call) in calls.items():
        times, same = [], True
        reference = written_by(call)
        for variant in VARIANTS:
            backend.compiler.KERNELS[name] = kernels[variant][name]
            try:
                times.append(timer.best_ms(call))
                same = same and written_by(call) == reference
            finally:
                backend.compiler.KERNELS.update(committed)
        print(f"| {label} | " + " | ".join(f"{t:.3f}" for t in times) + f" | {same} |")

    # a column shard (tensor parallelism): one run per row, (rows x cols) of a (rows x 8 cols)
    # tensor; the dense kernels fill one run per grid row, the general ones divide per element
    rows = 1 << (args.size_log2 // 2)
    cols = n // rows
    shard = out.view(rows, cols) if hasattr(out, "is_cuda") else out.reshape(rows, cols)  # torch / Numba
    index = (slice(None), slice(3 * cols, 4 * cols))
    print()
    print(
        f"| column shard, {rows} x {cols} of {rows} x {8 * cols}, float32 | dense runs (ms) | general kernel (ms) | same bytes |"
    )
    print("| --- | ---: | ---: | --- |")
    for label, call in {
        "uniform": lambda: fastinit.uniform((rows, 8 * cols), -1.0, 1.0, index=index, out=shard),
        "normal": lambda: fastinit.normal((rows, 8 * cols), 0.0, 0.02, index=index, out=shard),
    }.items():
        dense = timer.best_ms(call)
        reference = written_by(call)
        with backend.general_kernels_only():
            general = timer.best_ms(call)
            same = written_by(call) == reference
        print(f"| {label} | {dense:.3f} | {general:.3f} | {same} |")

    print()
    if is_simulator():
        print("bfloat16 rounding by cvt.rn.bf16.f32: skipped (inline PTX does not run in the simulator)")
        return 0
    name = "fill32_dense_normal_bf16"
    store = cuda.jit(device=True)(_store_bf16_by_cvt())
    dense = cuda.jit(device=True)(_rebuilt(backend.device_code._dense32, _store_dev=store))
    by_cvt = cuda.jit(_rebuilt(backend.device_code.PY_KERNELS[name], _dense32_dev=dense))
    out16 = fastinit.FastArray.empty(n, "bfloat16", device="cuda")
    nan16 = np.full(n, 0x7FC0, np.uint16)
    call = lambda: fastinit.normal(n, 0.0, 0.02, out=out16)  # noqa: E731

    def written16() -> bytes:
        out16.storage.copy_to_device(nan16)
        call()
        cuda.synchronize()
        return out16.copy_to_host(raw=True).tobytes()

    committed_ms, reference = timer.best_ms(call), written16()
    backend.compiler.KERNELS[name] = by_cvt
    try:
        cvt_ms, same = timer.best_ms(call), written16() == reference
    finally:
        backend.compiler.KERNELS[name] = committed[name]
    print(
        f"| normal, bfloat16, n = 2**{args.size_log2} | integer rounding (committed) | cvt.rn.bf16.f32 | same bytes |"
    )
    print("| --- | ---: | ---: | --- |")
    print(f"| ms per call (per 1e9 values) | {committed_ms:.3f} ({committed_ms * 1e9 / n:.3f}) | "
          f"{cvt_ms:.3f} ({cvt_ms * 1e9 / n:.3f}) | {same} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
