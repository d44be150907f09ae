"""fastinit.diagnostics.propagate: the textbook numbers of signal propagation, at fixed seeds.

Every figure is deterministic (fixed seed, fastinit's streams), so the thresholds below are
margins against BLAS rounding, not p-values: each asserted number is a factor of 2 or more from
its threshold at the seed used, and the per-layer factors are the closed forms of the theory
(e.g. relu with N(0, s^2) weights multiplies the activation std by s * sqrt(width / 2)).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fastinit import diagnostics
from fastinit.cli import main

DEPTH, WIDTH, BATCH = 50, 256, 64


@pytest.fixture(scope="module")
def runs():
    """(scheme, nonlinearity) -> Propagation, for the pairs the tests look at."""
    pairs = [
        ("kaiming_normal", "relu"),
        ("too_small", "relu"),
        ("too_large", "relu"),
        ("xavier_normal", "relu"),
        ("xavier_normal", "tanh"),
        ("too_small", "tanh"),
        ("too_large", "tanh"),
        ("zeros", "relu"),
        ("zeros", "tanh"),
        ("constant", "relu"),
        ("constant", "tanh"),
        ("orthogonal", "linear"),
        ("orthogonal", "relu"),
        ("lecun_normal", "linear"),
    ]
    return {
        p: diagnostics.propagate(p[0], p[1], depth=DEPTH, width=WIDTH, batch=BATCH, seed=0) for p in pairs
    }


def _per_layer_factor(r) -> float:
    """Geometric mean of the per-layer change of the activation std, layers 1 .. depth."""
    return (r.activation_std[r.depth] / r.activation_std[1]) ** (1 / (r.depth - 1))


def test_kaiming_keeps_relu_within_a_factor_2_over_50_layers(runs):
    r = runs[("kaiming_normal", "relu")]
    ratios = r.activation_std[1:] / r.activation_std[1]
    assert np.all((ratios > 0.5) & (ratios < 2.0)), ratios
    grads = r.gradient_std / r.gradient_std[DEPTH]
    assert np.all((grads > 0.5) & (grads < 2.0)), grads
    assert r.verdict == "activations kept"


def test_normal_001_collapses_relu_by_more_than_100x(runs):
    r = runs[("too_small", "relu")]
    assert r.activation_std[DEPTH] / r.activation_std[1] < 1e-2
    # the closed form: each layer multiplies the std by 0.01 * sqrt(width / 2) = 0.113
    assert _per_layer_factor(r) == pytest.approx(0.01 * math.sqrt(WIDTH / 2), rel=0.05)
    assert r.gradient_std[0] / r.gradient_std[DEPTH] < 1e-2
    assert r.verdict == "activations vanish, gradients vanish"


def test_normal_1_explodes_relu(runs):
    r = runs[("too_large", "relu")]
    assert r.activation_std[DEPTH] / r.activation_std[1] > 1e2
    assert _per_layer_factor(r) == pytest.approx(math.sqrt(WIDTH / 2), rel=0.05)
    assert "activations explode" in r.verdict


def test_xavier_halves_relu_variance_per_layer(runs):
    """Glorot's variance argument ignores relu's halving: std * sqrt(1/2) per layer."""
    r = runs[("xavier_normal", "relu")]
    assert _per_layer_factor(r) == pytest.approx(math.sqrt(0.5), rel=0.05)


def test_xavier_keeps_tanh_reasonable(runs):
    r = runs[("xavier_normal", "tanh")]
    top = r.activation_std[DEPTH]
    assert 0.05 < top < 1.0  # measured 0.10: neither collapsed nor saturated
    assert r.activation_std[DEPTH] / r.activation_std[1] > 0.1
    assert r.gradient_std[0] / r.gradient_std[DEPTH] > 0.05  # measured 0.12
    assert r.verdict == "activations kept"
    assert np.all(r.saturation < 0.05)
    small = runs[("too_small", "tanh")]
    assert small.activation_std[DEPTH] < 1e-30  # the same net with std 0.01 loses the signal


def test_normal_1_saturates_tanh(runs):
    r = runs[("too_large", "tanh")]
    # pre-activations have std sqrt(width) = 16: |z| > 3 (tanh' < 0.01) for ~85 % of the units
    assert np.all(r.saturation[1:] > 0.7) and r.saturation[0] == 0
    assert 0.95 < r.activation_std[DEPTH] < 1.0  # pinned at +-1
    assert "saturated" in r.verdict
    assert np.all(runs[("kaiming_normal", "relu")].saturation == 0)  # relu does not saturate


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_zeros_gives_exactly_zero(runs, nonlinearity):
    r = runs[("zeros", nonlinearity)]
    assert r.activation_std[0] > 0.9  # the input
    assert np.all(r.activation_std[1:] == 0.0)
    assert np.all(r.gradient_std[:DEPTH] == 0.0) and r.gradient_std[DEPTH] > 0.9
    assert r.verdict == "zero"


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_constant_never_breaks_symmetry(runs, nonlinearity):
    r = runs[("constant", nonlinearity)]
    assert np.all(r.activation_std[1:] > 0)
    assert np.all(r.unit_spread[1:] <= 1e-9 * r.activation_std[1:])  # every unit equal
    assert r.unit_spread[0] > 0.5  # the input is not symmetric
    assert "symmetric" in r.verdict


def test_orthogonal_preserves_linear_norms_and_relu_scale(runs):
    lin = runs[("orthogonal", "linear")]
    assert np.allclose(lin.activation_std / lin.activation_std[0], 1.0, atol=0.02)
    assert np.allclose(lin.gradient_std / lin.gradient_std[DEPTH], 1.0, atol=0.02)
    relu = runs[("orthogonal", "relu")]
    assert np.all(np.abs(np.log2(relu.activation_std[1:] / relu.activation_std[1])) < 1)


def test_lecun_keeps_linear_layers(runs):
    r = runs[("lecun_normal", "linear")]
    assert np.all(np.abs(np.log2(r.activation_std[1:] / r.activation_std[0])) < 1)


def test_deterministic_and_seeded():
    a = diagnostics.propagate("kaiming_uniform", "leaky_relu", depth=5, width=32, batch=8, seed=3)
    b = diagnostics.propagate("kaiming_uniform", "leaky_relu", depth=5, width=32, batch=8, seed=3)
    c = diagnostics.propagate("kaiming_uniform", "leaky_relu", depth=5, width=32, batch=8, seed=4)
    assert np.array_equal(a.activation_std, b.activation_std) and np.array_equal(
        a.gradient_std, b.gradient_std
    )
    assert not np.array_equal(a.activation_std, c.activation_std)
    assert a.init == {"scheme": "kaiming_uniform", "nonlinearity": "leaky_relu", "a": 0.01}


@pytest.mark.parametrize("nonlinearity", sorted(diagnostics.NONLINEARITIES))
def test_every_nonlinearity_and_its_derivative(nonlinearity):
    """The backward pass uses f'(z): compare it with a central difference of f."""
    f, df = diagnostics.NONLINEARITIES[nonlinearity]
    z = np.linspace(-3, 3, 61) + 0.013  # avoid the kinks at 0
    h = f(z)
    eps = 1e-6
    assert np.allclose(df(z, h), (f(z + eps) - f(z - eps)) / (2 * eps), rtol=1e-5, atol=1e-7)
    r = diagnostics.propagate("orthogonal", nonlinearity, depth=3, width=16, batch=4)
    assert r.activation_std.shape == (4,) and r.gradient_std.shape == (4,)


def test_any_registry_scheme_or_config():
    r = diagnostics.propagate({"scheme": "normal", "std": 0.0625}, "linear", depth=3, width=256, batch=16)
    assert r.init == {"scheme": "normal", "std": 0.0625}
    # std 1/16 with width 256: the linear map keeps the scale, the same as LeCun
    assert 0.5 < r.activation_std[3] / r.activation_std[0] < 2
    assert diagnostics.propagate("ones", "linear", depth=1, width=4, batch=2).symmetric


def test_overflow_is_reported_without_warnings():
    r = diagnostics.propagate("too_large", "linear", depth=300, width=64, batch=4, backward=True)
    assert math.isinf(r.activation_std[-1]) or r.activation_std[-1] > 1e200
    assert "explode" in r.verdict
    assert r.gradient_std is not None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(nonlinearity="softplus"), "nonlinearity='softplus'"),
        (dict(depth=0), "depth=0"),
        (dict(width=2.5), "width=2.5"),
        (dict(batch=True), "batch=True"),
        (dict(scheme="too_big"), "scheme='too_big'"),
    ],
)
def test_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        diagnostics.propagate(**kwargs)


def test_no_backward():
    r = diagnostics.propagate("lecun_uniform", "selu", depth=4, width=32, batch=8, backward=False)
    assert r.gradient_std is None and r.gradient_change is None


def _png(path) -> np.ndarray:
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    return matplotlib.image.imread(path)


def test_plot_draws_the_numbers(tmp_path):
    pytest.importorskip("matplotlib")
    results = diagnostics.propagate_all(["zeros", "kaiming_normal", "too_small"], ["relu", "tanh"], depth=8,
                                        width=32, batch=8)  # fmt: skip
    lines = diagnostics.plot_propagation(results, tmp_path / "p.png")
    image = _png(tmp_path / "p.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
    assert len(lines) == 2 * len(results)  # activations and gradients, per (nonlinearity, scheme)
    for r in results:
        drawn = lines[(r.nonlinearity, r.scheme, "activations")]
        expected = np.where(r.activation_std > 0, r.activation_std, np.nan)
        assert np.array_equal(drawn, expected, equal_nan=True)
        assert np.array_equal(lines[(r.nonlinearity, r.scheme, "gradients")],
                              np.where(r.gradient_std > 0, r.gradient_std, np.nan), equal_nan=True)  # fmt: skip


def test_cli_propagate_table_json_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png, js = tmp_path / "prop.png", tmp_path / "prop.json"
    rc = main(["inspect", "--propagate", "--nonlinearity", "relu,tanh", "--schemes", "zeros,too_small,kaiming_normal",
               "--depth", "10", "--width", "64", "--batch", "16", "--plot", str(png), "--json", str(js)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "act std L10" in out and "Kaiming normal" in out and "too small" in out
    assert out.count("relu ") >= 3 and out.count("tanh ") >= 3
    _png(png)
    data = json.loads(js.read_text())
    assert len(data) == 6
    kaiming = next(d for d in data if d["scheme"] == "kaiming_normal" and d["nonlinearity"] == "relu")
    assert len(kaiming["activation_std"]) == 11 and kaiming["verdict"] == "activations kept"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--nonlinearity", "swish"], "--nonlinearity 'swish'"),
        (["--schemes", "bogus"], "--schemes 'bogus'"),
        (["--depth", "0"], "--depth 0"),
        (["--plot", "/nonexistent-dir/p.png"], "--plot /nonexistent-dir/p.png"),
    ],
)
def test_cli_propagate_errors(capsys, argv, message):
    assert main(["inspect", "--propagate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastinit: error: ") and message in err and err.count("\n") == 1
