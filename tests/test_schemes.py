"""Schemes: gains and fans against torch / JAX / the Keras rule, the Xavier / Kaiming / LeCun
presets against torch's own expressions, variance_scaling against JAX's formulas, the statistics
of every scheme on realistic shapes, eye / dirac / constant against torch, sparse, custom
element-wise schemes and the registry (orthogonal and delta_orthogonal: test_orthogonal.py).

Statistical tests use fixed seeds and names; each threshold says how often a *correct* scheme
would fail that check at a random seed:

- KS / chi-square tests: p-value threshold 1e-4.
- Means and standard deviations: |estimate - expected| <= 5 standard errors (two-sided normal
  p-value 5.7e-7), the standard error taken from the reference distribution (for the sample
  std: sigma * sqrt((kurtosis - 1) / (4 n)), the delta method).
- "Bound approached": the largest sample lies within t of the bound, t chosen so that a
  correct sampler misses with probability <= e**-20 = 2e-9.
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import fastinit
import fastinit.schemes
from fastinit.schemes import registry

torch = pytest.importorskip("torch")

HYPOTHESIS = settings(derandomize=True, max_examples=300, deadline=None, database=None)
KS_P = 1e-4  # p-value threshold for KS / chi-square tests
Z = 5.0  # z-threshold for means and stds: two-sided p-value 5.7e-7
TRUNC_STD = stats.truncnorm(-2.0, 2.0).std()  # std of N(0, 1) truncated to [-2, 2]


def _bytes(x):
    """(shape, dtype name, raw bytes) of a FastArray: equal triples mean identical tensors."""
    return x.shape, x.dtype.name, x.tobytes()


def _values(x) -> np.ndarray:
    """A FastArray's values as float64 (bfloat16 through ml_dtypes)."""
    return np.asarray(x).astype(np.float64)


def _outcome(fn, *args, **kwargs):
    """("ok", type, value) or ("error", type, message): compares results *and* errors."""
    try:
        value = fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the error itself is what is compared
        return ("error", type(error), str(error))
    return ("ok", type(value), value)


def _fans_torch_rule(shape):
    """torch's fans, written out (checked against torch itself in test_torch_fans_*)."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _torch_meta(shape):
    return torch.empty(shape, device="meta")


# ==== calculate_gain ============================================================================

LINEAR_NAMES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d"]  # fmt: skip
GAIN_CASES = (
    [(n, None) for n in LINEAR_NAMES]
    + [(n, 0.3) for n in LINEAR_NAMES]  # param ignored
    + [
        ("sigmoid", None),
        ("tanh", None),
        ("tanh", "ignored"),
        ("relu", None),
        ("relu", 0.5),
        ("selu", None),
        ("leaky_relu", None),  # default slope 0.01
        ("leaky_relu", 0),
        ("leaky_relu", 1),
        ("leaky_relu", -3),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5)),  # nn.Linear's default
        ("leaky_relu", -0.5),
        ("leaky_relu", 0.0),
        ("leaky_relu", math.inf),
        ("leaky_relu", math.nan),
        ("leaky_relu", 1e200),  # slope**2 overflows to inf: gain 0
        ("leaky_relu", 10**200),  # an int too large for a float: OverflowError in both
        ("leaky_relu", np.float64(0.2)),  # a float subclass: accepted
        ("leaky_relu", np.float32(0.2)),  # not a float: rejected by torch
        ("leaky_relu", True),
        ("leaky_relu", False),
        ("leaky_relu", "0.1"),
        ("leaky_relu", [0.1]),
        ("gelu", None),
        ("Linear", None),  # names are case-sensitive
        ("", None),
        (None, None),
        ("softmax", 0.1),
    ]
)


@pytest.mark.parametrize(("nonlinearity", "param"), GAIN_CASES, ids=[f"{n}-{p!r}" for n, p in GAIN_CASES])
def test_calculate_gain_matches_torch(nonlinearity, param):
    ours = _outcome(fastinit.calculate_gain, nonlinearity, param)
    theirs = _outcome(torch.nn.init.calculate_gain, nonlinearity, param)
    if ours[0] == "ok" and theirs[0] == "ok" and math.isnan(theirs[2]):
        assert ours[1] is theirs[1] and math.isnan(ours[2])
    else:
        assert ours == theirs  # same value and type (int 1 for linear), or same error and message


def test_calculate_gain_default_param():
    assert fastinit.calculate_gain("leaky_relu") == math.sqrt(2.0 / (1 + 0.01**2))
    assert fastinit.calculate_gain("tanh") == 5.0 / 3


# ==== compute_fans ===============================================================================

SHAPES_ANY = st.lists(st.integers(0, 7), max_size=5).map(tuple)


def _torch_fans(shape):
    return torch.nn.init._calculate_fan_in_and_fan_out(_torch_meta(shape))


@pytest.mark.parametrize(
    "shape", [(), (5,), (3, 4), (64, 32, 3, 3), (8, 4, 3, 3, 3), (16, 0, 3), (0, 7), (2, 3, 0)], ids=str
)
def test_torch_fans_table(shape):
    assert _outcome(fastinit.compute_fans, shape) == _outcome(_torch_fans, shape)
    assert _outcome(fastinit.compute_fans, shape, layout="torch") == _outcome(_torch_fans, shape)


@HYPOTHESIS
@given(shape=SHAPES_ANY)
def test_torch_fans_match_torch(shape):
    # values and types (ints), and below 2 dimensions torch's ValueError with its message
    assert _outcome(fastinit.compute_fans, shape, layout="torch") == _outcome(_torch_fans, shape)


def _keras_rule(shape):
    """Keras 3's compute_fans, written out from its source (Keras is not installed here)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = 1
    for d in shape[:-2]:
        receptive *= d
    return shape[-2] * receptive, shape[-1] * receptive


@pytest.mark.parametrize("shape", [(), (7,), (3, 4), (3, 3, 32, 64), (5, 3, 3, 8, 16), (3, 0, 4)], ids=str)
def test_keras_fans_table(shape):
    got = fastinit.compute_fans(shape, layout="keras")
    assert got == _keras_rule(shape) and all(type(f) is int for f in got)


@HYPOTHESIS
@given(shape=SHAPES_ANY)
def test_keras_fans_match_rule(shape):
    got = fastinit.compute_fans(shape, layout="keras")
    assert got == _keras_rule(shape) and all(type(f) is int for f in got)


@st.composite
def _jax_fan_args(draw):
    ndim = draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.integers(0, 7), min_size=ndim, max_size=ndim)))
    axis = st.integers(-ndim, ndim - 1)
    axes = st.one_of(axis, st.lists(axis, max_size=3), st.lists(axis, max_size=3).map(tuple))
    in_axis = draw(st.one_of(st.none(), axes))
    out_axis = draw(st.one_of(st.none(), axes))
    batch_axis = draw(st.one_of(st.just(()), axes))
    return shape, in_axis, out_axis, batch_axis


def _jax_fans(shape, in_axis, out_axis, batch_axis):
    from jax._src.nn.initializers import _compute_fans

    kwargs = {"batch_axis": batch_axis}
    if in_axis is not None:
        kwargs["in_axis"] = in_axis
    if out_axis is not None:
        kwargs["out_axis"] = out_axis
    return _compute_fans(shape, **kwargs)


JAX_FAN_CASES = [
    ((3, 3, 32, 64), None, None, ()),
    ((128, 256), None, None, ()),
    ((5,), None, None, ()),  # JAX's error for 1-D with the default in_axis
    ((5,), 0, 0, ()),
    ((2, 3, 4, 5), (0, 1), -1, 2),
    ((2, 3, 4, 5), [0, 1], (2,), [3]),
    ((8, 3, 3, 16, 32), -2, -1, 0),  # a batch of conv kernels
    ((4, 6, 10), 0, 1, ()),  # receptive field 10
    ((4, 6, 10), -3, -2, ()),  # the same with negative axes
    ((4, 6, 10), 1, 2, 0),
    ((6, 4, 9), 0, 2, ()),  # receptive field from the middle axis
    ((7, 5, 3), (), (), ()),  # empty sequences: sizes 1
    ((3, 4), 0, 0, ()),  # the same axis twice
    ((3, 0, 4), None, None, ()),  # zero-size: ZeroDivisionError in both
]


@pytest.mark.parametrize(("shape", "in_axis", "out_axis", "batch_axis"), JAX_FAN_CASES,
                         ids=[f"{s}-in{i}-out{o}-b{b}" for s, i, o, b in JAX_FAN_CASES])  # fmt: skip
def test_jax_fans_table(shape, in_axis, out_axis, batch_axis):
    pytest.importorskip("jax")
    ours = _outcome(fastinit.compute_fans, shape, layout="jax", in_axis=in_axis, out_axis=out_axis,
                    batch_axis=batch_axis)  # fmt: skip
    assert ours == _outcome(_jax_fans, shape, in_axis, out_axis, batch_axis)
    if ours[0] == "ok":
        assert all(type(f) is float for f in ours[2])  # JAX's receptive field is a float division


@HYPOTHESIS
@given(args=_jax_fan_args())
def test_jax_fans_match_jax(args):
    pytest.importorskip("jax")
    shape, in_axis, out_axis, batch_axis = args
    ours = _outcome(fastinit.compute_fans, shape, layout="jax", in_axis=in_axis, out_axis=out_axis,
                    batch_axis=batch_axis)  # fmt: skip
    assert ours == _outcome(_jax_fans, shape, in_axis, out_axis, batch_axis)


def test_fans_defaults_and_numpy_ints():
    assert fastinit.compute_fans((64, 32, 3, 3)) == (288, 576)
    assert fastinit.compute_fans(np.array([64, 32, 3, 3])) == (288, 576)
    assert fastinit.compute_fans((np.int64(3), 3, 32, 64), layout="jax") == (288.0, 576.0)


FAN_ERRORS = [
    (dict(shape=(3, 4), layout="tf"), ValueError, "layout"),
    (dict(shape=(3, 4), layout="torch", in_axis=0), ValueError, "in_axis"),
    (dict(shape=(3, 4), layout="torch", batch_axis=(0,)), ValueError, "batch_axis"),
    (dict(shape=(3, 4), layout="keras", out_axis=1), ValueError, "out_axis"),
    (dict(shape=(3, 4), layout="jax", in_axis=2), ValueError, "in_axis"),
    (dict(shape=(3, 4), layout="jax", out_axis=-3), ValueError, "out_axis"),
    (dict(shape=(3, 4), layout="jax", batch_axis=(0, 5)), ValueError, "batch_axis"),
    (dict(shape=(3, 4), layout="jax", in_axis=1.0), TypeError, "in_axis"),
    (dict(shape=(3, 4), layout="jax", in_axis=True), TypeError, "in_axis"),
    (dict(shape=(3, 4), layout="jax", out_axis="1"), TypeError, "out_axis"),
    (dict(shape=(3, 4), layout="jax", batch_axis=[0.5]), TypeError, "batch_axis"),
]


@pytest.mark.parametrize(("kwargs", "error", "word"), FAN_ERRORS, ids=[str(k) for k, _, _ in FAN_ERRORS])
def test_fans_errors_name_the_argument(kwargs, error, word):
    kwargs = dict(kwargs)
    shape = kwargs.pop("shape")
    with pytest.raises(error, match=re.escape(word)):
        fastinit.compute_fans(shape, **kwargs)


# ==== the presets: torch's own expressions, byte for byte =========================================

PRESET_SHAPES = [(5, 3), (300, 200), (64, 32, 3, 3), (16, 8, 5), (7, 1, 2, 2, 2)]
PRESET_DTYPES = ["float32", "float64", "bfloat16"]
KAIMING_PARAMS = [
    (0.0, "fan_in", "leaky_relu"),  # torch's defaults
    (math.sqrt(5), "fan_in", "leaky_relu"),  # nn.Linear / nn.Conv*d
    (0, "fan_out", "relu"),  # torchvision ResNets
    (0.2, "fan_out", "leaky_relu"),
    (1, "fan_in", "leaky_relu"),  # an int slope
    (0.0, "FAN_IN", "tanh"),  # torch lower-cases the mode
    (0.0, "fan_in", "selu"),
    (0.0, "fan_out", "linear"),
]
XAVIER_GAINS = [1.0, math.sqrt(2.0), 5.0 / 3, 0.25, 2]


def _torch_kaiming_std(shape, a, mode, nonlinearity):
    # torch.nn.init.kaiming_uniform_ / kaiming_normal_, line for line
    fan = torch.nn.init._calculate_correct_fan(_torch_meta(shape), mode)
    gain = torch.nn.init.calculate_gain(nonlinearity, a)
    return gain / math.sqrt(fan)


def _torch_xavier_std(shape, gain):
    # torch.nn.init.xavier_uniform_ / xavier_normal_, line for line
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(_torch_meta(shape))
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


@pytest.mark.parametrize("dtype", PRESET_DTYPES)
@pytest.mark.parametrize("shape", PRESET_SHAPES, ids=str)
@pytest.mark.parametrize(
    ("a", "mode", "nonlinearity"), KAIMING_PARAMS, ids=[f"{n}-a{a:.3g}-{m}" for a, m, n in KAIMING_PARAMS]
)
def test_kaiming_is_uniform_and_normal_with_torchs_bound_and_std(a, mode, nonlinearity, shape, dtype):
    std = _torch_kaiming_std(shape, a, mode, nonlinearity)
    bound = math.sqrt(3.0) * std  # torch: "Calculate uniform bounds from standard deviation"
    kw = dict(seed=11, name="conv.weight", dtype=dtype)
    got = fastinit.kaiming_uniform(shape, a, mode, nonlinearity, **kw)
    assert _bytes(got) == _bytes(fastinit.uniform(shape, -bound, bound, **kw))
    assert _bytes(fastinit.he_uniform(shape, a, mode, nonlinearity, **kw)) == _bytes(got)
    got = fastinit.kaiming_normal(shape, a, mode, nonlinearity, **kw)
    assert _bytes(got) == _bytes(fastinit.normal(shape, 0.0, std, **kw))
    assert _bytes(fastinit.he_normal(shape, a, mode, nonlinearity, **kw)) == _bytes(got)


@pytest.mark.parametrize("dtype", PRESET_DTYPES)
@pytest.mark.parametrize("shape", PRESET_SHAPES, ids=str)
@pytest.mark.parametrize("gain", XAVIER_GAINS, ids=lambda g: f"gain{g:.3g}")
def test_xavier_is_uniform_and_normal_with_torchs_bound_and_std(gain, shape, dtype):
    std = _torch_xavier_std(shape, gain)
    bound = math.sqrt(3.0) * std
    kw = dict(seed=5, name="fc.weight", dtype=dtype)
    got = fastinit.xavier_uniform(shape, gain, **kw)
    assert _bytes(got) == _bytes(fastinit.uniform(shape, -bound, bound, **kw))
    assert _bytes(fastinit.glorot_uniform(shape, gain, **kw)) == _bytes(got)
    got = fastinit.xavier_normal(shape, gain, **kw)
    assert _bytes(got) == _bytes(fastinit.normal(shape, 0.0, std, **kw))
    assert _bytes(fastinit.glorot_normal(shape, gain, **kw)) == _bytes(got)


@pytest.mark.parametrize(
    ("jax_shape", "torch_shape"),
    [((3, 3, 32, 64), (64, 32, 3, 3)), ((128, 256), (256, 128)), ((5, 8, 16), (16, 8, 5))],
    ids=str,
)
def test_presets_with_jax_layout_use_jax_fans(jax_shape, torch_shape):
    # (kh, kw, in, out) in JAX's layout has the fans of (out, in, kh, kw) in torch's
    kw = dict(seed=2, name="w")
    std = _torch_kaiming_std(torch_shape, 0.0, "fan_in", "relu")
    bound = math.sqrt(3.0) * std
    got = fastinit.kaiming_uniform(jax_shape, nonlinearity="relu", layout="jax", **kw)
    assert _bytes(got) == _bytes(fastinit.uniform(jax_shape, -bound, bound, **kw))
    std = _torch_xavier_std(torch_shape, 1.0)
    got = fastinit.xavier_normal(jax_shape, layout="jax", **kw)
    assert _bytes(got) == _bytes(fastinit.normal(jax_shape, 0.0, std, **kw))
    got = fastinit.lecun_uniform(jax_shape, layout="keras", **kw)
    fan_in = _keras_rule(jax_shape)[0]
    bound = math.sqrt(3 * (1.0 / fan_in))
    assert _bytes(got) == _bytes(fastinit.uniform(jax_shape, -bound, bound, **kw))


# ---- variance_scaling: JAX's formulas --------------------------------------------------------------


def _jax_denominator(fan_in, fan_out, mode):
    # jax.nn.initializers.variance_scaling
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
            "fan_geo_avg": (fan_in * fan_out) ** 0.5}[mode]  # fmt: skip


VS_CASES = [
    # shape, scale, mode, axes
    ((3, 3, 32, 64), 2.0, "fan_in", {}),
    ((3, 3, 32, 64), 1.0, "fan_out", {}),
    ((128, 256), 1.0, "fan_avg", {}),
    ((128, 256), 0.1, "fan_geo_avg", {}),
    ((4, 6, 10), 1.0, "fan_in", dict(in_axis=0, out_axis=1)),
    ((8, 3, 3, 16, 32), 2.0, "fan_avg", dict(batch_axis=0)),
    ((2, 3, 4, 5), 3.0, "fan_geo_avg", dict(in_axis=(0, 1), out_axis=-1, batch_axis=(2,))),
]
VS_DISTRIBUTIONS = ["truncated_normal", "normal", "untruncated_normal", "uniform"]


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("distribution", VS_DISTRIBUTIONS)
@pytest.mark.parametrize(("shape", "scale", "mode", "axes"), VS_CASES,
                         ids=[f"{s}-{sc}-{m}-{a}" for s, sc, m, a in VS_CASES])  # fmt: skip
def test_variance_scaling_follows_jax_formula(shape, scale, mode, axes, distribution, dtype):
    pytest.importorskip("jax")
    from jax._src.nn.initializers import _compute_fans  # JAX's fans, independently of ours

    fan_in, fan_out = _compute_fans(shape, **axes)
    variance = scale / _jax_denominator(fan_in, fan_out, mode)
    kw = dict(seed=3, name="kernel", dtype=dtype)
    got = fastinit.variance_scaling(shape, scale, mode, distribution, **axes, **kw)
    if distribution == "uniform":
        bound = math.sqrt(3 * variance)
        want = fastinit.uniform(shape, -bound, bound, **kw)
    elif distribution == "truncated_normal":
        # N(0, 1) truncated to [-2, 2], times sqrt(variance) / .87962566103423978 (JAX's constant)
        std_pre = math.sqrt(variance) / 0.87962566103423978
        want = fastinit.truncated_normal(shape, 0.0, std_pre, -2 * std_pre, 2 * std_pre, **kw)
    else:
        want = fastinit.normal(shape, 0.0, math.sqrt(variance), **kw)
    assert _bytes(got) == _bytes(want)


def test_truncation_constant_is_the_truncated_std():
    # the constant JAX (and fastinit) divide by: std of N(0, 1) truncated to [-2, 2]
    from fastinit.schemes.variance_scaling import TRUNCATED_NORMAL_STD

    assert TRUNCATED_NORMAL_STD == pytest.approx(TRUNC_STD, rel=1e-15)


# ---- presets as variance_scaling specialisations ------------------------------------------------


def _kaiming_torch_std(gain, mode):
    # torch: std = gain / math.sqrt(fan)
    return lambda fi, fo: gain / math.sqrt(fi if mode == "fan_in" else fo)


def _xavier_torch_std(gain):
    # torch: std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return lambda fi, fo: gain * math.sqrt(2.0 / float(fi + fo))


SQRT5_GAIN = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
PRESET_AS_VS = [
    # id, preset call, its variance_scaling (scale, mode, distribution), the preset's std (torch's
    # expression; None: the preset *is* variance_scaling, so the same float64 std)
    ("lecun_uniform", lambda s, **k: fastinit.lecun_uniform(s, **k), (1.0, "fan_in", "uniform"), None),
    ("lecun_normal", lambda s, **k: fastinit.lecun_normal(s, **k), (1.0, "fan_in", "truncated_normal"), None),
    ("xavier_uniform", lambda s, **k: fastinit.xavier_uniform(s, **k), (1.0, "fan_avg", "uniform"),
     _xavier_torch_std(1.0)),
    ("xavier_uniform-gain3", lambda s, **k: fastinit.xavier_uniform(s, 3.0, **k), (9.0, "fan_avg", "uniform"),
     _xavier_torch_std(3.0)),
    ("xavier_normal-gain0.5", lambda s, **k: fastinit.xavier_normal(s, 0.5, **k), (0.25, "fan_avg", "normal"),
     _xavier_torch_std(0.5)),
    ("kaiming_uniform-relu", lambda s, **k: fastinit.kaiming_uniform(s, nonlinearity="relu", **k),
     (2.0, "fan_in", "uniform"), _kaiming_torch_std(math.sqrt(2.0), "fan_in")),
    ("kaiming_uniform-sqrt5", lambda s, **k: fastinit.kaiming_uniform(s, math.sqrt(5), **k),
     (SQRT5_GAIN**2, "fan_in", "uniform"), _kaiming_torch_std(SQRT5_GAIN, "fan_in")),
    ("kaiming_normal-fan_out", lambda s, **k: fastinit.kaiming_normal(s, 0.0, "fan_out", "relu", **k),
     (2.0, "fan_out", "normal"), _kaiming_torch_std(math.sqrt(2.0), "fan_out")),
    ("kaiming_normal-tanh", lambda s, **k: fastinit.kaiming_normal(s, 0.0, "fan_in", "tanh", **k),
     ((5.0 / 3) ** 2, "fan_in", "normal"), _kaiming_torch_std(5.0 / 3, "fan_in")),
]  # fmt: skip


def _close_or_equal(a, b, param_a, param_b):
    """Byte-identical when the two computations give the same float64 parameter; otherwise the
    parameters differ by float64 ulps and the values by at most one step of the output dtype."""
    if param_a == param_b:
        assert _bytes(a) == _bytes(b)
        return
    assert param_a == pytest.approx(param_b, rel=8 * np.finfo(np.float64).eps)
    x, y = _values(a), _values(b)
    step = {"float32": 2.0**-23, "float64": 2.0**-52, "bfloat16": 2.0**-7}[a.dtype.name]
    # uniform: x = -b + 2 b u moves by at most |db| plus a rounding; normal: x = std z, relative
    assert np.all(np.abs(x - y) <= 2 * step * (np.abs(x) + param_a))


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3), (10, 7)], ids=str)
@pytest.mark.parametrize(("preset", "vs_args", "preset_std"), [row[1:] for row in PRESET_AS_VS],
                         ids=[row[0] for row in PRESET_AS_VS])  # fmt: skip
def test_preset_equals_its_variance_scaling(preset, vs_args, preset_std, shape, dtype):
    scale, mode, distribution = vs_args
    kw = dict(seed=9, name="w", dtype=dtype)
    got = preset(shape, **kw)
    want = fastinit.variance_scaling(shape, scale, mode, distribution, layout="torch", **kw)
    fan_in, fan_out = _fans_torch_rule(shape)
    vs_std = math.sqrt(scale / _jax_denominator(fan_in, fan_out, mode))
    std = vs_std if preset_std is None else preset_std(fan_in, fan_out)
    if distribution == "uniform":
        # variance_scaling: sqrt(3 * variance); the torch presets: sqrt(3.0) * std
        vs_bound = math.sqrt(3 * (scale / _jax_denominator(fan_in, fan_out, mode)))
        _close_or_equal(got, want, vs_bound if preset_std is None else math.sqrt(3.0) * std, vs_bound)
    else:
        _close_or_equal(got, want, std, vs_std)


# ==== statistics on realistic shapes ===============================================================


# id -> (call, expected distribution from the torch-layout fans: ("uniform", bound) |
# ("normal", std) | ("truncnorm", std before truncation to +-2 of it))
STAT_SCHEMES = {
    "xavier_uniform": (lambda s, **k: fastinit.xavier_uniform(s, **k),
                       lambda fi, fo: ("uniform", math.sqrt(6.0 / (fi + fo)))),
    "xavier_normal-gain_sqrt2": (lambda s, **k: fastinit.xavier_normal(s, math.sqrt(2), **k),
                                 lambda fi, fo: ("normal", math.sqrt(2) * math.sqrt(2.0 / (fi + fo)))),
    "kaiming_uniform-a_sqrt5": (lambda s, **k: fastinit.kaiming_uniform(s, a=math.sqrt(5), **k),
                                lambda fi, fo: ("uniform", 1.0 / math.sqrt(fi))),  # nn.Linear: 1/sqrt(fan_in)
    "kaiming_normal-relu-fan_out": (lambda s, **k: fastinit.kaiming_normal(s, 0, "fan_out", "relu", **k),
                                    lambda fi, fo: ("normal", math.sqrt(2.0 / fo))),
    "lecun_uniform": (lambda s, **k: fastinit.lecun_uniform(s, **k),
                      lambda fi, fo: ("uniform", math.sqrt(3.0 / fi))),
    "lecun_normal": (lambda s, **k: fastinit.lecun_normal(s, **k),
                     lambda fi, fo: ("truncnorm", math.sqrt(1.0 / fi) / TRUNC_STD)),
    "vs-2-fan_avg-truncated": (
        lambda s, **k: fastinit.variance_scaling(s, 2.0, "fan_avg", layout="torch", **k),
        lambda fi, fo: ("truncnorm", math.sqrt(2.0 / ((fi + fo) / 2)) / TRUNC_STD)),
    "vs-1-fan_geo_avg-uniform": (
        lambda s, **k: fastinit.variance_scaling(s, 1.0, "fan_geo_avg", "uniform", layout="torch", **k),
        lambda fi, fo: ("uniform", math.sqrt(3.0 / math.sqrt(fi * fo)))),
    "vs-0.5-fan_out-normal": (
        lambda s, **k: fastinit.variance_scaling(s, 0.5, "fan_out", "normal", layout="torch", **k),
        lambda fi, fo: ("normal", math.sqrt(0.5 / fo))),
}  # fmt: skip
STAT_SHAPES = [(4096, 1024), (768, 3072), (256, 128, 3, 3), (64, 3, 7, 7)]
KS_MAX = 2**18  # KS on the first 2**18 elements (independent draws): keeps the sort cheap
_BF16_SPACING = 2.0**-7  # relative spacing of bfloat16 values (8 significant bits), upper bound


def _reference(kind, param):
    if kind == "uniform":
        return stats.uniform(loc=-param, scale=2 * param)
    if kind == "normal":
        return stats.norm(scale=param)
    return stats.truncnorm(-2.0, 2.0, scale=param)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("shape", STAT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("scheme", list(STAT_SCHEMES))
def test_scheme_statistics_match_formula(scheme, shape, dtype):
    call, expected = STAT_SCHEMES[scheme]
    kind, param = expected(*_fans_torch_rule(shape))
    ref = _reference(kind, param)
    x = _values(call(shape, seed=2024, name=f"{scheme}.weight", dtype=dtype)).ravel()
    n = x.size
    sigma = ref.std()
    if kind == "truncnorm":
        # JAX's correction: the std after truncation is exactly sqrt(scale / n)
        assert sigma == pytest.approx(param * 0.87962566103423978, rel=1e-12)
    kurtosis = ref.stats(moments="k") + 3.0
    se_mean, se_std = sigma / math.sqrt(n), sigma * math.sqrt((kurtosis - 1) / (4 * n))
    assert abs(x.mean()) <= Z * se_mean, f"mean {x.mean():.3g}, standard error {se_mean:.3g}"
    assert abs(x.std() - sigma) <= Z * se_std, (
        f"std {x.std():.6g} vs {sigma:.6g}, standard error {se_std:.3g}"
    )
    spacing = param * (_BF16_SPACING if dtype == "bfloat16" else 2.0**-23)
    if kind == "uniform":
        b = param
        assert x.min() >= -b and x.max() < b  # [-b, b), after rounding to dtype
        gap = 2 * b * 20 / n + spacing  # P(no draw in the top 20/n of the range) = e**-20
        assert x.max() >= b - gap and x.min() <= -b + gap
    elif kind == "truncnorm":
        b = 2 * param
        assert x.min() >= -b and x.max() <= b
        density = stats.norm.pdf(2.0) / (stats.norm.cdf(2.0) - stats.norm.cdf(-2.0)) / param
        gap = 20 / (density * n) + spacing  # the density is >= this inside: miss prob <= e**-20
        assert x.max() >= b - gap and x.min() <= -b + gap
    if dtype != "bfloat16":  # bfloat16 steps are as coarse as the KS distance: moments only
        p = stats.kstest(x[:KS_MAX], ref.cdf).pvalue
        assert p > KS_P, f"KS p = {p:.3g}"


# ==== deterministic schemes: eye, dirac, constant / zeros / ones =================================

EYE_SHAPES = [(3, 5), (5, 3), (4, 4), (1, 7), (7, 1), (0, 3), (3, 0)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("shape", EYE_SHAPES, ids=str)
def test_eye_matches_torch(shape, dtype):
    want = torch.nn.init.eye_(torch.empty(shape)).numpy()
    got = fastinit.eye(shape, dtype=dtype)
    assert got.shape == shape and got.dtype.name == dtype
    np.testing.assert_array_equal(_values(got), want)


DIRAC_CASES = [
    ((4, 2, 3), 1),
    ((2, 4, 3), 1),
    ((6, 4, 5), 2),
    ((6, 4, 5), 3),
    ((6, 1, 4), 3),  # more outputs per group than inputs
    ((8, 2, 3, 3), 4),
    ((2, 8, 3, 3), 1),
    ((4, 4, 2, 2), 1),  # even kernel: centre k // 2 = 1
    ((3, 16, 5, 5), 1),
    ((3, 24, 5, 5), 3),  # torch's docstring example
    ((6, 3, 3, 4, 5), 3),
    ((4, 4, 1, 2, 6), 2),
    ((0, 3, 3), 1),
    ((3, 0, 3, 3), 1),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize(("shape", "groups"), DIRAC_CASES, ids=[f"{s}-g{g}" for s, g in DIRAC_CASES])
def test_dirac_matches_torch(shape, groups, dtype):
    want = torch.nn.init.dirac_(torch.empty(shape), groups).numpy()
    got = fastinit.dirac(shape, groups, dtype=dtype)
    assert got.shape == shape and got.dtype.name == dtype
    np.testing.assert_array_equal(_values(got), want)


def test_dirac_zero_size_kernel():
    # torch.nn.init.dirac_ raises IndexError on a zero-size spatial dimension; fastinit gives
    # the (empty) tensor
    got = fastinit.dirac((3, 3, 0))
    assert got.shape == (3, 3, 0) and got.raw.size == 0


@st.composite
def _dirac_args(draw):
    ndim = draw(st.integers(3, 5))
    groups = draw(st.integers(1, 4))
    out = groups * draw(st.integers(1, 4))
    rest = draw(st.lists(st.integers(1, 5), min_size=ndim - 1, max_size=ndim - 1))
    return (out, *rest), groups


@settings(HYPOTHESIS, max_examples=100)
@given(args=_dirac_args())
def test_dirac_matches_torch_generated(args):
    shape, groups = args
    want = torch.nn.init.dirac_(torch.empty(shape), groups).numpy()
    np.testing.assert_array_equal(np.asarray(fastinit.dirac(shape, groups)), want)


@pytest.mark.parametrize(
    ("call", "torch_call"),
    [
        (lambda: fastinit.eye((3,)), lambda: torch.nn.init.eye_(torch.empty(3))),
        (lambda: fastinit.eye((2, 3, 4)), lambda: torch.nn.init.eye_(torch.empty(2, 3, 4))),
        (lambda: fastinit.dirac((4, 2)), lambda: torch.nn.init.dirac_(torch.empty(4, 2))),
        (
            lambda: fastinit.dirac((4, 2, 1, 1, 1, 1)),
            lambda: torch.nn.init.dirac_(torch.empty(4, 2, 1, 1, 1, 1)),
        ),
        (lambda: fastinit.dirac((5, 2, 3), 2), lambda: torch.nn.init.dirac_(torch.empty(5, 2, 3), 2)),
        (lambda: fastinit.dirac((6, 2, 3, 3), 4), lambda: torch.nn.init.dirac_(torch.empty(6, 2, 3, 3), 4)),
    ],
    ids=["eye-1d", "eye-3d", "dirac-2d", "dirac-6d", "dirac-groups5/2", "dirac-groups6/4"],
)
def test_eye_dirac_errors_match_torch(call, torch_call):
    theirs = _outcome(torch_call)
    assert theirs[0] == "error"
    assert _outcome(call) == theirs


@pytest.mark.parametrize("groups", [0, -1, 1.0, True, "2"])
def test_dirac_bad_groups(groups):
    with pytest.raises((TypeError, ValueError), match="groups"):
        fastinit.dirac((4, 2, 3), groups)


DETERMINISTIC_INDEXES = [(slice(1, None, 2),), (2,), (Ellipsis, 1), (slice(None, None, -1), slice(0, 3)), ()]
DETERMINISTIC = {
    "eye": ((5, 4), lambda s, **k: fastinit.eye(s, **k)),
    "dirac-g2": ((6, 3, 3, 3), lambda s, **k: fastinit.dirac(s, 2, **k)),
    "constant": ((5, 4, 3), lambda s, **k: fastinit.constant(s, -0.1, **k)),
    "zeros": ((5, 4), lambda s, **k: fastinit.zeros(s, **k)),
    "ones": ((5, 4), lambda s, **k: fastinit.ones(s, **k)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("index", DETERMINISTIC_INDEXES, ids=repr)
@pytest.mark.parametrize("scheme", list(DETERMINISTIC))
def test_deterministic_index_and_out(scheme, index, dtype):
    shape, call = DETERMINISTIC[scheme]
    full = call(shape, dtype=dtype)
    part = call(shape, dtype=dtype, index=index)
    want = full.raw[index]
    assert part.shape == want.shape and part.raw.tobytes() == np.ascontiguousarray(want).tobytes()
    # out= into a NumPy array (value dtypes) and into a torch tensor
    if dtype != "bfloat16":
        out = np.full(want.shape, 7, dtype=dtype)
        assert call(shape, index=index, out=out) is out
        assert out.tobytes() == np.ascontiguousarray(want).tobytes()
    tdtype = getattr(torch, dtype)
    tout = torch.full(want.shape, 7.0, dtype=tdtype)
    call(shape, index=index, out=tout)
    storage = np.uint16 if dtype == "bfloat16" else dtype
    assert tout.view(torch.int16 if dtype == "bfloat16" else tdtype).numpy().view(storage).tobytes() == (
        np.ascontiguousarray(want).tobytes()
    )


def _finite_values(dtype):
    """Every finite value of a 16-bit float dtype, sorted, as float64."""
    bits = np.arange(2**16, dtype=np.uint32)
    if dtype == "float16":
        bits = bits[(bits & 0x7C00) != 0x7C00]  # drop inf / NaN patterns
        v = bits.astype(np.uint16).view(np.float16).astype(np.float64)
    else:
        bits = bits[(bits & 0x7F80) != 0x7F80]
        v = (bits << np.uint32(16)).view(np.float32).astype(np.float64)
    return np.unique(v)


def _nearest(x: float, dtype: str) -> float:
    """x rounded once, to nearest with ties to even, into dtype, from x itself (float64 ->
    float32 -> bfloat16 can round twice). NumPy converts float64 to float32 / float16 in one
    correctly rounded step; bfloat16 is done exactly here, with Fractions."""
    if dtype == "float64" or math.isinf(x):
        return x
    if dtype in ("float32", "float16"):
        with np.errstate(over="ignore"):
            return float(np.array(x).astype(dtype))
    biggest = float(np.uint32(0x7F7F0000).view(np.float32))
    if abs(x) >= biggest + 2.0**119:  # at or past the midpoint to 2**128: overflows to inf
        return math.copysign(math.inf, x)
    values = _finite_values("bfloat16")
    i = int(np.searchsorted(values, x))
    candidates = [float(c) for c in values[max(i - 1, 0) : i + 1]]
    dist = [abs(Fraction(c) - Fraction(x)) for c in candidates]
    ties = [c for c, d in zip(candidates, dist, strict=True) if d == min(dist)]
    # a tie goes to the value whose last significand bit is 0
    even = [c for c in ties if not (int(np.float32(c).view(np.uint32)) >> 16) & 1]
    return (even or ties)[0]


CONSTANT_VALUES = [
    0.1,
    -1.0 / 3,
    math.pi,
    1e-8,
    -2.5,
    0.0,
    65504.0,
    65520.0,
    1e-30,
    3e-39,
    math.inf,
    -math.inf,
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("value", CONSTANT_VALUES, ids=repr)
def test_constant_is_value_rounded_to_dtype(value, dtype):
    want = _nearest(value, dtype)
    if math.isinf(want) and not math.isinf(value):
        # a finite value the dtype cannot hold is refused, as torch's fill_ refuses it
        # ("value cannot be converted to type ... without overflow"), never silently inf
        with pytest.raises(ValueError, match=r"^value=.*float"):
            fastinit.constant((3, 4), value, dtype=dtype)
        with pytest.raises(RuntimeError, match="overflow"):
            torch.nn.init.constant_(torch.empty(3, 4, dtype=getattr(torch, dtype)), value)
        return
    got = fastinit.constant((3, 4), value, dtype=dtype)
    v = _values(got)
    assert np.all(v == want)
    if dtype == "bfloat16":
        # the documented example: constant(0.1, bfloat16) == bfloat16(0.1)
        assert np.all(got.numpy() == ml_dtypes.bfloat16(value))
    # torch agrees on these values (none of them is a double-rounding case)
    t = torch.nn.init.constant_(torch.empty(3, 4, dtype=getattr(torch, dtype)), value)
    np.testing.assert_array_equal(v, t.double().numpy())


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (1 + 2**-8 + 2**-30, "bfloat16"),  # nearest 1 + 2**-7; through float32: the tie 1 + 2**-8 -> 1
        (1 + 2**-11 + 2**-40, "float16"),  # nearest 1 + 2**-10; through float32: the tie -> 1
        (-(1 + 2**-8 + 2**-30), "bfloat16"),
    ],
    ids=["bf16", "f16", "bf16-negative"],
)
def test_constant_rounds_once_not_through_float32(value, dtype):
    # dtypes.round_to_dtype's contract: "value rounded once, to nearest (ties to even)". Rounding
    # the float64 value to float32 first lands exactly on a tie of the 16-bit dtype, which then
    # rounds to even: the wrong neighbour. (torch's constant_ rounds through float32 as well.)
    assert np.all(_values(fastinit.constant((2,), value, dtype=dtype)) == _nearest(value, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
def test_constant_negative_zero_keeps_its_sign(dtype):
    # -0.0 is a value of every dtype: rounding leaves it alone, and torch's constant_ keeps it
    v = _values(fastinit.constant((4,), -0.0, dtype=dtype))
    assert np.all(v == 0) and np.all(np.signbit(v))
    assert np.all(np.signbit(torch.nn.init.constant_(torch.empty(4, dtype=getattr(torch, dtype)), -0.0)
                             .double().numpy()))  # fmt: skip


def test_constant_overflow_is_inf_or_a_clear_error():
    # 1e40 rounds to +inf in float32 (round to nearest, IEEE); either give inf without a
    # warning, or refuse with an error naming `value` (as the samplers do for low/high).
    try:
        got = fastinit.constant((2,), 1e40)
    except ValueError as error:
        assert "value" in str(error)
    else:
        assert np.all(_values(got) == math.inf)


def test_zeros_ones():
    for dtype in ["float32", "float64", "bfloat16", "float16"]:
        assert np.all(_values(fastinit.zeros((3, 2), dtype=dtype)) == 0)
        assert not np.any(np.signbit(_values(fastinit.zeros((3, 2), dtype=dtype))))
        assert np.all(_values(fastinit.ones((3, 2), dtype=dtype)) == 1)
    # seed and name are accepted and ignored
    assert _bytes(fastinit.ones(5, seed=3, name="x")) == _bytes(fastinit.ones(5))


# ==== sparse =======================================================================================

SPARSE_CASES = [
    (10, 4, 0.25),
    (100, 50, 0.1),
    (30, 20, 0.1),  # 0.1 * 30 == 3.0000000000000004: ceil gives 4, as in torch
    (7, 9, 0.0),
    (7, 9, 1.0),
    (1, 5, 0.5),
    (64, 3, 0.999),
    (5, 5, 1e-9),  # ceil: one zero
    (256, 128, 0.9),
    (3, 1000, 0.5),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize(
    ("rows", "cols", "sparsity"), SPARSE_CASES, ids=[f"{r}x{c}-{s}" for r, c, s in SPARSE_CASES]
)
def test_sparse_zeros_per_column_and_values(rows, cols, sparsity, dtype):
    kw = dict(seed=4, name="sparse.weight", dtype=dtype)
    got = fastinit.sparse((rows, cols), sparsity, 0.5, **kw)
    dense = fastinit.normal((rows, cols), 0.0, 0.5, **kw)
    g, d = _values(got), _values(dense)
    assert np.all(d != 0)  # so every zero of `got` is a zeroed position
    zeroed = g == 0
    assert np.all(zeroed.sum(axis=0) == math.ceil(sparsity * rows))  # torch's num_zeros
    # the other positions hold exactly the normal draws (bytes: the same rounding)
    assert got.raw[~zeroed].tobytes() == dense.raw[~zeroed].tobytes()


def test_sparse_default_std():
    x = _values(fastinit.sparse((400, 500), 0.5, seed=1, name="w"))
    nz = x[x != 0]
    assert nz.size == 200 * 500
    se = 0.01 * math.sqrt(2 / (4 * nz.size))  # kurtosis 3
    assert abs(nz.std() - 0.01) <= Z * se


def test_sparse_pattern_depends_on_seed_and_name():
    pattern = lambda **kw: _values(fastinit.sparse((50, 40), 0.5, **kw)) == 0  # noqa: E731
    base = pattern(seed=1, name="a")
    np.testing.assert_array_equal(base, pattern(seed=1, name="a"))  # reproducible
    for other in (dict(seed=1, name="b"), dict(seed=2, name="a"), dict(seed=1, name=None)):
        # two independent patterns agree everywhere with probability C(50, 25)**-40
        assert not np.array_equal(base, pattern(**other)), other


def test_sparse_zero_rows_are_uniform():
    # In each column the k zeroed rows are a uniform k-subset of the r rows. Over c columns the
    # per-row counts O_i have E = c k / r and covariance c p (1 - p) r / (r - 1) (I - J / r),
    # p = k / r, so X2 = sum (O - E)**2 / E is (1 - p) r / (r - 1) times a chi2(r - 1): rescaled
    # below. A bias toward low rows (e.g. ties broken by row) or one row fails it.
    rows, cols, k = 20, 20_000, 5
    zeros = _values(fastinit.sparse((rows, cols), k / rows, seed=7, name="s")) == 0
    counts = zeros.sum(axis=1)
    expected = cols * k / rows
    x2 = ((counts - expected) ** 2 / expected).sum()
    p_zero = k / rows
    statistic = x2 * (rows - 1) / (rows * (1 - p_zero))
    p = stats.chi2.sf(statistic, rows - 1)
    assert p > KS_P, f"chi-square p = {p:.3g}"
    # pairs of rows zeroed together: uniform too (no structure within a column)
    first = zeros[0] & zeros[1]
    p_pair = stats.binomtest(int(first.sum()), cols, k * (k - 1) / (rows * (rows - 1))).pvalue
    assert p_pair > KS_P, f"pair p = {p_pair:.3g}"


SPARSE_INDEXES = [
    (slice(2, None, 3), 5),
    (slice(None), slice(1, 7, 2)),
    (4,),
    (Ellipsis, 0),
    (slice(None, None, -1),),
]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("index", SPARSE_INDEXES, ids=repr)
def test_sparse_index_and_out(index, dtype):
    kw = dict(seed=8, name="w", dtype=dtype)
    full = fastinit.sparse((30, 20), 0.3, 0.1, **kw)
    part = fastinit.sparse((30, 20), 0.3, 0.1, index=index, **kw)
    want = np.ascontiguousarray(full.raw[index])
    assert part.shape == want.shape and part.raw.tobytes() == want.tobytes()
    tout = torch.zeros(want.shape, dtype=getattr(torch, dtype))
    fastinit.sparse((30, 20), 0.3, 0.1, seed=8, name="w", index=index, out=tout)
    assert (
        tout.view(torch.int16 if dtype == "bfloat16" else torch.float32).numpy().tobytes() == want.tobytes()
    )


@pytest.mark.parametrize(
    ("args", "error", "word"),
    [
        (((10,), 0.5), ValueError, "2 dimensions"),
        (((3, 4, 5), 0.5), ValueError, "2 dimensions"),
        (((3, 4), 1.5), ValueError, "sparsity"),
        (((3, 4), -0.1), ValueError, "sparsity"),
        (((3, 4), math.nan), ValueError, "sparsity"),
        (((3, 4), "0.1"), TypeError, "sparsity"),
        (((3, 4), 0.1, -1.0), ValueError, "std"),
        (((3, 4), 0.1, "1"), TypeError, "std"),
    ],
    ids=["1d", "3d", "sparsity>1", "sparsity<0", "sparsity-nan", "sparsity-str", "std<0", "std-str"],
)
def test_sparse_errors(args, error, word):
    with pytest.raises(error, match=re.escape(word)):
        fastinit.sparse(*args)


# ==== custom schemes ===============================================================================


def gapped(w):
    """The textbook exercise: w ~ U(-10, 10), zeroed where |w| < 5."""
    return w if abs(w) >= 5.0 else 0.0


def squared(w):
    return w * w


gapped_init = fastinit.custom(gapped, draw="uniform", low=-10.0, high=10.0)


@fastinit.custom(draw="uniform", low=-10.0, high=10.0)
def gapped_decorated(w):
    return w if abs(w) >= 5.0 else 0.0


def _gapped_numpy(u):
    return np.where(np.abs(u) >= 5.0, u, 0.0).astype(u.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(257,), (64, 33), (3, 5, 7)], ids=str)
@pytest.mark.parametrize("init", [gapped_init, gapped_decorated], ids=["call", "decorator"])
def test_custom_gapped_uniform_is_the_draws_zeroed(init, shape, dtype):
    kw = dict(seed=12, name="fc.weight", dtype=dtype)
    got = init(shape, **kw)
    u = np.asarray(fastinit.uniform(shape, -10.0, 10.0, **kw))
    assert got.shape == shape and got.dtype.name == dtype
    assert got.raw.tobytes() == _gapped_numpy(u).tobytes()
    v = _values(got)
    assert np.all((np.abs(v) >= 5) | (v == 0)) and np.any(v == 0) and np.any(v != 0)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_custom_low_precision_is_rounded_float32_result(dtype):
    got = gapped_init((40, 50), seed=1, name="w", dtype=dtype)
    f32 = np.asarray(gapped_init((40, 50), seed=1, name="w", dtype="float32"))
    want = f32.astype(ml_dtypes.bfloat16).view(np.uint16) if dtype == "bfloat16" else f32.astype(np.float16)
    assert got.raw.tobytes() == want.tobytes()


@pytest.mark.parametrize("index", [(slice(3, 20, 4), 7), (Ellipsis, slice(None, None, -2)), (5,)], ids=repr)
def test_custom_index_and_out(index):
    full = np.asarray(gapped_init((30, 20), seed=2, name="w"))
    part = gapped_init((30, 20), seed=2, name="w", index=index)
    want = np.ascontiguousarray(full[index])
    assert part.raw.tobytes() == want.tobytes()
    out = np.full(want.shape, np.nan, np.float32)
    assert gapped_init((30, 20), seed=2, name="w", index=index, out=out) is out
    assert out.tobytes() == want.tobytes()
    tout = torch.empty(want.shape, dtype=torch.bfloat16)
    gapped_init((30, 20), seed=2, name="w", index=index, out=tout)
    assert tout.view(torch.int16).numpy().tobytes() == want.astype(ml_dtypes.bfloat16).tobytes()


@pytest.mark.parametrize(
    ("draw", "params", "sampler"),
    [
        ("normal", dict(mean=0.5, std=2.0), lambda s, **k: fastinit.normal(s, 0.5, 2.0, **k)),
        ("truncated_normal", dict(std=0.02, a=-0.03, b=0.04),
         lambda s, **k: fastinit.truncated_normal(s, 0.0, 0.02, -0.03, 0.04, **k)),
        ("uniform", {}, lambda s, **k: fastinit.uniform(s, **k)),
    ],
    ids=["normal", "truncated_normal", "uniform-defaults"],
)  # fmt: skip
def test_custom_other_draws(draw, params, sampler):
    init = fastinit.custom(squared, draw=draw, **params)
    base = np.asarray(sampler((100, 10), seed=0, name="x"))
    assert init((100, 10), seed=0, name="x").raw.tobytes() == (base * base).tobytes()


def test_custom_config_records_module_and_qualname():
    for init, qualname in ((gapped_init, "gapped"), (gapped_decorated, "gapped_decorated")):
        config = init.to_config()
        assert config == {"scheme": "custom", "function": f"{gapped.__module__}:{qualname}", "draw": "uniform",
                          "draw_params": {"low": -10.0, "high": 10.0}}  # fmt: skip
        for rebuilt in (fastinit.Initializer.from_config(config),
                        fastinit.Initializer.from_config(json.dumps(config))):  # fmt: skip
            assert rebuilt == fastinit.Initializer.from_config(config)
            assert _bytes(rebuilt((33, 17), seed=5, name="w")) == _bytes(init((33, 17), seed=5, name="w"))


def test_custom_unrecordable_functions():
    def local(w):
        return w

    for fn in (local, lambda w: w):
        init = fastinit.custom(fn, draw="normal")
        with pytest.raises(ValueError, match="module level"):
            init.to_config()


def test_custom_bad_arguments():
    with pytest.raises(ValueError, match="draw"):
        fastinit.custom(gapped, draw="beta")
    with pytest.raises(ValueError, match="draw"):
        fastinit.custom(draw="Uniform")
    with pytest.raises(TypeError, match="function"):
        fastinit.custom(3)
    with pytest.raises(TypeError, match="function"):
        fastinit.custom(draw="normal")("not callable")
    with pytest.raises(TypeError, match="lo"):  # the draw's own parameter check
        fastinit.custom(gapped, draw="uniform", lo=1.0)((3,))
    with pytest.raises(ValueError, match="function"):
        fastinit.Initializer.from_config({"scheme": "custom", "function": "no_colon", "draw": "uniform",
                                          "draw_params": {}})  # fmt: skip


# ==== the registry =================================================================================

# One example per registry name: (params, shape). The completeness test below fails when a name
# has no example here, so a new scheme cannot be registered without being exercised.
REGISTRY_EXAMPLES = {
    "uniform": (dict(low=-0.5, high=0.25), (16, 8)),
    "normal": (dict(mean=0.1, std=0.02), (16, 8)),
    "truncated_normal": (dict(std=0.02, a=-0.04, b=0.04), (16, 8)),
    "variance_scaling": (
        dict(scale=2.0, mode="fan_avg", distribution="uniform", layout="jax"),
        (3, 3, 8, 16),
    ),
    "xavier_uniform": (dict(gain=math.sqrt(2)), (16, 8)),
    "glorot_uniform": (dict(gain=0.5), (16, 8)),
    "xavier_normal": (dict(gain=1.5, layout="keras"), (3, 3, 8, 16)),
    "glorot_normal": ({}, (16, 8, 3)),
    "kaiming_uniform": (dict(a=math.sqrt(5)), (16, 8, 3, 3)),
    "he_uniform": (dict(mode="fan_out", nonlinearity="relu"), (16, 8)),
    "kaiming_normal": (dict(a=0.1, mode="fan_in", nonlinearity="leaky_relu"), (16, 8)),
    "he_normal": (dict(nonlinearity="relu"), (16, 8)),
    "lecun_uniform": ({}, (16, 8)),
    "lecun_normal": (dict(layout="jax"), (8, 16)),
    "orthogonal": (dict(gain=2.0, column_axis=-1), (4, 3, 8)),
    "delta_orthogonal": (dict(gain=1.0), (3, 3, 4, 8)),
    "constant": (dict(value=0.3), (4, 5)),
    "zeros": ({}, (4, 5)),
    "ones": ({}, (4, 5)),
    "eye": ({}, (4, 5)),
    "dirac": (dict(groups=2), (4, 2, 3, 3)),
    "sparse": (dict(sparsity=0.25, std=0.1), (12, 5)),
    "custom": (dict(function=gapped, draw="uniform", draw_params={"low": -10.0, "high": 10.0}), (16, 8)),
    "values": (dict(data=fastinit.schemes.encode_values(np.arange(20.0) / 7 - 1)), (4, 5)),
}
NOT_SCHEMES = {"Initializer", "calculate_gain", "compute_fans", "get_initializer", "list_initializers"}


def test_registry_is_complete():
    names = set(fastinit.list_initializers())
    public = (set(fastinit.schemes.__all__) - NOT_SCHEMES) | {"uniform", "normal", "truncated_normal"}
    assert public - names == set(), "public schemes without a registry entry"
    assert names == set(registry.SCHEMES) | set(registry.ALIASES)
    assert set(registry.ALIASES.values()) <= set(registry.SCHEMES)
    for name in public - {"custom"}:  # custom is the factory; the registry holds its body
        canonical = registry.ALIASES.get(name, name)
        assert registry.SCHEMES[canonical] is getattr(fastinit, name), name
    assert names == set(REGISTRY_EXAMPLES), "registry names without an example in this file"


@pytest.mark.parametrize("name", sorted(REGISTRY_EXAMPLES))
def test_registry_round_trip(name):
    params, shape = REGISTRY_EXAMPLES[name]
    init = fastinit.get_initializer(name, **params)
    canonical = registry.ALIASES.get(name, name)
    assert init.scheme == canonical
    kw = dict(seed=21, name="layer.weight")
    got = init(shape, **kw)
    if name == "custom":
        direct = fastinit.custom(gapped, draw="uniform", low=-10.0, high=10.0)(shape, **kw)
    else:
        direct = getattr(fastinit, name)(shape, **params, **kw)
    assert _bytes(got) == _bytes(direct)
    config = init.to_config()
    text = json.dumps(config)  # JSON-serializable
    assert config["scheme"] == canonical
    for rebuilt in (fastinit.Initializer.from_config(config), fastinit.Initializer.from_config(text)):
        assert rebuilt == init and hash(rebuilt) == hash(init)
        assert _bytes(rebuilt(shape, **kw)) == _bytes(got)
    # dtype / index / out go through the initializer too
    part = init(shape, index=(1,), dtype="float64", **kw)
    assert part.raw.tobytes() == np.ascontiguousarray(init(shape, dtype="float64", **kw).raw[1]).tobytes()


@pytest.mark.parametrize("name", sorted(REGISTRY_EXAMPLES))
def test_single_element_index_every_scheme(name):
    # an int for every dimension: a 0-d result equal to that element of the full tensor
    params, shape = REGISTRY_EXAMPLES[name]
    init = fastinit.get_initializer(name, **params)
    index = tuple(d - 1 for d in shape)
    want = init(shape, seed=2, name="w").raw[index]
    got = init(shape, seed=2, name="w", index=index)
    assert got.shape == () and got.raw.tobytes() == want.tobytes()


@pytest.mark.parametrize("name", sorted(REGISTRY_EXAMPLES))
def test_every_scheme_takes_the_common_keywords(name):
    params, shape = REGISTRY_EXAMPLES[name]
    init = fastinit.get_initializer(name, **params)
    want = init(shape, seed=4, name="w", dtype="float64", device="cpu")
    assert want.dtype.name == "float64" and want.device == "cpu"
    out = np.full(shape, np.nan)
    assert init(shape, seed=4, name="w", out=out) is out  # dtype from out
    assert out.tobytes() == want.tobytes()
    with pytest.raises(ValueError, match="device"):
        init(shape, device="cuda")  # never a silent fallback to the CPU
    with pytest.raises(TypeError, match="dtype"):
        init(shape, dtype="float32", out=np.empty(shape))


def test_from_config_round_trips_axis_sequences():
    # JSON turns tuples into lists; the rebuilt initializer must still equal the original
    init = fastinit.get_initializer("variance_scaling", in_axis=(0, 1), out_axis=(3,), batch_axis=(2,))
    rebuilt = fastinit.Initializer.from_config(json.dumps(init.to_config()))
    assert rebuilt == init
    assert _bytes(rebuilt((2, 3, 4, 5), seed=1)) == _bytes(init((2, 3, 4, 5), seed=1))


@pytest.mark.parametrize("alias", sorted(registry.ALIASES))
def test_aliases(alias):
    assert fastinit.get_initializer(alias).scheme == registry.ALIASES[alias]
    assert getattr(fastinit, alias) is getattr(fastinit, registry.ALIASES[alias])


def test_registry_unknown_scheme():
    with pytest.raises(ValueError, match="'kaiming'"):
        fastinit.get_initializer("kaiming")
    with pytest.raises(TypeError, match="scheme"):
        fastinit.get_initializer(None)
    with pytest.raises(ValueError, match="scheme"):
        fastinit.Initializer.from_config({"gain": 1.0})
    with pytest.raises(ValueError, match="scheme"):
        fastinit.Initializer.from_config("[1, 2]")


@pytest.mark.parametrize("name", sorted(REGISTRY_EXAMPLES))
def test_registry_rejects_unknown_and_per_call_parameters(name):
    params, _ = REGISTRY_EXAMPLES[name]
    with pytest.raises(TypeError, match="bogus_param"):
        fastinit.get_initializer(name, **params, bogus_param=1)
    for key in registry.CALL_KEYWORDS:
        with pytest.raises(TypeError, match=key):
            fastinit.get_initializer(name, **params, **{key: 0})


def test_registry_custom_needs_its_parameters():
    # a custom initializer missing draw / draw_params must fail when built, naming what is
    # missing, or work with the defaults of fastinit.custom (draw="uniform", no parameters)
    try:
        init = fastinit.get_initializer("custom", function=gapped)
    except (TypeError, ValueError) as error:
        assert "draw" in str(error)
    else:
        want = fastinit.custom(gapped)((5,), seed=1)
        assert _bytes(init((5,), seed=1)) == _bytes(want)
    with pytest.raises(ValueError, match="draw"):
        fastinit.get_initializer("custom", function=gapped, draw="beta", draw_params={})


# ==== input validation ===========================================================================

S = (8, 4)
VALIDATION = [
    # id, call, error, a word the message must contain
    ("xavier-gain-str", lambda: fastinit.xavier_uniform(S, "2"), TypeError, "gain"),
    ("xavier-gain-none", lambda: fastinit.xavier_normal(S, None), TypeError, "gain"),
    ("xavier-gain-nan", lambda: fastinit.xavier_normal(S, math.nan), ValueError, "gain"),
    ("xavier-gain-negative-uniform", lambda: fastinit.xavier_uniform(S, -1.0), ValueError, "gain"),
    ("xavier-gain-negative-normal", lambda: fastinit.xavier_normal(S, -1.0), ValueError, "gain"),
    ("xavier-1d", lambda: fastinit.xavier_uniform((5,)), ValueError, "fewer than 2 dimensions"),
    ("kaiming-mode", lambda: fastinit.kaiming_uniform(S, mode="fan_avg"), ValueError, "fan_avg"),
    ("kaiming-mode-type", lambda: fastinit.kaiming_normal(S, mode=3), ValueError, "Mode 3"),
    ("kaiming-nonlinearity", lambda: fastinit.kaiming_uniform(S, nonlinearity="gelu"), ValueError, "gelu"),
    ("kaiming-a-str", lambda: fastinit.kaiming_uniform(S, a="0.1"), ValueError, "negative_slope"),
    ("kaiming-a-nan", lambda: fastinit.kaiming_uniform(S, a=math.nan), ValueError, "a"),
    ("kaiming-layout", lambda: fastinit.kaiming_uniform(S, layout="tf"), ValueError, "layout"),
    ("vs-mode", lambda: fastinit.variance_scaling(S, 1.0, "fan"), ValueError, "mode"),
    ("vs-distribution", lambda: fastinit.variance_scaling(S, 1.0, "fan_in", "gamma"), ValueError, "distribution"),
    ("vs-scale-negative", lambda: fastinit.variance_scaling(S, -1.0), ValueError, "scale"),
    ("vs-scale-str", lambda: fastinit.variance_scaling(S, "1"), TypeError, "scale"),
    ("vs-scale-inf", lambda: fastinit.variance_scaling(S, math.inf), ValueError, "scale"),
    ("vs-in_axis", lambda: fastinit.variance_scaling(S, in_axis=5), ValueError, "in_axis"),
    ("vs-batch_axis-type", lambda: fastinit.variance_scaling(S, batch_axis="0"), TypeError, "batch_axis"),
    ("vs-axes-torch-layout", lambda: fastinit.variance_scaling(S, layout="torch", in_axis=0), ValueError,
     "in_axis"),
    ("vs-1d", lambda: fastinit.variance_scaling((5,)), ValueError, "in_axis"),
    ("shape-float", lambda: fastinit.variance_scaling((8.0, 4)), TypeError, "shape"),
    ("shape-bool", lambda: fastinit.kaiming_uniform((True, 4)), TypeError, "shape"),
    ("shape-negative", lambda: fastinit.xavier_uniform((8, -4)), ValueError, "shape"),
    ("shape-str", lambda: fastinit.lecun_uniform("84"), TypeError, "shape"),
    ("shape-none", lambda: fastinit.lecun_normal(None), TypeError, "shape"),
    ("constant-value-str", lambda: fastinit.constant(S, "1"), TypeError, "value"),
    ("constant-value-nan", lambda: fastinit.constant(S, math.nan), ValueError, "value"),
    ("eye-shape-float", lambda: fastinit.eye((2.0, 2)), TypeError, "shape"),
    ("dtype", lambda: fastinit.xavier_uniform(S, dtype="int8"), (TypeError, ValueError), "dtype"),
    ("device", lambda: fastinit.kaiming_normal(S, device="tpu"), ValueError, "device"),
    ("out-shape", lambda: fastinit.xavier_uniform(S, out=np.empty((4, 8), np.float32)), ValueError, "shape"),
    ("out-dtype", lambda: fastinit.eye(S, dtype="float64", out=np.empty(S, np.float32)), TypeError, "dtype"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "word"), [v[1:] for v in VALIDATION], ids=[v[0] for v in VALIDATION]
)
def test_errors_name_the_argument(call, error, word):
    with pytest.raises(error, match=rf"\b{re.escape(word)}\b" if word.isidentifier() else re.escape(word)):
        call()


# Every scheme on a zero-size shape: an empty array, as torch (a no-op) and JAX give.
EMPTY_CASES = {
    "variance_scaling": lambda s: fastinit.variance_scaling(s),  # truncated_normal by default
    "variance_scaling-uniform": lambda s: fastinit.variance_scaling(s, distribution="uniform"),
    "xavier_uniform": lambda s: fastinit.xavier_uniform(s),
    "xavier_normal": lambda s: fastinit.xavier_normal(s),
    "kaiming_uniform": lambda s: fastinit.kaiming_uniform(s),
    "kaiming_normal": lambda s: fastinit.kaiming_normal(s),
    "lecun_uniform": lambda s: fastinit.lecun_uniform(s),
    "lecun_normal": lambda s: fastinit.lecun_normal(s),
    "orthogonal": lambda s: fastinit.orthogonal(s),
    "sparse": lambda s: fastinit.sparse(s, 0.5),
    "eye": lambda s: fastinit.eye(s),
    "constant": lambda s: fastinit.constant(s, 2.0),
    "custom": lambda s: gapped_init(s),
}


@pytest.mark.parametrize("shape", [(0, 4), (4, 0)], ids=str)
@pytest.mark.parametrize("scheme", list(EMPTY_CASES))
def test_zero_size_shapes_give_empty_arrays(scheme, shape):
    got = EMPTY_CASES[scheme](shape)
    assert got.shape == shape and got.raw.size == 0
