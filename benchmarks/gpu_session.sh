#!/usr/bin/env bash
# One GPU session for the CUDA backend's checks, as run on a lent H100/H200 (see RESULTS.md):
# the environment, a smoke test with compile times and register counts, the kernel variants
# (experiments/gpu_kernel_variants.py), the host path (experiments/gpu_host_profile.py), the issue's figures
# (gpu_figures.py) and the `cuda`-marked tests. Logs go to $OUT (default /tmp/fastinit-gpu).
#
#     bash benchmarks/gpu_session.sh                  # from the repository root
#
# fastinit is used from the checkout (PYTHONPATH), with the machine's own numba / numba-cuda /
# torch / CuPy / JAX. Warnings are shown, not turned into errors (setup.cfg's filterwarnings).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fastinit-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD XLA_PYTHON_CLIENT_PREALLOCATE=false
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/fastinit-numba-cache}
stage() { echo; echo "==== $1 ($(date +%T))"; }

stage environment
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  nproc
  python3 - <<'PY'
import importlib, sys
print(sys.version.split()[0])
for name in ("numpy", "numba", "numba_cuda", "llvmlite", "scipy", "ml_dtypes", "torch", "cupy", "jax"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as error:  # noqa: BLE001 - report and go on
        print(name, "unavailable:", error)
PY
} 2>&1 | tee "$OUT/env.txt"

stage smoke
timeout "${SMOKE_S:-150}" python3 - <<'PY' 2>&1 | tee "$OUT/smoke.txt"
import time
import numpy as np
import fastinit, os
N = int(os.environ.get("SMOKE_N", 10**6))
from fastinit.backends import cuda as backend

t0 = time.perf_counter()
x = fastinit.normal(1000, device="cuda", seed=1)
print(f"first CUDA call (compile of fill32 + CPU parts, load): {time.perf_counter() - t0:.1f} s")
for dtype in ("float32", "bfloat16", "float16", "float64"):
    for label, call in {
        "uniform": lambda **k: fastinit.uniform(N, -1.0, 1.0, **k),
        "normal": lambda **k: fastinit.normal(N, 0.0, 0.02, **k),
        "truncnorm": lambda **k: fastinit.truncated_normal(N, 0.0, 1.0, -2.0, 2.0, **k),
        "truncnorm far": lambda **k: fastinit.truncated_normal(N, 0.0, 1.0, 12.0, 14.0, **k),
    }.items():
        t0 = time.perf_counter()
        gpu = call(seed=5, name="smoke", dtype=dtype, device="cuda").copy_to_host(raw=True)
        took = time.perf_counter() - t0
        cpu = call(seed=5, name="smoke", dtype=dtype).raw
        print(f"{dtype:9s} {label:14s} equal to the CPU: {gpu.tobytes() == cpu.tobytes()} "
              f"(differing: {int((gpu != cpu).sum())}; first GPU call {took:.2f} s)")
for name, kernel in backend.kernels().items():
    for sig, regs in getattr(kernel, "get_regs_per_thread", lambda: {})().items():
        print(f"registers per thread: {name} {sig}: {regs}")
PY

stage "kernel variants (A/B of the SASS reductions)"
timeout "${VARIANTS_S:-240}" python3 benchmarks/experiments/gpu_kernel_variants.py 2>&1 | tee "$OUT/variants.txt"

stage "host path"
timeout "${HOST_S:-90}" python3 benchmarks/experiments/gpu_host_profile.py 2>&1 | tee "$OUT/host.txt"

stage figures
timeout "${FIGURES_S:-240}" python3 benchmarks/gpu_figures.py --json "$OUT/figures.json" 2>&1 | tee "$OUT/figures.txt"

stage "kernel cache (a second process)"
timeout 120 python3 - <<'PY' 2>&1 | tee "$OUT/cache.txt"
import time
import fastinit
for label, call in {"uniform": fastinit.uniform, "normal": fastinit.normal, "truncated_normal": fastinit.truncated_normal}.items():
    t0 = time.perf_counter()
    call(1 << 20, device="cuda")
    print(f"first {label} call in a new process (kernels from the cache): {time.perf_counter() - t0:.2f} s")
PY

stage tests
timeout "${TESTS_S:-200}" python3 -m pytest tests/test_cuda_gpu.py -m cuda -q -rfEsw \
  -o filterwarnings=default -p no:cacheprovider 2>&1 | tee "$OUT/tests.txt"
stage done
