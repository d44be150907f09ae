"""Experiment (GPU): where the host time of a CUDA call goes.

On the H200 (2026-12-04) one call alone took 0.3-0.6 ms more than a call in a back-to-back
run, and `fastinit bench --device cuda` at 2**28 values measured 1.27 ms per uniform call for a
kernel of ~0.5 ms: the host path, not the kernel, bounds small and mid-sized tensors. On this
repository's CPU-only machines fastinit's own Python path measures 35-50 us per call (the
simulator, kernel launch stubbed), so the rest is in numba-cuda or the driver. This script
measures, on a GPU:

1. host microseconds per call (no synchronization inside the loop; the GPU work of a tiny
   tensor is negligible) of fastinit into a torch tensor / a FastArray / a new array, and of
   torch's own ``uniform_`` for scale;
2. the pieces of fastinit's path one by one (DLPack view of ``out``, numba-cuda device-array
   view, context switch, stream objects, event record, a bare launch of the same kernel);
3. a cProfile of the out= path, top functions by own time.

    python benchmarks/gpu_host_profile.py [--calls 2000] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

import numpy as np


def per_call_us(fn, calls: int, sync) -> float:
    """Host microseconds per call of ``fn`` over ``calls`` calls (best of 3), synchronized only
    before and after each run."""
    fn()
    sync()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls * 1e6)
        sync()
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per timing (default 2000)")
    parser.add_argument("--size", type=int, default=4096, help="values per call (default 4096)")
    parser.add_argument("--top", type=int, default=30, help="cProfile rows to print (default 30)")
    args = parser.parse_args(argv)
    n = args.size

    import fastinit
    from fastinit import dlpack
    from fastinit.backends import cuda as backend
    from fastinit.backends.plan import FillPlan
    from fastinit.cuda_runtime import new_event

    cuda = backend.load()
    sync = cuda.synchronize
    torch = None
    try:
        import torch as _torch

        if _torch.cuda.is_available():
            torch = _torch
    except ImportError:
        pass

    fa = fastinit.FastArray.empty(n, "float32", device="cuda")
    rows = {
        "fastinit.uniform, new array": lambda: fastinit.uniform(n, -1.0, 1.0, device="cuda"),
        "fastinit.uniform, out=FastArray": lambda: fastinit.uniform(n, -1.0, 1.0, out=fa),
        "fastinit.normal, out=FastArray": lambda: fastinit.normal(n, 0.0, 0.02, out=fa),
    }
    t = None
    if torch is not None:
        t = torch.empty(n, device="cuda")
        rows["fastinit.uniform, out=torch tensor"] = lambda: fastinit.uniform(n, -1.0, 1.0, out=t)
        rows["torch uniform_ (peer)"] = lambda: t.uniform_(-1.0, 1.0)
        rows["torch empty + uniform_ (peer)"] = lambda: torch.empty(n, device="cuda").uniform_(-1.0, 1.0)

    # the pieces of the out= path
    flat = backend.launch.kernel_storage(fa.storage, fa.dtype)
    kernel = backend.kernels()["fill32_dense_uniform"]
    p = tuple(float(v) for v in (-1.0, 2.0, -1.0, 1.0, 0, 0, 0, 0))
    key = tuple(np.uint64(v) for v in (1, 2, 3, 4))
    stream = cuda.default_stream()
    plan = FillPlan(outer=(), src_strides=(), dst_strides=(), src_base=0, dst_base=0, n=n,
                                src_step=1, dst_step=1)  # fmt: skip
    with cuda.gpus[0]:
        run = backend.launch._plan_args(plan, 0, stream)[0][:-2]  # (desc, ndim, n_outer, sbase, dbase, n)
    pieces = {
        "with cuda.gpus[0]: pass": lambda: (
            cuda.gpus[0].__enter__() or cuda.gpus[0].__exit__(None, None, None)
        ),
        "cuda.default_stream()": cuda.default_stream,
        "cuda.legacy_default_stream()": cuda.legacy_default_stream,
        "event + record": lambda: new_event(cuda).record(stream),
        "bare launch of fill32_dense_uniform (same args)": lambda: kernel[1, 256, stream](flat, *run, p, key),
        "backend._launch (+ warnings filter)": lambda: backend.launch._launch(
            kernel, (1, 256), stream, flat, *run, p, key
        ),
        "backend.fill (plan, params, key -> launch)": lambda: backend.fill(
            flat, plan, 0, (-1.0, 2.0, -1.0, 1.0, 0, 0, 0, 0), (1, 2, 3, 4), kind=0, index=0, stream=stream
        ),
    }
    if t is not None:

        def device_view():
            with dlpack.device_view(t):
                pass

        pieces["dlpack.device_view(torch tensor)"] = device_view

        def out_view():
            with backend.writable_out(t):
                pass

        pieces["backend.writable_out(torch tensor)"] = out_view
        pieces["cuda.from_cuda_array_interface"] = lambda: backend.memory.device_array_at(
            t.data_ptr(), n, np.dtype(np.float32), t
        )

    print(f"host microseconds per call, {n} float32 values, {args.calls} calls, best of 3")
    print()
    print("| call | us per call |")
    print("| --- | ---: |")
    for label, fn in {**rows, **pieces}.items():
        print(f"| {label} | {per_call_us(fn, args.calls, sync):.1f} |")

    target = rows.get("fastinit.uniform, out=torch tensor", rows["fastinit.uniform, out=FastArray"])
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.calls):
        target()
    profile.disable()
    sync()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.top)
    print()
    print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
