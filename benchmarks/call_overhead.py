"""The fixed cost of a sampler call (validation, views of out=, planning), on small tensors.

    python benchmarks/call_overhead.py LABEL

Prints the minimum over 5 batches of 2,000 calls, in microseconds per call. To compare two
versions, run it alternately against each (e.g. an older checkout put first on PYTHONPATH:
``PYTHONPATH=/tmp/base python benchmarks/call_overhead.py before``). A plain ``fill`` of the
same buffer is timed too, as the floor of any call.
"""

import sys
import time

import numpy as np
import torch

import fastinit
import fastinit.torch


def per_call(f, calls: int = 2000, batches: int = 5) -> float:
    f()
    best = float("inf")
    for _ in range(batches):
        t = time.perf_counter()
        for _ in range(calls):
            f()
        best = min(best, (time.perf_counter() - t) / calls)
    return best * 1e6


def main() -> None:
    out = np.empty(1024, np.float32)
    tensor = torch.empty(1024)
    cases = {
        "fill (floor)": lambda: out.fill(1.0),
        "uniform(1024)": lambda: fastinit.uniform((1024,)),
        "normal out=ndarray": lambda: fastinit.normal((1024,), out=out),
        "normal out=tensor": lambda: fastinit.normal((1024,), out=tensor),
        "truncated_normal out=ndarray": lambda: fastinit.truncated_normal(
            (1024,), 0, 0.02, -0.04, 0.04, out=out
        ),
        "kaiming_uniform out=tensor": lambda: fastinit.kaiming_uniform((32, 32), out=tensor.view(32, 32)),
        # the torch adapter: a named call is pure; an unnamed one first draws its seed from torch
        "torch.nn.init.kaiming_uniform_ (peer)": lambda: torch.nn.init.kaiming_uniform_(tensor.view(32, 32)),
        "fastinit.torch.kaiming_uniform_ named": lambda: fastinit.torch.kaiming_uniform_(
            tensor.view(32, 32), seed=0, name="w"
        ),
        "fastinit.torch.kaiming_uniform_ unnamed": lambda: fastinit.torch.kaiming_uniform_(
            tensor.view(32, 32)
        ),
    }
    label = sys.argv[1] if len(sys.argv) > 1 else "this"
    print(label, "  ".join(f"{name} {per_call(f):.1f} us" for name, f in cases.items()))


if __name__ == "__main__":
    main()
