"""The CUDA backend's figures, measured on one GPU: a markdown table, and with ``--json`` the
numbers tools/write_results.py turns into benchmarks/RESULTS.md and the README's CUDA table.

    python benchmarks/gpu_figures.py                 # everything, n = 2**30
    python benchmarks/gpu_figures.py --size-log2 26  # a quick run
    python benchmarks/gpu_figures.py --dry-run       # the plan and the peers found; no GPU needed

Timing: CUDA events on the legacy default stream (where fastinit, torch's default stream,
CuPy's and Numba's default streams all run) around ``--calls`` calls made back to back (so the
host's launch overhead overlaps the GPU's work, as in a real init loop), per call, best of
``--repeats`` after a warm-up call (which also compiles the kernels). fastinit's one-call time
(events around a single call, host overhead included) is reported too. Every sampler writes
into an existing buffer (``out=``, a torch tensor when torch is installed, else a Numba device
array), so allocation is not timed.

Bandwidth ceiling: a device-to-device copy of the same float32 buffer (it writes what a
sampler writes, and reads as much), and a plain fill (writes only) for reference. Fractions
are (bytes written by the sampler per second) / (bytes written by the copy per second).

Peers, each when installed and able to use the GPU, timed in the same run: torch
``uniform_`` / ``normal_`` / ``trunc_normal_``, ``cupy.random`` (uniform, standard_normal) and
``jax.random`` (uniform, normal, truncated_normal, jitted, time to a ready result).

Also measured: bfloat16 normal, 1e9 values (target <= 2 ms on an H100); bit identity with the
CPU backend at 1e8 elements (compared in chunks of 2**24, with the number of differing
elements and the largest difference in ulp); orthogonal 8192 x 8192 against a bare cuSOLVER
QR (``torch.linalg.qr`` / ``cupy.linalg.qr``) of a matrix of the same size.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time

import numpy as np

TARGETS = {
    "uniform": ">= 0.85 of the copy, >= torch",
    "normal": ">= 0.85 of the copy, >= torch",
    "truncated_normal": ">= 0.75 of the copy, >= 2 x torch",
    "bf16": "<= 2 ms (H100)",
    "identity": "0 elements differ",
    "orthogonal": "<= 1.3 x bare QR",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-log2", type=int, default=30, help="n = 2**SIZE_LOG2 float32 values (default 30)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repetitions; the best is kept (default 5)"
    )
    parser.add_argument(
        "--calls", type=int, default=10, help="calls back to back per repetition (default 10)"
    )
    parser.add_argument("--device", default="cuda:0", help="the GPU, 'cuda:N' (default cuda:0)")
    parser.add_argument(
        "--bf16-count", type=float, default=1e9, help="values in the bfloat16 normal (default 1e9)"
    )
    parser.add_argument(
        "--identity-count", type=float, default=1e8, help="elements compared with the CPU (default 1e8)"
    )
    parser.add_argument(
        "--orthogonal-size", type=int, default=8192, help="orthogonal matrix side (default 8192)"
    )
    parser.add_argument("--skip", action="append", default=[], choices=["peers", "bf16", "identity", "orthogonal"],
                        help="leave a part out (repeatable)")  # fmt: skip
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures to FILE")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan and the peers found, touch no GPU"
    )
    args = parser.parse_args(argv)
    if not 4 <= args.size_log2 <= 34:
        parser.error(f"--size-log2={args.size_log2} must be in [4, 34]")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.calls < 1:
        parser.error("--calls must be >= 1")
    if not args.device.startswith("cuda"):
        parser.error(f"--device={args.device!r} must be 'cuda' or 'cuda:N'")
    return args


def available_peers() -> dict[str, bool]:
    return {name: importlib.util.find_spec(name) is not None for name in ("torch", "cupy", "jax")}


# ---- timing ------------------------------------------------------------------------------------


class Timer:
    """Best-of-n CUDA event timing on the legacy default stream (Numba's events), per call of
    ``calls`` calls made back to back."""

    def __init__(self, cuda, repeats: int, calls: int = 1):
        from fastinit.cuda_runtime import is_simulator

        self.cuda, self.repeats, self.calls = cuda, repeats, calls
        self.stream = cuda.legacy_default_stream()
        # (numba's CUDA simulator, used to test this script, has events without timing)
        self.event = cuda.event if is_simulator() else lambda: cuda.event(timing=True)

    def best_ms(self, fn, *, calls=None) -> float:
        """fn() once to warm up, then the best of ``repeats`` timings of ``calls`` (default:
        the timer's) calls back to back, in milliseconds per call."""
        calls = self.calls if calls is None else calls
        fn()
        self.cuda.synchronize()
        best = math.inf
        for _ in range(self.repeats):
            start, stop = self.event(), self.event()
            start.record(self.stream)
            for _ in range(calls):
                fn()
            stop.record(self.stream)
            stop.synchronize()
            best = min(best, start.elapsed_time(stop) / calls)
        return best


def wall_best_ms(fn, repeats: int, sync) -> float:
    """For work on streams events cannot see (JAX's): host wall time to a ready result."""
    sync(fn())
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(fn())
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


# ---- the measurements -------------------------------------------------------------------------


def measure_samplers(fastinit, cuda, timer, n, index, skip_peers):
    """{row: {label: ms}} for uniform / normal / truncated_normal, float32, into out=."""
    buf = cuda.device_array(n, np.float32)
    src = cuda.device_array(n, np.float32)
    src.copy_to_device(buf)
    out = buf
    if available_peers()["torch"]:
        import torch

        if torch.cuda.is_available():  # torch's tensors carry their stream: no wait per call
            out = torch.empty(n, device=f"cuda:{index}")
    device = f"cuda:{index}"
    calls = {
        "uniform": lambda: fastinit.uniform(n, -1.0, 1.0, out=out, device=device),
        "normal": lambda: fastinit.normal(n, 0.0, 0.02, out=out, device=device),
        "truncated_normal": lambda: fastinit.truncated_normal(
            n, 0.0, 0.02, -0.04, 0.04, out=out, device=device
        ),
    }
    rows = {"copy": {"device-to-device copy": timer.best_ms(lambda: buf.copy_to_device(src))}}
    from fastinit.backends import cuda as backend

    for row, call in calls.items():
        rows[row] = {"fastinit": timer.best_ms(call), "fastinit, one call": timer.best_ms(call, calls=1)}
        with backend.general_kernels_only():  # what the dense kernels gain
            rows[row]["fastinit, general kernel"] = timer.best_ms(call)
    del out
    peers = {} if skip_peers else available_peers()
    if peers.get("torch"):
        import torch

        if torch.cuda.is_available():
            t = torch.empty(n, device=f"cuda:{index}")
            rows["copy"]["plain fill (torch fill_)"] = timer.best_ms(lambda: t.fill_(1.0))
            rows["uniform"]["torch uniform_"] = timer.best_ms(lambda: t.uniform_(-1.0, 1.0))
            rows["normal"]["torch normal_"] = timer.best_ms(lambda: t.normal_(0.0, 0.02))
            rows["truncated_normal"]["torch trunc_normal_"] = timer.best_ms(
                lambda: torch.nn.init.trunc_normal_(t, 0.0, 0.02, -0.04, 0.04)
            )
            del t
            torch.cuda.empty_cache()  # give the buffer back (torch's allocator would keep it)
    if peers.get("cupy"):
        import cupy

        with cupy.cuda.Device(index):
            gen = cupy.random.default_rng(0)
            out = cupy.empty(n, cupy.float32)
            rows["uniform"]["cupy.random random"] = timer.best_ms(
                lambda: gen.random(n, cupy.float32, out=out)
            )
            rows["normal"]["cupy.random standard_normal"] = timer.best_ms(
                lambda: gen.standard_normal(n, cupy.float32, out=out)
            )
            del out
            cupy.get_default_memory_pool().free_all_blocks()  # (CuPy's pool would keep it)
    if peers.get("jax"):
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if gpus:
            key = jax.device_put(jax.random.key(0), gpus[0])
            fns = {
                "uniform": jax.jit(lambda k: jax.random.uniform(k, (n,), minval=-1.0, maxval=1.0)),
                "normal": jax.jit(lambda k: 0.02 * jax.random.normal(k, (n,))),
                "truncated_normal": jax.jit(lambda k: 0.02 * jax.random.truncated_normal(k, -2.0, 2.0, (n,))),
            }
            for row, fn in fns.items():
                rows[row]["jax.random (wall)"] = wall_best_ms(
                    lambda fn=fn: fn(key), timer.repeats, jax.block_until_ready
                )
    if "torch" in sys.modules:
        sys.modules["torch"].cuda.empty_cache()
    return rows


def measure_bf16(fastinit, timer, count, index):
    out = fastinit.FastArray.empty(count, "bfloat16", device=f"cuda:{index}")
    return timer.best_ms(lambda: fastinit.normal(count, 0.0, 0.02, out=out))


def measure_identity(fastinit, count, index, chunk=1 << 24):
    """{sampler: (differing elements, largest ulp difference)} at ``count`` elements."""
    calls = {
        "uniform": lambda **k: fastinit.uniform(count, -1.0, 1.0, **k),
        "normal": lambda **k: fastinit.normal(count, 0.0, 0.02, **k),
        "truncated_normal (central)": lambda **k: fastinit.truncated_normal(
            count, 0.0, 0.02, -0.04, 0.04, **k
        ),
        "truncated_normal (tails)": lambda **k: fastinit.truncated_normal(count, 0.0, 1.0, -5.0, 5.0, **k),
        "normal bfloat16": lambda **k: fastinit.normal(count, 0.0, 0.02, dtype="bfloat16", **k),
    }
    result = {}
    for label, call in calls.items():
        gpu = call(seed=2026, name="identity", device=f"cuda:{index}").copy_to_host(raw=True)
        differing, worst = 0, 0
        for start in range(0, count, chunk):
            stop = min(count, start + chunk)
            cpu = call(seed=2026, name="identity", index=slice(start, stop)).raw
            bad = gpu[start:stop] != cpu
            if bad.any():
                differing += int(bad.sum())
                ints = {2: np.int16, 4: np.int32, 8: np.int64}[cpu.itemsize]
                a, b = (x[bad].view(ints).astype(np.int64) for x in (gpu[start:stop], cpu))
                a, b = (np.where(x < 0, np.iinfo(ints).min - x, x) for x in (a, b))
                worst = max(worst, int(np.abs(a - b).max()))
        result[label] = (differing, worst)
    return result


def measure_orthogonal(fastinit, timer, size, index):
    """(fastinit ms, bare QR ms, QR library) for a size x size float32 orthogonal matrix."""
    peers = available_peers()
    if peers["cupy"]:
        import cupy

        qr, lib = "cupy", "cupy.linalg.qr"
        with cupy.cuda.Device(index):
            a = cupy.random.default_rng(0).standard_normal((size, size), cupy.float32)
            bare = timer.best_ms(lambda: cupy.linalg.qr(a))
    elif peers["torch"]:
        import torch

        qr, lib = "torch", "torch.linalg.qr"
        a = torch.randn(size, size, device=f"cuda:{index}")
        bare = timer.best_ms(lambda: torch.linalg.qr(a))
    else:
        return None
    ours = timer.best_ms(lambda: fastinit.orthogonal((size, size), qr=qr, device=f"cuda:{index}"))
    return ours, bare, lib


# ---- report -----------------------------------------------------------------------------------


def table(device_name, n, rows, bf16, identity, orthogonal, bf16_count, calls=1) -> str:
    gb = n * 4 / 1e9
    copy_ms = rows["copy"]["device-to-device copy"]
    lines = [
        f"GPU: {device_name}; n = 2**{int(math.log2(n))} float32 values ({gb:.2f} GB written per call); "
        f"CUDA-event timing of {calls} calls back to back, per call, best of the repeats; fractions "
        "are of the device-to-device copy's write rate.",
        "",
        "| measurement | time per call (ms) | G values/s | fraction of copy | peers (ms, fastinit's speed-up) | target |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for label, ms in rows["copy"].items():
        lines.append(f"| {label} | {ms:.3f} | {n / ms / 1e6:.1f} | {copy_ms / ms:.2f} | | ceiling |")
    for row in ("uniform", "normal", "truncated_normal"):
        ms = rows[row]["fastinit"]
        peers = ", ".join(f"{k} {v:.3f} ({v / ms:.2f} x)" for k, v in rows[row].items() if k != "fastinit")
        lines.append(
            f"| {row}, float32 | {ms:.3f} | {n / ms / 1e6:.1f} | {copy_ms / ms:.2f} | {peers or '-'} | {TARGETS[row]} |"
        )
    if bf16 is not None:
        lines.append(
            f"| normal, bfloat16, {bf16_count:.0e} values | {bf16:.3f} | {bf16_count / bf16 / 1e6:.1f} | | | {TARGETS['bf16']} |"
        )
    if orthogonal is not None:
        ours, bare, lib = orthogonal
        lines.append(
            f"| orthogonal, float32 | {ours:.1f} | | | bare {lib}: {bare:.1f} ({ours / bare:.2f} x) | {TARGETS['orthogonal']} |"
        )
    if identity is not None:
        lines += [
            "",
            "| bit identity with the CPU | differing elements | largest difference (ulp) |",
            "| --- | ---: | ---: |",
        ]
        lines += [f"| {label} | {d} | {w} |" for label, (d, w) in identity.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    n = 1 << args.size_log2
    plan = {
        "n": n,
        "device": args.device,
        "repeats": args.repeats,
        "calls": args.calls,
        "peers": {k: v for k, v in available_peers().items() if "peers" not in args.skip},
        "bf16_count": None if "bf16" in args.skip else int(args.bf16_count),
        "identity_count": None if "identity" in args.skip else int(args.identity_count),
        "orthogonal_size": None if "orthogonal" in args.skip else args.orthogonal_size,
    }
    if args.dry_run:
        print(json.dumps(plan, indent=2))
        return 0
    # JAX would otherwise take 75 % of the GPU's memory when it starts (after the 4 GiB buffers
    # of the other parts are allocated: it could fail there, or starve the parts after it)
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import fastinit
    from fastinit.cuda_runtime import check_device, device_ordinal

    target = check_device(args.device)  # a clear error without numba-cuda or a GPU
    index = device_ordinal(target)
    from numba import cuda

    with cuda.gpus[index]:
        device_name = getattr(cuda.get_current_device(), "name", "numba CUDA simulator")
        device_name = device_name.decode() if isinstance(device_name, bytes) else str(device_name)
        timer = Timer(cuda, args.repeats, args.calls)
        rows = measure_samplers(fastinit, cuda, timer, n, index, "peers" in args.skip)
        bf16 = (
            None if plan["bf16_count"] is None else measure_bf16(fastinit, timer, plan["bf16_count"], index)
        )
        identity = (
            None
            if plan["identity_count"] is None
            else measure_identity(fastinit, plan["identity_count"], index)
        )
        orthogonal = (
            None
            if plan["orthogonal_size"] is None
            else measure_orthogonal(fastinit, timer, plan["orthogonal_size"], index)
        )
    report = table(device_name, n, rows, bf16, identity, orthogonal, plan["bf16_count"], args.calls)
    print(report)
    if args.json:
        with open(args.json, "w") as f:
            from fastinit.benchmark import machine_info

            json.dump({"device": device_name, "plan": plan, "rows": rows, "bf16_ms": bf16, "identity": identity,
                       "orthogonal": orthogonal, "table": report, "machine": machine_info(target),
                       "date": time.strftime("%Y-%m-%d"), "command": "python benchmarks/gpu_figures.py"},
                      f, indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
