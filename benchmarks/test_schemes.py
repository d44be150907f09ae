"""Scheme-level figures: whole-model init of a GPT-2-medium-sized torch model, orthogonal 4096^2.

- init_module vs building the model with torch's default init (what ``GPT()`` costs), and the
  meta-device flow (build on meta, ``to_empty``, ``init_module``) that replaces it.
- orthogonal 4096 x 4096 float32 vs a bare LAPACK QR of a same-size matrix and
  ``torch.nn.init.orthogonal_``.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastinit

torch = pytest.importorskip("torch")
nn = torch.nn
fastinit_torch = pytest.importorskip("fastinit.torch")


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)


class GPT(nn.Module):
    """GPT-2-medium shapes: 24 blocks of d=1024, vocab 50257, 1024 positions (~354M params)."""

    def __init__(self, d=1024, layers=24, vocab=50257, ctx=1024):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)


@pytest.fixture(scope="module")
def nparams():
    with torch.device("meta"):
        return sum(p.numel() for p in GPT().parameters())


def _meta_flow():
    with torch.device("meta"):
        model = GPT()
    model.to_empty(device="cpu")
    fastinit_torch.init_module(model, seed=0)
    return model


@pytest.fixture(scope="module")
def built_model():
    model = GPT()
    fastinit_torch.init_module(model, seed=0)
    return model


GROUP = "GPT-2-medium-sized model (354M params), float32"


def test_torch_default_build(record, nparams):
    record(GROUP, "torch: build with default init (GPT())", lambda: GPT(), nparams, 4, rounds=3)


def test_fastinit_meta_flow(record, nparams):
    record(GROUP, "fastinit: meta build + to_empty + init_module", _meta_flow, nparams, 4, rounds=3)


def test_fastinit_init_module_touched(record, nparams, built_model):
    record(GROUP, "fastinit: init_module (existing model)",
           lambda: fastinit_torch.init_module(built_model, seed=1), nparams, 4, rounds=3)  # fmt: skip


ORTHO = "orthogonal 4096 x 4096 float32"
N = 4096


@pytest.fixture(scope="module")
def gaussian():
    return np.asarray(fastinit.normal((N, N), seed=0, name="a"))


def test_bare_lapack_qr(record, gaussian):
    from scipy.linalg import qr

    record(ORTHO, "bare LAPACK QR (scipy.linalg.qr economic)",
           lambda: qr(gaussian, mode="economic", check_finite=False), N * N, 4, rounds=3)  # fmt: skip


def test_fastinit_orthogonal(record):
    record(
        ORTHO,
        "fastinit.orthogonal",
        lambda: fastinit.orthogonal((N, N), seed=0, name="q"),
        N * N,
        4,
        rounds=3,
    )


def test_torch_orthogonal(record):
    record(
        ORTHO, "torch.nn.init.orthogonal_", lambda: nn.init.orthogonal_(torch.empty(N, N)), N * N, 4, rounds=3
    )


def test_fastinit_orthogonal_torch_qr(record):
    record(ORTHO, "fastinit.orthogonal(qr='torch')",
           lambda: fastinit.orthogonal((N, N), qr="torch", seed=0, name="q"), N * N, 4, rounds=3)  # fmt: skip


def test_fastinit_torch_orthogonal_(record):
    record(ORTHO, "fastinit.torch.orthogonal_",
           lambda: fastinit_torch.orthogonal_(torch.empty(N, N), seed=0, name="q"), N * N, 4, rounds=3)  # fmt: skip


def test_bare_torch_qr(record, gaussian):
    a = torch.from_numpy(gaussian)
    record(ORTHO, "bare torch.linalg.qr (MKL)", lambda: torch.linalg.qr(a), N * N, 4, rounds=3)
