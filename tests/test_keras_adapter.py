"""Keras 3 parity: compute_fans with Keras's input_axes / output_axes, constant with an array
value broadcast to the shape, and ``fastinit.keras`` (Keras initializer classes over fastinit's
streams) on the JAX backend, with a torch-backend smoke test in a subprocess.

Statistical checks run at fixed seeds; each threshold says the p-value it corresponds to.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import fastinit

# Keras reads its backend once, at import; the tests run on JAX (installed with the test extra)
os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

import fastinit.keras as fk  # noqa: E402

TRUNC_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


def _np(x):
    # (a keras.Variable's own __array__ warns under NumPy 2: convert its value)
    return np.asarray(keras.ops.convert_to_numpy(getattr(x, "value", x)))


# ==== compute_fans(layout="keras", input_axes=, output_axes=) ==================================

KERAS_AXES = [
    # shape, input_axes, output_axes, (fan_in, fan_out)
    ((512, 8, 64), [0], [1, 2], (512, 512)),  # an attention query projection
    ((512, 8, 64), [0, 1], [2], (4096, 64)),  # its output projection
    ((3, 4, 5), [-3], [-1], (3, 5)),  # negative axes count from the end
    ((3, 4, 5), (0, 2), (1,), (15, 4)),  # any sequence
    ((3, 4, 5), 1, 2, (4, 5)),  # a lone int is one axis
    ((3, 4, 5), [], [], (1, 1)),  # no axes: an empty product
    ((6, 7), [0], [0], (6, 6)),  # the same axis on both sides
]


@pytest.mark.parametrize(("shape", "input_axes", "output_axes", "expected"), KERAS_AXES, ids=str)
def test_keras_fans_with_axes_are_the_products_of_the_axes(shape, input_axes, output_axes, expected):
    got = fastinit.compute_fans(shape, layout="keras", input_axes=input_axes, output_axes=output_axes)
    assert got == expected and all(type(f) is int for f in got)


@pytest.mark.parametrize("shape", [(), (7,), (3, 4), (3, 3, 32, 64)], ids=str)
def test_keras_fans_without_axes_keep_the_shape_rule(shape):
    rule = fastinit.compute_fans(shape, layout="keras")
    assert fastinit.compute_fans(shape, layout="keras", input_axes=None, output_axes=None) == rule


KERAS_AXES_ERRORS = [
    (dict(shape=(3, 4), layout="keras", input_axes=[0]), ValueError, "output_axes"),
    (dict(shape=(3, 4), layout="keras", output_axes=[1]), ValueError, "input_axes"),
    (dict(shape=(3, 4), layout="keras", input_axes=[2], output_axes=[1]), ValueError, "input_axes"),
    (dict(shape=(3, 4), layout="keras", input_axes=[0], output_axes=[-3]), ValueError, "output_axes"),
    (dict(shape=(3, 4), layout="keras", input_axes=[0.0], output_axes=[1]), TypeError, "input_axes"),
    (dict(shape=(3, 4), layout="keras", input_axes=[0], output_axes=[True]), TypeError, "output_axes"),
    (dict(shape=(3, 4), layout="keras", input_axes="0", output_axes=[1]), TypeError, "input_axes"),
    (dict(shape=(3, 4), layout="torch", input_axes=[0], output_axes=[1]), ValueError, "input_axes"),
    (dict(shape=(3, 4), layout="jax", input_axes=[0], output_axes=[1]), ValueError, "input_axes"),
    (dict(shape=(3, 4), layout="keras", in_axis=0, input_axes=[0], output_axes=[1]), ValueError, "in_axis"),
]


@pytest.mark.parametrize(("kwargs", "error", "word"), KERAS_AXES_ERRORS, ids=str)
def test_keras_axes_errors_name_the_argument(kwargs, error, word):
    shape = kwargs.pop("shape")
    with pytest.raises(error, match=word):
        fastinit.compute_fans(shape, **kwargs)


# the sample std of n values of a distribution with std s and kurtosis k has std about
# s * sqrt((k - 1) / (4 n)); 4.9 of those is two-sided p = 1e-6
def _std_tolerance(n, kurtosis):
    return 4.9 * math.sqrt((kurtosis - 1) / (4 * n))


KURTOSIS = {"uniform": 1.8, "normal": 3.0, "truncated_normal": 2.3655}  # N(0, 1) on [-2, 2]: 2.3655


@pytest.mark.parametrize("distribution", ["uniform", "normal", "truncated_normal"])
def test_variance_scaling_takes_keras_axes(distribution):
    shape = (32, 4, 16)  # fan_in 32 with input_axes=[0]; 128 by the shape rule
    w = np.asarray(
        fastinit.variance_scaling(shape, 2.0, "fan_in", distribution, layout="keras", input_axes=[0],
                                  output_axes=[1, 2], seed=3, name="w"),
        dtype=np.float64,
    )  # fmt: skip
    std = math.sqrt(2.0 / 32)
    assert abs(w.std() / std - 1) < _std_tolerance(w.size, KURTOSIS[distribution])


# ==== constant(shape, array) broadcast =========================================================

CONSTANT_ARRAYS = [
    # shape, value (broadcast to shape as NumPy broadcasts)
    ((2, 3), [1.0, -2.0, 0.5]),
    ((2, 3), [[1.5], [-3.0]]),
    ((2, 3), np.arange(6.0).reshape(2, 3)),
    ((2, 3), np.array(0.25)),
    ((4, 2, 3), np.array([[0.1, 0.2, 0.3]], dtype=np.float32)),
    ((3,), (7, 8, 9)),
    ((0, 3), [1.0, 2.0, 3.0]),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize(("shape", "value"), CONSTANT_ARRAYS, ids=str)
def test_constant_broadcasts_an_array_value(shape, value, dtype):
    import ml_dtypes

    got = fastinit.constant(shape, value, dtype=dtype)
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    expected = np.broadcast_to(np.asarray(value, np.float64), shape).astype(np_dtype)  # one rounding
    assert got.shape == shape
    np.testing.assert_array_equal(got.numpy(), expected)


def test_constant_array_honours_index_and_keeps_negative_zero():
    value = np.array([[-0.0, 1.0, 2.0, 3.0]])
    full = fastinit.constant((5, 4), value).numpy()
    part = fastinit.constant((5, 4), value, index=(slice(1, 4), slice(None, None, 2))).numpy()
    np.testing.assert_array_equal(part, full[1:4, ::2])
    assert np.all(np.signbit(full[:, 0]))


def test_constant_array_rounds_once_to_bfloat16():
    import ml_dtypes

    # halfway between two bfloat16 values after float32 rounding, but not before: rounding through
    # float32 gives the even neighbour, rounding once gives the nearer one
    x = 1.0 + 2.0**-8 + 2.0**-30
    got = fastinit.constant((2,), [x, -x], dtype="bfloat16").numpy().astype(np.float64)
    assert np.array_equal(got, [1.0 + 2.0**-7, -(1.0 + 2.0**-7)])
    assert float(np.float32(x).astype(ml_dtypes.bfloat16)) == 1.0  # (what double rounding gives)


CONSTANT_ERRORS = [
    (dict(shape=(2, 3), value=[1.0, 2.0]), ValueError, "value"),  # does not broadcast
    (dict(shape=(3,), value=np.ones((2, 3))), ValueError, "value"),  # more dimensions than the shape
    (dict(shape=(2,), value=[1.0, float("nan")]), ValueError, "value"),
    (dict(shape=(2,), value=[1.0, 1e300], dtype="float32"), ValueError, "value"),
    (dict(shape=(2,), value=["a", "b"]), TypeError, "value"),
    (dict(shape=(2,), value=[1 + 2j, 0]), TypeError, "value"),
    (dict(shape=(2,), value=[[1.0], [2.0, 3.0]]), (TypeError, ValueError), "value"),
]


@pytest.mark.parametrize(("kwargs", "error", "word"), CONSTANT_ERRORS, ids=str)
def test_constant_array_errors_name_value(kwargs, error, word):
    shape = kwargs.pop("shape")
    value = kwargs.pop("value")
    with pytest.raises(error, match=word):
        fastinit.constant(shape, value, **kwargs)


def test_constant_array_keeps_infinities_and_scalar_path():
    got = fastinit.constant((2, 2), [np.inf, -np.inf]).numpy()
    assert np.array_equal(got, [[np.inf, -np.inf], [np.inf, -np.inf]])
    # a 0-d array or a NumPy scalar is the scalar constant
    assert np.array_equal(
        fastinit.constant((3,), np.float64(0.5)).numpy(), fastinit.constant((3,), 0.5).numpy()
    )


def test_constant_array_value_round_trips_through_the_registry():
    init = fastinit.get_initializer("constant", value=[1.0, 2.0, 3.0])
    again = fastinit.Initializer.from_config(json.loads(json.dumps(init.to_config())))
    assert np.array_equal(again((2, 3)).numpy(), [[1.0, 2.0, 3.0]] * 2)


# ==== fastinit.keras: the classes mirror keras.initializers ====================================

RANDOM_CLASSES = [
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "VarianceScaling",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "Orthogonal",
]
CONSTANT_CLASSES = ["Constant", "Zeros", "Ones", "Identity"]


@pytest.mark.parametrize("cls", RANDOM_CLASSES + CONSTANT_CLASSES)
def test_constructor_is_keras_with_a_keyword_only_name(cls):
    import inspect

    ours = inspect.signature(getattr(fk, cls)).parameters
    theirs = inspect.signature(getattr(keras.initializers, cls)).parameters
    assert issubclass(getattr(fk, cls), keras.initializers.Initializer)
    # Keras's parameters, in Keras's order, with Keras's defaults (a drop-in) ...
    assert [(p.name, p.default, p.kind) for p in theirs.values()] == [
        (p.name, p.default, p.kind) for p in ours.values() if p.name != "name"
    ]
    # ... and the random ones take the stream name, keyword-only
    if cls in RANDOM_CLASSES:
        assert ours["name"].kind is inspect.Parameter.KEYWORD_ONLY and ours["name"].default is None
    else:
        assert "name" not in ours


def test_every_keras_initializer_name_is_in_fastinit_keras():
    public = {n for n in dir(keras.initializers) if not n.startswith("_")}
    assert public <= set(dir(fk)), sorted(public - set(dir(fk)))


SHAPE = (48, 32)
# class, constructor kwargs, the fastinit call that must give the same bits (seed=11, name="w")
SAME_AS_FASTINIT = [
    ("GlorotUniform", {}, lambda s, **k: _vs(s, 1.0, "fan_avg", "uniform", **k)),
    ("GlorotNormal", {}, lambda s, **k: _vs(s, 1.0, "fan_avg", "truncated_normal", **k)),
    ("HeUniform", {}, lambda s, **k: _vs(s, 2.0, "fan_in", "uniform", **k)),
    ("HeNormal", {}, lambda s, **k: _vs(s, 2.0, "fan_in", "truncated_normal", **k)),
    ("LecunUniform", {}, lambda s, **k: _vs(s, 1.0, "fan_in", "uniform", **k)),
    ("LecunNormal", {}, lambda s, **k: _vs(s, 1.0, "fan_in", "truncated_normal", **k)),
    # Keras's "normal" is the truncated normal; fastinit's (JAX's) "normal" is not
    ("VarianceScaling", dict(scale=0.5, mode="fan_out", distribution="normal"),
     lambda s, **k: _vs(s, 0.5, "fan_out", "truncated_normal", **k)),
    ("VarianceScaling", dict(scale=3.0, mode="fan_avg", distribution="untruncated_normal"),
     lambda s, **k: _vs(s, 3.0, "fan_avg", "normal", **k)),
    ("VarianceScaling", dict(distribution="Uniform", input_axes=[1], output_axes=[0]),
     lambda s, **k: _vs(s, 1.0, "fan_in", "uniform", input_axes=[1], output_axes=[0], **k)),
    ("RandomNormal", dict(mean=0.5, stddev=2.0), lambda s, **k: fastinit.normal(s, 0.5, 2.0, **k)),
    ("RandomUniform", {}, lambda s, **k: fastinit.uniform(s, -0.05, 0.05, **k)),
    ("TruncatedNormal", dict(mean=1.0, stddev=0.1),
     lambda s, **k: fastinit.truncated_normal(s, 1.0, 0.1, lower=-2.0, upper=2.0, **k)),
    ("Orthogonal", dict(gain=2.0), lambda s, **k: fastinit.orthogonal(s, 2.0, column_axis=-1, **k)),
]  # fmt: skip


def _vs(shape, *args, **kwargs):
    return fastinit.variance_scaling(shape, *args, layout="keras", **kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs", "reference"), SAME_AS_FASTINIT, ids=lambda x: str(x).split(" at 0x")[0][:40]
)
@pytest.mark.parametrize("dtype", [None, "float32", "float16", "bfloat16"])
def test_an_int_seed_is_fastinits_pure_stream(cls, kwargs, reference, dtype):
    init = getattr(fk, cls)(**kwargs, seed=11, name="w")
    got = init(SHAPE, dtype=dtype)
    expected = reference(SHAPE, seed=11, name="w", dtype=dtype or "float32")
    assert isinstance(got, type(keras.ops.zeros(1)))  # a backend tensor (a jax.Array here)
    assert keras.backend.standardize_dtype(got.dtype) == (dtype or keras.backend.floatx())
    np.testing.assert_array_equal(_np(keras.ops.cast(got, "float32")), np.asarray(expected, np.float32))
    # the same values on every call, and from a second instance
    np.testing.assert_array_equal(_np(init(SHAPE, dtype=dtype)), _np(got))
    np.testing.assert_array_equal(
        _np(getattr(fk, cls)(**kwargs, seed=11, name="w")(SHAPE, dtype=dtype)), _np(got)
    )


def test_names_give_independent_streams():
    a = _np(fk.HeNormal(seed=0, name="dense_1.kernel")((64, 64)))
    b = _np(fk.HeNormal(seed=0, name="dense_2.kernel")((64, 64)))
    c = _np(fk.HeNormal(seed=0)((64, 64)))
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    # independent: the sample correlation of 4096 pairs is within 4.9 / sqrt(4096) (p = 1e-6)
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 4.9 / 64


# ---- Keras semantics --------------------------------------------------------------------------

# n = 10**6 values; KS statistic D * sqrt(n) > 1.95 has p = 1e-3
KS_N = 10**6
KS_LIMIT = 1.95 / math.sqrt(KS_N)


def _ks(values, dist):
    return stats.kstest(np.asarray(values, np.float64).ravel(), dist.cdf).statistic


SHAPE_KS = (1000, 1000)
KERAS_DISTRIBUTIONS = [
    # class, kwargs, the distribution Keras documents for SHAPE_KS (fan_in = fan_out = 1000)
    ("GlorotNormal", {}, stats.truncnorm(-2, 2, scale=math.sqrt(1 / 1000) / TRUNC_STD)),
    ("HeNormal", {}, stats.truncnorm(-2, 2, scale=math.sqrt(2 / 1000) / TRUNC_STD)),
    ("LecunNormal", {}, stats.truncnorm(-2, 2, scale=math.sqrt(1 / 1000) / TRUNC_STD)),
    (
        "VarianceScaling",
        dict(scale=4.0, distribution="normal"),
        stats.truncnorm(-2, 2, scale=math.sqrt(4 / 1000) / TRUNC_STD),
    ),
    (
        "VarianceScaling",
        dict(scale=4.0, distribution="untruncated_normal"),
        stats.norm(scale=math.sqrt(4 / 1000)),
    ),
    ("HeUniform", {}, stats.uniform(-math.sqrt(6 / 1000), 2 * math.sqrt(6 / 1000))),
    ("GlorotUniform", {}, stats.uniform(-math.sqrt(3 / 1000), 2 * math.sqrt(3 / 1000))),
    ("TruncatedNormal", dict(stddev=0.5), stats.truncnorm(-2, 2, scale=0.5)),  # no correction in Keras's
    ("RandomNormal", dict(mean=1.0, stddev=0.5), stats.norm(1.0, 0.5)),
    ("RandomUniform", dict(minval=-3.0, maxval=1.0), stats.uniform(-3.0, 4.0)),
]


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "kwargs", "dist"), KERAS_DISTRIBUTIONS, ids=lambda x: str(x)[:40])
def test_keras_distributions_ks(cls, kwargs, dist):
    values = _np(getattr(fk, cls)(**kwargs, seed=5, name="ks")(SHAPE_KS))
    assert _ks(values, dist) < KS_LIMIT  # p = 1e-3


def test_variance_scaling_normal_is_truncated_and_named_so_in_the_config():
    init = fk.VarianceScaling(scale=2.0, distribution="normal", seed=1)
    assert init.distribution == "truncated_normal"
    assert init.get_config()["distribution"] == "truncated_normal"
    w = _np(init((256, 128))).astype(np.float64)
    bound = 2 * math.sqrt(2.0 / 256) / TRUNC_STD
    assert np.abs(w).max() <= bound
    # untruncated: values beyond 2 std appear (P(|z| > 2) = 4.6%: none in 32768 has p ~ 1e-600)
    u = _np(fk.VarianceScaling(scale=2.0, distribution="untruncated_normal", seed=1)((256, 128)))
    assert np.abs(u).max() > 2 * math.sqrt(2.0 / 256)


def test_variance_scaling_uses_keras_axes_only_when_both_are_given():
    shape = (32, 4, 16)
    both = fk.VarianceScaling(2.0, "fan_in", "uniform", seed=1, input_axes=[0], output_axes=[1, 2])
    bound = math.sqrt(3 * 2.0 / 32)
    w = _np(both(shape))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound  # 2048 values, p(miss) ~ 1e-9
    # one alone is ignored, as Keras ignores it: the shape rule (fan_in 4 * 32, fan_out 16 * 32)
    alone = fk.VarianceScaling(2.0, "fan_in", "uniform", seed=1, input_axes=[0])
    np.testing.assert_array_equal(
        _np(alone(shape)),
        np.asarray(fastinit.variance_scaling(shape, 2.0, "fan_in", "uniform", layout="keras", seed=1)),
    )
    assert fk.compute_fans(shape, input_axes=[0]) == (128, 512)
    assert fk.compute_fans(shape, input_axes=[0], output_axes=[1, 2]) == (32, 64)


CONSTRUCTOR_ERRORS = [
    ("VarianceScaling", dict(scale=0.0), ValueError, "scale"),
    ("VarianceScaling", dict(scale=-1.0), ValueError, "scale"),
    ("VarianceScaling", dict(mode="fan_geo_avg"), ValueError, "mode"),
    ("VarianceScaling", dict(distribution="cauchy"), ValueError, "distribution"),
    ("RandomNormal", dict(seed="1"), (TypeError, ValueError), "seed"),
    ("RandomNormal", dict(seed=-1), ValueError, "seed"),
    ("RandomNormal", dict(seed=1.5), (TypeError, ValueError), "seed"),
    ("HeNormal", dict(name=3), TypeError, "name"),
    ("HeNormal", dict(seed={"class_name": "Dense", "config": {}}), ValueError, "seed"),
]


@pytest.mark.parametrize(("cls", "kwargs", "error", "word"), CONSTRUCTOR_ERRORS, ids=str)
def test_constructor_errors_name_the_argument(cls, kwargs, error, word):
    with pytest.raises(error, match=word):
        getattr(fk, cls)(**kwargs)


CALL_ERRORS = [
    (lambda: fk.HeNormal(seed=1)((3, 4), dtype="int32"), ValueError, "dtype"),
    (lambda: fk.Orthogonal(seed=1)((5,)), ValueError, "shape"),
    (lambda: fk.Identity()((2, 2, 2)), ValueError, "shape"),
    (lambda: fk.RandomNormal(stddev=-1.0, seed=1)((3,)), ValueError, "stddev"),
    (lambda: fk.RandomNormal(mean="0", seed=1)((3,)), TypeError, "mean"),
    (lambda: fk.RandomUniform(minval=1.0, maxval=0.0, seed=1)((3,)), ValueError, "minval"),
    (lambda: fk.Constant([1.0, 2.0])((3, 3)), ValueError, "value"),
]


@pytest.mark.parametrize(("call", "error", "word"), CALL_ERRORS, ids=range(len(CALL_ERRORS)))
def test_call_errors_name_the_argument(call, error, word):
    with pytest.raises(error, match=word):
        call()


# ---- seeds: int, None, SeedGenerator -----------------------------------------------------------


def test_unseeded_draws_its_seed_at_construction_from_pythons_random_as_keras():
    def draws():
        keras.utils.set_random_seed(1234)
        a, b = fk.HeNormal(), fk.HeNormal()
        return _np(a((16, 16))), _np(a((16, 16))), _np(b((16, 16)))

    first, again, other = draws()
    np.testing.assert_array_equal(first, again)  # one instance repeats itself (Keras's documented rule)
    assert not np.array_equal(first, other)  # a new instance draws anew
    for x, y in zip(draws(), (first, again, other), strict=True):  # reproducible from the global seed
        np.testing.assert_array_equal(x, y)
    # the seed is what Keras would have drawn: one randint(1, 10**9) from Python's random
    import random

    keras.utils.set_random_seed(99)
    drawn = fk.GlorotUniform().seed
    random.seed(99)
    assert drawn == random.randint(1, 10**9)
    # clone(): a fresh draw for an unseeded instance, the same stream for a seeded one
    init = fk.GlorotUniform()
    assert not np.array_equal(_np(init((8, 8))), _np(init.clone()((8, 8))))
    seeded = fk.GlorotUniform(seed=4, name="k")
    np.testing.assert_array_equal(_np(seeded((8, 8))), _np(seeded.clone()((8, 8))))


def test_a_seed_generator_gives_a_fresh_draw_per_call_reproducibly():
    def run():
        init = fk.RandomNormal(seed=keras.random.SeedGenerator(1337), name="w")
        return [_np(init((32, 8))) for _ in range(3)]

    first = run()
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    for x, y in zip(run(), first, strict=True):
        np.testing.assert_array_equal(x, y)
    # each draw is fastinit's stream at the generator's next state (two uint32 words)
    gen = keras.random.SeedGenerator(1337)
    words = [int(w) & 0xFFFFFFFF for w in _np(gen.next())]
    np.testing.assert_array_equal(
        first[0], fastinit.normal((32, 8), 0.0, 0.05, seed=(words[0] << 32) | words[1], name="w").numpy()
    )


# ---- configs and serialization -----------------------------------------------------------------

CONFIG_CASES = [
    fk.GlorotUniform(seed=3, name="dense.kernel"),
    fk.HeNormal(seed=3, input_axes=[1], output_axes=[0]),
    fk.VarianceScaling(0.5, "fan_avg", "uniform", seed=7),
    fk.RandomNormal(0.1, 0.2, seed=9, name="emb"),
    fk.RandomUniform(-1.0, 1.0, seed=2),
    fk.TruncatedNormal(0.0, 0.02, seed=2, name="w"),
    fk.Orthogonal(gain=1.5, seed=8),
    fk.Constant(0.25),
    fk.Constant(np.arange(3.0)),
    fk.Zeros(),
    fk.Ones(),
    fk.Identity(gain=3.0),
]


@pytest.mark.parametrize("init", CONFIG_CASES, ids=lambda i: type(i).__name__)
def test_config_round_trips_through_json(init):
    config = json.loads(json.dumps(init.get_config()))
    again = type(init).from_config(config)
    assert again.get_config() == init.get_config() or json.dumps(again.get_config()) == json.dumps(
        init.get_config()
    )
    shape = (3, 3) if not isinstance(init, fk.Orthogonal) else (6, 3)
    np.testing.assert_array_equal(_np(again(shape)), _np(init(shape)))
    # Keras's own serializer names it as fastinit's, and its deserializer gives it back
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(init)))
    assert serialized["registered_name"] == f"fastinit>{type(init).__name__}"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(init)
    np.testing.assert_array_equal(_np(revived(shape)), _np(init(shape)))


def test_seed_generator_config_round_trips():
    init = fk.VarianceScaling(seed=keras.random.SeedGenerator(5))
    config = json.loads(json.dumps(init.get_config()))
    again = fk.VarianceScaling.from_config(config)
    assert isinstance(again.seed, keras.random.SeedGenerator)
    np.testing.assert_array_equal(
        _np(again((4, 4))), _np(fk.VarianceScaling(seed=keras.random.SeedGenerator(5))((4, 4)))
    )


# Keras 3.15's model.save converts its own Variables with np.array, which NumPy 2 warns about
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
def test_a_saved_model_names_fastinit_classes_and_loads_them(tmp_path):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4, kernel_initializer=fk.HeUniform(seed=1, name="k"))]
    )
    expected = fastinit.variance_scaling((8, 4), 2.0, "fan_in", "uniform", layout="keras", seed=1, name="k")
    np.testing.assert_array_equal(_np(model.layers[0].kernel), expected.numpy())
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[0].kernel_initializer) is fk.HeUniform
    assert loaded.layers[0].kernel_initializer.get_config()["name"] == "k"
    rebuilt = keras.Sequential.from_config(model.get_config())
    np.testing.assert_array_equal(_np(rebuilt.layers[0].kernel), expected.numpy())


UNSAFE_CONFIGS = [
    {"class_name": "os.system", "config": {}},
    {"module": "os", "class_name": "system", "config": {"command": "true"}, "registered_name": None},
    {"class_name": "fastinit>Evil", "config": {}},
    {"class_name": "Dense", "config": {"units": 3}},
    {"class_name": "HeNormal", "config": {"seed": {"module": "os", "class_name": "system", "config": {}}}},
    {"class_name": "Constant", "config": {"value": {"class_name": "__lambda__", "config": {"code": "x"}}}},
    {"class_name": "HeNormal", "config": {"seed": 1, "gain": 2.0}},
]


@pytest.mark.parametrize("config", UNSAFE_CONFIGS, ids=range(len(UNSAFE_CONFIGS)))
def test_deserialize_builds_only_fastinit_keras_classes(config):
    with pytest.raises((TypeError, ValueError)):
        fk.deserialize(config)
    with pytest.raises((TypeError, ValueError)):
        fk.get(config)


GET_CASES = [
    ("glorot_normal", "GlorotNormal"),
    ("GlorotNormal", "GlorotNormal"),
    ("OrthogonalInitializer", "Orthogonal"),
    ("IdentityInitializer", "Identity"),
    ("normal", "RandomNormal"),
    ("uniform", "RandomUniform"),
    ("zero", "Zeros"),
    ("one", "Ones"),
    ("truncated_normal", "TruncatedNormal"),
    ({"class_name": "HeNormal", "config": {"seed": 3}}, "HeNormal"),
    ({"module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": 3}}, "HeNormal"),
    ({"class_name": "fastinit>LecunUniform", "config": {"seed": 3}}, "LecunUniform"),
]


@pytest.mark.parametrize(("identifier", "cls"), GET_CASES, ids=str)
def test_get_resolves_names_and_configs_to_fastinit_classes(identifier, cls):
    assert type(fk.get(identifier)) is getattr(fk, cls)


def test_get_passes_through_none_callables_and_tensors():
    assert fk.get(None) is None
    init = fk.HeNormal(seed=1)
    assert fk.get(init) is init
    assert type(fk.get(fk.Ones)) is fk.Ones
    with pytest.raises(ValueError, match="typo"):
        fk.get("typo")
    tensor = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(_np(fk.get(tensor)((2, 3))), tensor)
    with pytest.raises(ValueError, match="shape"):
        fk.get(tensor)((3, 2))
    # keras.initializers.get keeps a fastinit instance as it is
    assert keras.initializers.get(init) is init


# ---- deterministic classes ---------------------------------------------------------------------

DETERMINISTIC = [
    (fk.Zeros(), (3, 4), np.zeros((3, 4))),
    (fk.Ones(), (3, 4), np.ones((3, 4))),
    (fk.Constant(6.0), (2, 3), np.full((2, 3), 6.0)),
    (fk.Constant([1.0, 2.0, 3.0]), (2, 3), np.array([[1.0, 2.0, 3.0]] * 2)),
    (fk.Constant(np.array([[0.1], [0.2]])), (2, 3), np.array([[0.1] * 3, [0.2] * 3])),
    (fk.Identity(gain=2.0), (2, 3), 2 * np.eye(2, 3)),
]


@pytest.mark.parametrize(("init", "shape", "expected"), DETERMINISTIC, ids=lambda x: type(x).__name__)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int32"])  # (float64 needs x64 on JAX)
def test_deterministic_classes_as_keras(init, shape, expected, dtype):
    got = init(shape, dtype=dtype)
    reference = getattr(keras.initializers, type(init).__name__).from_config(init.get_config())(
        shape, dtype=dtype
    )
    assert keras.backend.standardize_dtype(got.dtype) == keras.backend.standardize_dtype(reference.dtype)
    np.testing.assert_array_equal(
        _np(keras.ops.cast(got, "float32")), _np(keras.ops.cast(reference, "float32"))
    )
    if dtype == "float32":
        np.testing.assert_array_equal(_np(got), expected.astype(np.float32))


def test_orthogonal_flattens_as_keras():
    q = _np(fk.Orthogonal(gain=2.0, seed=3)((4, 3, 5))).reshape(12, 5).astype(np.float64)
    np.testing.assert_allclose(q.T @ q, 4.0 * np.eye(5), atol=1e-5)
    w = _np(fk.Orthogonal(seed=3)((3, 8))).astype(np.float64)  # wide: orthonormal rows
    np.testing.assert_allclose(w @ w.T, np.eye(3), atol=1e-6)


def test_a_dense_layer_built_with_fastinit_initializers():
    layer = keras.layers.Dense(
        16, kernel_initializer=fk.GlorotNormal(seed=2, name="d.kernel"), bias_initializer=fk.Constant(0.5)
    )
    layer.build((None, 32))
    expected = fastinit.variance_scaling(
        (32, 16), 1.0, "fan_avg", "truncated_normal", layout="keras", seed=2, name="d.kernel"
    )
    np.testing.assert_array_equal(_np(layer.kernel), expected.numpy())
    np.testing.assert_array_equal(_np(layer.bias), np.full(16, 0.5, np.float32))


def test_module_docstring_example_runs():
    import doctest

    results = doctest.testmod(fk, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert results.attempted > 0 and results.failed == 0


@pytest.mark.slow
def test_torch_backend_smoke():
    code = (
        "import numpy as np, keras, torch, fastinit, fastinit.keras as fk\n"
        "layer = keras.layers.Dense(4, kernel_initializer=fk.HeUniform(seed=1, name='k'))\n"
        "layer.build((None, 8))\n"
        "v = layer.kernel.value\n"
        "assert isinstance(v, torch.Tensor), type(v)\n"
        "ref = fastinit.variance_scaling((8, 4), 2.0, 'fan_in', 'uniform', layout='keras', seed=1, name='k')\n"
        "assert np.array_equal(v.detach().cpu().numpy(), ref.numpy())\n"
        "b = fk.RandomNormal(seed=3)((5,), dtype='bfloat16')\n"
        "assert isinstance(b, torch.Tensor) and b.dtype == torch.bfloat16\n"
        "print('ok')\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
