"""The ``fastinit`` command line (also ``python -m fastinit``).

fastinit demo        sample a tensor and hand it to torch (or NumPy) without a copy
"""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args) -> int:
    import numpy as np

    import fastinit

    t0 = time.perf_counter()
    weight = fastinit.normal((args.rows, args.cols), 0.0, 0.02, seed=args.seed, name="demo.weight")
    elapsed = time.perf_counter() - t0
    print(f"fastinit.normal({args.rows}, {args.cols}) std=0.02 seed={args.seed}: {elapsed * 1e3:.1f} ms")
    try:
        import torch
    except ImportError:
        array = np.from_dlpack(weight)
        print(f"torch is not installed; NumPy took it through DLPack: {array.dtype}{array.shape}")
        print(f"mean {array.mean():+.5f}  std {array.std():.5f}")
        return 0
    tensor = torch.from_dlpack(weight)
    shared = tensor.data_ptr() == weight.raw.ctypes.data
    print(f"torch.from_dlpack -> {tensor.dtype} {tuple(tensor.shape)}, same memory: {shared}")
    print(f"mean {tensor.mean().item():+.5f}  std {tensor.std().item():.5f}")
    again = fastinit.normal((args.rows, args.cols), 0.0, 0.02, seed=args.seed, name="demo.weight")
    print(f"same (seed, name) again gives the same bytes: {again.tobytes() == weight.tobytes()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastinit", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="sample a tensor and hand it to torch")
    demo.add_argument("--rows", type=int, default=4096)
    demo.add_argument("--cols", type=int, default=4096)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
