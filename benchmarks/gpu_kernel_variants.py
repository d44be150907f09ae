"""Experiment (GPU): how much would compiling the dense fill kernel once per distribution
(the distribution a compile-time constant, dead branches removed) gain over one kernel that
branches on it at run time? Times both through the public API, float32, 2**30 values.

    python benchmarks/gpu_kernel_variants.py [--size-log2 30]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-log2", type=int, default=30)
    args = parser.parse_args(argv)
    n = 1 << args.size_log2

    import fastinit
    from fastinit import distributions as d
    from fastinit.backends import cuda as backend

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from gpu_figures import Timer

    cuda = backend.load()
    dense = cuda.jit(device=True)(backend._fill32_dense)

    def specialised(dist):
        def kernel(out, dbase, sbase, n, p, key):
            dense(out, 0, dbase, sbase, n, dist, p, key)

        return cuda.jit(kernel)

    kernels = {dist: specialised(dist) for dist in (d.UNIFORM, d.NORMAL, d.TRUNCNORM_CENTRAL, d.TRUNCNORM)}
    generic = backend._KERNELS["fill32_dense"]

    class Routed:
        def __getitem__(self, config):
            def run(out, kind, dbase, sbase, n, dist, p, key):
                if kind == 0 and dist in kernels:
                    return kernels[dist][config](out, dbase, sbase, n, p, key)
                return generic[config](out, kind, dbase, sbase, n, dist, p, key)

            return run

    out = cuda.device_array(n, np.float32)
    try:
        import torch

        if torch.cuda.is_available():  # (a tensor carries its stream: no wait after each call)
            out = torch.empty(n, device="cuda")
    except ImportError:
        pass
    host = (lambda: out.cpu().numpy()) if hasattr(out, "cpu") else out.copy_to_host
    timer = Timer(cuda, 5, 10)
    calls = {
        "uniform": lambda: fastinit.uniform(n, -1.0, 1.0, out=out),
        "normal": lambda: fastinit.normal(n, 0.0, 0.02, out=out),
        "truncated_normal (central)": lambda: fastinit.truncated_normal(n, 0.0, 0.02, -0.04, 0.04, out=out),
        "truncated_normal (tails)": lambda: fastinit.truncated_normal(n, 0.0, 1.0, -3.0, 3.0, out=out),
    }
    print(f"| float32, n = 2**{args.size_log2} | one dense kernel (ms) | specialised per distribution (ms) | same bytes |")
    print("| --- | ---: | ---: | --- |")
    for label, call in calls.items():
        one = timer.best_ms(call)
        reference = host()
        backend._KERNELS["fill32_dense"] = Routed()
        try:
            special = timer.best_ms(call)
            same = host().tobytes() == reference.tobytes()
        finally:
            backend._KERNELS["fill32_dense"] = generic
        print(f"| {label} | {one:.3f} | {special:.3f} | {same} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
