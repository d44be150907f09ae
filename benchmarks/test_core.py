"""Core samplers vs a plain fill and the peers (numpy, torch, jax), float32, in the same run.

Touched buffer (``out=``, memory already faulted in) and fresh result (allocation included).
One measurement per test (pytest-benchmark's rule); conftest.py prints the ratios per group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fastinit

torch = pytest.importorskip("torch")
TRUNC = dict(mean=0.0, std=0.02, a=-0.04, b=0.04)
FILL = "plain fill (numpy .fill)"


def _jax_fn(op, n):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        pytest.skip("jax is not installed")
    key = jax.random.key(0)
    make = {
        "uniform": lambda k: jax.random.uniform(k, (n,), jnp.float32),
        "normal": lambda k: jax.random.normal(k, (n,), jnp.float32),
        "truncated_normal": lambda k: 0.02 * jax.random.truncated_normal(k, -2.0, 2.0, (n,), jnp.float32),
    }[op]
    f = jax.jit(make)
    return lambda: f(key).block_until_ready()


def touched_cases():
    """(op, label, builder(n, buf) -> callable, rounds) for the touched-buffer groups."""
    rng = np.random.default_rng(0)
    return [
        ("uniform", FILL, lambda n, b: lambda: b.fill(1.0), 5),
        ("uniform", "fastinit.uniform(out=)", lambda n, b: lambda: fastinit.uniform(n, out=b), 5),
        ("uniform", "torch uniform_", lambda n, b: torch.from_numpy(b).uniform_, 3),
        (
            "uniform",
            "numpy random(float32, out=)",
            lambda n, b: lambda: rng.random(dtype=np.float32, out=b),
            3,
        ),
        ("uniform", "jax.random.uniform (jit)", lambda n, b: _jax_fn("uniform", n), 3),
        ("normal", FILL, lambda n, b: lambda: b.fill(1.0), 5),
        ("normal", "fastinit.normal(out=)", lambda n, b: lambda: fastinit.normal(n, out=b), 5),
        ("normal", "torch normal_", lambda n, b: torch.from_numpy(b).normal_, 3),
        (
            "normal",
            "numpy standard_normal(float32, out=)",
            lambda n, b: lambda: rng.standard_normal(dtype=np.float32, out=b),
            3,
        ),
        ("normal", "jax.random.normal (jit)", lambda n, b: _jax_fn("normal", n), 3),
        ("truncated_normal", FILL, lambda n, b: lambda: b.fill(1.0), 5),
        (
            "truncated_normal",
            "fastinit.truncated_normal(out=)",
            lambda n, b: lambda: fastinit.truncated_normal(n, out=b, **TRUNC),
            5,
        ),
        (
            "truncated_normal",
            "torch trunc_normal_",
            lambda n, b: lambda: torch.nn.init.trunc_normal_(torch.from_numpy(b), **TRUNC),
            3,
        ),
        (
            "truncated_normal",
            "jax.random.truncated_normal (jit)",
            lambda n, b: _jax_fn("truncated_normal", n),
            3,
        ),
    ]


@pytest.mark.parametrize(
    "op,label,build,rounds", touched_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_touched_f32(record, n, touched_f32, op, label, build, rounds):
    fill = (lambda: touched_f32.fill(1.0)) if label.startswith("fastinit") else None
    record(f"{op} float32, touched buffer, n={n}", label, build(n, touched_f32), n, 4, rounds, fill=fill)


BF16_CASES = [
    (FILL, 4, lambda f32, b16: lambda: f32.fill(1.0)),
    ("fastinit.normal float32 (out=)", 4, lambda f32, b16: lambda: fastinit.normal(f32.size, out=f32)),
    (
        "fastinit.normal bfloat16 (out=)",
        2,
        lambda f32, b16: lambda: fastinit.normal(b16.size, out=torch.from_numpy(b16).view(torch.bfloat16)),
    ),
    ("torch normal_ bfloat16", 2, lambda f32, b16: torch.from_numpy(b16).view(torch.bfloat16).normal_),
]


@pytest.mark.parametrize("label,itemsize,build", BF16_CASES, ids=[c[0] for c in BF16_CASES])
def test_bfloat16_normal(record, n, touched_f32, touched_u16, label, itemsize, build):
    fill = (lambda: touched_f32.fill(1.0)) if label.startswith("fastinit") else None
    group = f"normal bfloat16 vs float32, touched buffer, n={n}"
    record(group, label, build(touched_f32, touched_u16), n, itemsize, fill=fill)


def fresh_cases():
    rng = np.random.default_rng(0)
    return [
        ("uniform", FILL, lambda n: lambda: np.empty(n, np.float32).fill(1.0), 5),
        ("uniform", "fastinit.uniform", lambda n: lambda: fastinit.uniform(n), 5),
        ("uniform", "torch empty().uniform_", lambda n: lambda: torch.empty(n).uniform_(), 3),
        ("normal", FILL, lambda n: lambda: np.empty(n, np.float32).fill(1.0), 5),
        ("normal", "fastinit.normal", lambda n: lambda: fastinit.normal(n), 5),
        ("normal", "torch randn", lambda n: lambda: torch.randn(n), 3),
        (
            "normal",
            "numpy standard_normal(float32)",
            lambda n: lambda: rng.standard_normal(n, dtype=np.float32),
            3,
        ),
        ("truncated_normal", FILL, lambda n: lambda: np.empty(n, np.float32).fill(1.0), 5),
        (
            "truncated_normal",
            "fastinit.truncated_normal",
            lambda n: lambda: fastinit.truncated_normal(n, **TRUNC),
            5,
        ),
        (
            "truncated_normal",
            "torch trunc_normal_(empty)",
            lambda n: lambda: torch.nn.init.trunc_normal_(torch.empty(n), **TRUNC),
            3,
        ),
    ]


@pytest.mark.parametrize(
    "op,label,build,rounds", fresh_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_fresh_f32(record, n, op, label, build, rounds):
    fill = (lambda: np.empty(n, np.float32).fill(1.0)) if label.startswith("fastinit") else None
    record(f"{op} float32, fresh result, n={n}", label, build(n), n, 4, rounds, fill=fill)


def test_import_and_first_call(benchmark):
    """import fastinit + first normal((1000,)) in a new process, kernels in the cache."""
    code = "import fastinit; fastinit.normal((1000,), seed=0)"
    subprocess.run([sys.executable, "-c", code], check=True)  # make sure the cache is warm

    def run():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
        return time.perf_counter() - t0

    benchmark.group = "start-up: import fastinit + first normal((1000,)), new process"
    benchmark.pedantic(run, rounds=5, iterations=1)
