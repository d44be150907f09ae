"""The truncated normal's limit regimes (issue #14 item 4) give the same bytes on CUDA as on
the CPU: they are chosen on the host and run through the existing uniform and tail kernels."""

import math

import pytest

import fastinit

LIMITS = [
    ((0.0, 1e8, -1.0, 1.0), "float32"),  # flat: the uniform kernel
    ((0.0, 1.0, 0.0, 1e-30), "float64"),
    ((-8.0, 1.0, 0.0, 3e-3), "float32"),  # narrow and tilted: the tail form at 8 std
    ((-5.0, 1.0, 0.0, 2e-3), "bfloat16"),
    ((-1e8, 1.0, 0.0, math.inf), "float64"),  # exponential limit: the tail form at 4096 std
    ((1e39, 1.0, -1.0, 1.0), "float16"),
]


@pytest.mark.parametrize("args,dtype", LIMITS)
def test_limit_regimes_match_cpu(args, dtype, host_bytes):
    kw = dict(seed=3, name="limits", dtype=dtype)
    gpu = fastinit.truncated_normal((2, 70), *args, device="cuda", **kw)
    cpu = fastinit.truncated_normal((2, 70), *args, **kw)
    assert host_bytes(gpu) == cpu.tobytes()
