"""Fresh results (allocation included) vs the peers, and the start-up cost of a new process.

The touched-buffer figures (``out=``, every sampler and dtype, the peers) are test_suite.py's,
which runs ``fastinit bench``'s engine. Here the floor of each fresh result is allocating and
filling an array of the same size.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastinit

torch = pytest.importorskip("torch")
TRUNC = dict(mean=0.0, std=0.02, a=-0.04, b=0.04)


def fresh_cases():
    rng = np.random.default_rng(0)
    return [
        ("uniform", "fastinit.uniform", lambda n: lambda: fastinit.uniform(n), 5),
        ("uniform", "torch empty().uniform_", lambda n: lambda: torch.empty(n).uniform_(), 3),
        ("normal", "fastinit.normal", lambda n: lambda: fastinit.normal(n), 5),
        ("normal", "torch randn", lambda n: lambda: torch.randn(n), 3),
        (
            "normal",
            "numpy standard_normal(float32)",
            lambda n: lambda: rng.standard_normal(n, dtype=np.float32),
            3,
        ),
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
    floor = lambda: np.empty(n, np.float32).fill(1.0)  # noqa: E731 (allocate + fill: the ceiling)
    record(
        f"{op} float32, fresh result, n={n}, floor: np.empty + fill",
        label,
        build(n),
        n,
        4,
        rounds,
        fill=floor,
    )


def test_import_and_first_call(record):
    """import fastinit + first normal((1000,)) in a new process, kernels in the cache; the floor
    is a new Python process that imports nothing."""
    code = "import fastinit; fastinit.normal((1000,), seed=0)"
    subprocess.run([sys.executable, "-c", code], check=True)  # make sure the cache is warm

    def run(source):
        return lambda: subprocess.run([sys.executable, "-c", source], check=True, env=dict(os.environ))

    record("start-up: a new process", "fastinit: import + first normal((1000,))", run(code), 1000, 4,
           fill=run("pass"))  # fmt: skip
