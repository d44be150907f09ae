"""The JAX adapter: ``jax.nn.initializers``-style initializers over fastinit's streams.

Checked against ``jax.nn.initializers`` itself: factory signatures (names, order, defaults),
statistics (two-sample KS between fastinit's array and JAX's own for the same scheme: same
law, different bits), and exact outputs for the deterministic ones. Values are checked against
fastinit's functional schemes with ``seed`` taken from the key, byte for byte, eager and under
``jax.jit`` / ``jax.vmap``, and in a Flax model.

KS thresholds: p > 1e-4 means a correct implementation fails one such check with probability
1e-4; keys are fixed, so the outcome is deterministic.
"""

from __future__ import annotations

import inspect
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import fastinit
import fastinit.jax as fj

KS_P_MIN = 1e-4  # two-sample KS: a correct sampler falls below this with probability 1e-4
JI = jax.nn.initializers  # JAX's own initializers, the reference


def vs(scale, mode, distribution, **axes):
    """fastinit's functional variance_scaling in JAX's layout."""
    return lambda shape, **kw: fastinit.variance_scaling(
        shape, scale, mode, distribution, layout="jax", **axes, **kw
    )


# id -> (fastinit.jax initializer, jax.nn.initializers initializer, the functional scheme
#        (shape, seed=, dtype=), a small shape, a big shape for statistics)
SCHEMES = {
    "glorot_uniform": (
        fj.glorot_uniform(),
        JI.glorot_uniform(),
        vs(1.0, "fan_avg", "uniform"),
        (7, 5),
        (256, 512),
    ),
    "glorot_normal": (
        fj.glorot_normal(),
        JI.glorot_normal(),
        vs(1.0, "fan_avg", "truncated_normal"),
        (7, 5),
        (256, 512),
    ),  # fmt: skip
    "lecun_uniform": (
        fj.lecun_uniform(),
        JI.lecun_uniform(),
        vs(1.0, "fan_in", "uniform"),
        (3, 3, 4, 6),
        (3, 3, 64, 128),
    ),  # fmt: skip
    "lecun_normal": (
        fj.lecun_normal(),
        JI.lecun_normal(),
        vs(1.0, "fan_in", "truncated_normal"),
        (3, 3, 4, 6),
        (3, 3, 64, 128),
    ),  # fmt: skip
    "he_uniform": (fj.he_uniform(), JI.he_uniform(), vs(2.0, "fan_in", "uniform"), (7, 5), (256, 512)),
    "he_normal": (
        fj.he_normal(),
        JI.he_normal(),
        vs(2.0, "fan_in", "truncated_normal"),
        (3, 4, 6),
        (5, 128, 256),
    ),
    "vs-fan_out-normal": (
        fj.variance_scaling(0.5, "fan_out", "normal"),
        JI.variance_scaling(0.5, "fan_out", "normal"),
        vs(0.5, "fan_out", "normal"),
        (4, 9),
        (256, 512),
    ),
    "vs-fan_avg-uniform-conv": (
        fj.variance_scaling(3.0, "fan_avg", "uniform"),
        JI.variance_scaling(3.0, "fan_avg", "uniform"),
        vs(3.0, "fan_avg", "uniform"),
        (3, 3, 4, 6),
        (3, 3, 64, 128),
    ),
    "vs-fan_geo_avg-truncated": (
        fj.variance_scaling(1.0, "fan_geo_avg", "truncated_normal"),
        JI.variance_scaling(1.0, "fan_geo_avg", "truncated_normal"),
        vs(1.0, "fan_geo_avg", "truncated_normal"),
        (4, 9),
        (128, 1024),
    ),
    "vs-axes-batch": (
        fj.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=1, batch_axis=2),
        JI.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=1, batch_axis=2),
        vs(1.0, "fan_in", "normal", in_axis=0, out_axis=1, batch_axis=2),
        (4, 6, 3),
        (64, 256, 8),
    ),
    "vs-axes-sequence": (
        fj.variance_scaling(1.0, "fan_in", "uniform", in_axis=(0, 1), out_axis=-1),
        JI.variance_scaling(1.0, "fan_in", "uniform", in_axis=(0, 1), out_axis=-1),
        vs(1.0, "fan_in", "uniform", in_axis=(0, 1), out_axis=-1),
        (2, 3, 5),
        (16, 16, 512),
    ),
    "truncated_normal-default": (
        fj.truncated_normal(),
        JI.truncated_normal(),
        lambda s, **kw: fastinit.truncated_normal(s, 0.0, 1e-2, lower=-2.0, upper=2.0, **kw),
        (13,),
        (400, 400),
    ),
    "truncated_normal-asym": (
        fj.truncated_normal(0.5, lower=-1.0, upper=3.0),
        JI.truncated_normal(0.5, lower=-1.0, upper=3.0),
        lambda s, **kw: fastinit.truncated_normal(s, 0.0, 0.5, lower=-1.0, upper=3.0, **kw),
        (13,),
        (400, 400),
    ),
    "normal": (
        fj.normal(0.3),
        JI.normal(0.3),
        lambda s, **kw: fastinit.normal(s, 0.0, 0.3, **kw),
        (13,),
        (400, 400),
    ),
    "uniform": (
        fj.uniform(0.7),
        JI.uniform(0.7),
        lambda s, **kw: fastinit.uniform(s, 0.0, 0.7, **kw),
        (13,),
        (400, 400),
    ),  # fmt: skip
    "orthogonal": (
        fj.orthogonal(2.0),
        JI.orthogonal(2.0),
        lambda s, **kw: fastinit.orthogonal(s, 2.0, column_axis=-1, **kw),
        (9, 4),
        (256, 128),
    ),
    "orthogonal-column_axis0": (
        fj.orthogonal(column_axis=0),
        JI.orthogonal(column_axis=0),
        lambda s, **kw: fastinit.orthogonal(s, 1.0, column_axis=0, **kw),
        (4, 3, 5),
        (64, 32, 8),
    ),
    "delta_orthogonal": (
        fj.delta_orthogonal(1.5),
        JI.delta_orthogonal(1.5),
        lambda s, **kw: fastinit.delta_orthogonal(s, 1.5, column_axis=-1, **kw),
        (3, 3, 4, 6),
        (3, 3, 128, 256),
    ),
}
DETERMINISTIC = {
    "zeros": (fj.zeros, JI.zeros),
    "ones": (fj.ones, JI.ones),
    "constant": (fj.constant(0.25), JI.constant(0.25)),
    "constant-negative": (fj.constant(-3.5), JI.constant(-3.5)),
}
FACTORIES = sorted(
    n for n in dir(JI) if not n.startswith("_") and n != "Initializer" and callable(getattr(JI, n))
)


def jbits(x) -> bytes:
    return np.asarray(x).tobytes()


def fbits(x) -> bytes:
    return np.ascontiguousarray(x.raw).tobytes()


def as_f64(x) -> np.ndarray:
    return np.asarray(jnp.asarray(x, jnp.float32), dtype=np.float64)


# ---- names and signatures -----------------------------------------------------------------------


def test_every_jax_initializer_has_a_fastinit_counterpart():
    missing = [n for n in FACTORIES if not callable(getattr(fj, n, None))]
    assert not missing
    assert set(FACTORIES) <= set(fj.__all__)


@pytest.mark.parametrize("name", [n for n in FACTORIES if n not in ("zeros", "ones")])
def test_factory_signature_is_jaxs(name):
    theirs = inspect.signature(getattr(JI, name)).parameters.values()
    ours = inspect.signature(getattr(fj, name)).parameters.values()
    assert [(p.name, p.default, p.kind) for p in ours] == [(p.name, p.default, p.kind) for p in theirs]


@pytest.mark.parametrize("name", ["zeros", "ones"])
def test_zeros_and_ones_are_initializers_themselves(name):
    theirs = inspect.signature(getattr(JI, name)).parameters.values()
    ours = inspect.signature(getattr(fj, name)).parameters.values()
    assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in theirs]


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_initializer_is_called_like_jaxs(scheme):
    init = SCHEMES[scheme][0]
    params = list(inspect.signature(init).parameters.values())
    assert [p.name for p in params[:3]] == ["key", "shape", "dtype"]
    x = init(jax.random.key(0), SCHEMES[scheme][3], jnp.float32)
    y = init(key=jax.random.key(0), shape=SCHEMES[scheme][3], dtype=jnp.float32)
    assert isinstance(x, jax.Array) and jbits(x) == jbits(y)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("xavier_uniform", "glorot_uniform"),
        ("xavier_normal", "glorot_normal"),
        ("kaiming_uniform", "he_uniform"),
        ("kaiming_normal", "he_normal"),
    ],  # fmt: skip
)
def test_aliases_give_the_same_arrays(alias, name):
    key = jax.random.key(3)
    assert jbits(getattr(fj, alias)()(key, (6, 4))) == jbits(getattr(fj, name)()(key, (6, 4)))


# ---- keys and values --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 42, 2**32 - 1], ids=["seed0", "seed42", "seed2^32-1"])
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_typed_and_legacy_keys_equal_the_functional_scheme(scheme, seed):
    init, _, functional, shape, _ = SCHEMES[scheme]
    typed = init(jax.random.key(seed), shape)
    legacy = init(jax.random.PRNGKey(seed), shape)
    assert typed.shape == shape and typed.dtype == jnp.float32
    assert jbits(typed) == jbits(legacy) == fbits(functional(shape, seed=seed, dtype="float32"))


def test_key_words_make_a_64_bit_seed():
    hi, lo = 3, 5
    key = jax.random.wrap_key_data(jnp.array([hi, lo], dtype=jnp.uint32))
    assert fj.key_to_seed(key) == (hi << 32) | lo == fj.key_to_seed(jnp.array([hi, lo], dtype=jnp.uint32))
    x = fj.normal(1.0)(key, (100,))
    assert jbits(x) == fbits(fastinit.normal((100,), 0.0, 1.0, seed=(hi << 32) | lo))


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_same_key_same_array_different_keys_differ(scheme):
    init, shape = SCHEMES[scheme][0], SCHEMES[scheme][3]
    key = jax.random.key(11)
    a = init(key, shape)
    assert jbits(a) == jbits(init(key, shape))
    k1, k2 = jax.random.split(key)
    others = [init(k, shape) for k in (k1, k2, jax.random.fold_in(key, 5), jax.random.key(12))]
    assert len({jbits(a)} | {jbits(o) for o in others}) == 5


@pytest.mark.parametrize("legacy", [False, True], ids=["typed-key", "legacy-key"])
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_jit_with_traced_key_gives_identical_values(scheme, legacy):
    init, shape = SCHEMES[scheme][0], SCHEMES[scheme][3]
    key = jax.random.PRNGKey(5) if legacy else jax.random.key(5)
    jitted = jax.jit(lambda k: init(k, shape))(key)
    assert jitted.shape == shape and jitted.dtype == jnp.float32
    assert jbits(jitted) == jbits(init(key, shape))
    # a key derived inside the traced function
    inside = jax.jit(lambda k: init(jax.random.fold_in(k, 7), shape))(key)
    assert jbits(inside) == jbits(init(jax.random.fold_in(key, 7), shape))


@pytest.mark.parametrize("legacy", [False, True], ids=["typed-keys", "legacy-keys"])
@pytest.mark.parametrize("scheme", ["he_normal", "uniform", "orthogonal"])
def test_vmap_over_keys(scheme, legacy):
    init, shape = SCHEMES[scheme][0], SCHEMES[scheme][3]
    keys = jax.random.split(jax.random.PRNGKey(2) if legacy else jax.random.key(2), 4)
    batched = jax.vmap(lambda k: init(k, shape))(keys)
    assert batched.shape == (4, *shape)
    for i in range(4):
        assert jbits(batched[i]) == jbits(init(keys[i], shape))
    assert jbits(jax.jit(jax.vmap(lambda k: init(k, shape)))(keys)) == jbits(batched)


def test_keys_of_other_implementations_are_deterministic_and_jit_safe():
    key = jax.random.key(0, impl="rbg")
    init, shape = fj.he_uniform(), (8, 6)
    a = init(key, shape)
    assert jbits(a) == jbits(init(key, shape)) == jbits(jax.jit(lambda k: init(k, shape))(key))
    assert jbits(a) != jbits(init(jax.random.key(1, impl="rbg"), shape))


# ---- dtypes ---------------------------------------------------------------------------------------

JAX_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


@pytest.mark.parametrize("dtype", list(JAX_DTYPES))
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_dtypes(scheme, dtype):
    init, _, functional, shape, _ = SCHEMES[scheme]
    key = jax.random.key(9)
    x = init(key, shape, JAX_DTYPES[dtype])
    assert x.dtype == jnp.dtype(JAX_DTYPES[dtype]) and x.shape == shape
    expected = fbits(functional(shape, seed=9, dtype=dtype))
    assert jbits(x) == expected
    assert jbits(jax.jit(lambda k: init(k, shape, JAX_DTYPES[dtype]))(key)) == expected


@pytest.mark.parametrize("dtype", list(JAX_DTYPES))
def test_dtype_bound_in_the_factory(dtype):
    init = fj.normal(0.5, dtype=JAX_DTYPES[dtype])
    x = init(jax.random.key(1), (50,))
    assert x.dtype == jnp.dtype(JAX_DTYPES[dtype])
    assert jbits(x) == fbits(fastinit.normal((50,), 0.0, 0.5, seed=1, dtype=dtype))


def test_float64_without_x64_becomes_float32_like_jax():
    assert not jax.config.jax_enable_x64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # JAX warns that float64 is truncated
        theirs = JI.normal()(jax.random.key(0), (3,), jnp.float64)
        ours = fj.normal()(jax.random.key(0), (3,), jnp.float64)
    assert ours.dtype == theirs.dtype == jnp.float32


# ---- statistics against JAX's own initializers --------------------------------------------------


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_same_distribution_as_jax(scheme):
    init, theirs_init, _, _, shape = SCHEMES[scheme]
    ours = as_f64(init(jax.random.key(123), shape))
    theirs = as_f64(theirs_init(jax.random.key(456), shape))
    assert ours.shape == theirs.shape == shape
    if scheme == "delta_orthogonal":  # only the centre tap is random
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        assert np.count_nonzero(ours) == np.count_nonzero(ours[centre])
        ours, theirs = ours[centre], theirs[centre]
    pvalue = stats.ks_2samp(ours.ravel(), theirs.ravel()).pvalue
    assert pvalue > KS_P_MIN, pvalue


def _variance_denominator(shape, mode, in_axis=-2, out_axis=-1, batch_axis=()):
    def size(axes):
        axes = (axes,) if isinstance(axes, int) else axes
        return math.prod(shape[a] for a in axes)

    receptive = math.prod(shape) / (size(in_axis) * size(out_axis) * size(batch_axis))
    fan_in, fan_out = size(in_axis) * receptive, size(out_axis) * receptive
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
            "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]  # fmt: skip


@pytest.mark.parametrize(
    ("init", "shape", "low", "high"),
    [
        pytest.param(fj.uniform(0.7), (1000,), 0.0, 0.7, id="uniform"),
        pytest.param(
            fj.truncated_normal(0.5, lower=-1.0, upper=3.0), (1000,), -0.5, 1.5, id="truncated_normal"
        ),
        pytest.param(fj.he_uniform(), (64, 32), -math.sqrt(6 / 64), math.sqrt(6 / 64), id="he_uniform"),
        pytest.param(
            fj.glorot_uniform(),
            (3, 3, 16, 32),
            -math.sqrt(3 / _variance_denominator((3, 3, 16, 32), "fan_avg")),
            math.sqrt(3 / _variance_denominator((3, 3, 16, 32), "fan_avg")),
            id="glorot_uniform-conv",
        ),  # fmt: skip
        pytest.param(
            fj.lecun_normal(),
            (64, 32),
            -2 / math.sqrt(64) / 0.87962566103423978,
            2 / math.sqrt(64) / 0.87962566103423978,
            id="lecun_normal",
        ),  # fmt: skip
    ],
)
def test_values_lie_in_jaxs_support(init, shape, low, high):
    x = as_f64(init(jax.random.key(0), shape))
    assert low * (1 + 1e-6) <= x.min() and x.max() <= high * (1 + 1e-6)
    width = high - low  # and fill it: 1000+ draws reach within 5% of both ends
    assert x.min() < low + 0.05 * width and x.max() > high - 0.05 * width


@pytest.mark.parametrize(
    ("scale", "mode", "distribution", "shape", "axes"),
    [
        pytest.param(2.0, "fan_in", "normal", (512, 256), {}, id="fan_in-normal"),
        pytest.param(0.5, "fan_out", "truncated_normal", (512, 256), {}, id="fan_out-truncated"),
        pytest.param(1.0, "fan_avg", "uniform", (3, 3, 64, 128), {}, id="fan_avg-uniform-conv"),
        pytest.param(
            1.0,
            "fan_in",
            "normal",
            (64, 256, 8),
            {"in_axis": 0, "out_axis": 1, "batch_axis": 2},
            id="batch_axis",
        ),  # fmt: skip
    ],
)
def test_variance_is_scale_over_fan(scale, mode, distribution, shape, axes):
    """sample variance vs scale / n: |rel. error| < 2% at >= 131k samples is > 7 standard errors."""
    x = as_f64(fj.variance_scaling(scale, mode, distribution, **axes)(jax.random.key(4), shape))
    expected = scale / _variance_denominator(shape, mode, **axes)
    assert abs(x.var() / expected - 1) < 0.02


@pytest.mark.parametrize(
    ("column_axis", "shape"),
    [
        pytest.param(-1, (40, 30), id="tall"),
        pytest.param(-1, (3, 30, 40), id="wide-3d"),
        pytest.param(0, (6, 10), id="column_axis0"),
    ],  # fmt: skip
)
def test_orthogonal_columns_are_orthonormal(column_axis, shape):
    q = as_f64(fj.orthogonal(2.0, column_axis=column_axis)(jax.random.key(0), shape))
    m = np.moveaxis(q, column_axis, -1).reshape(-1, shape[column_axis]) / 2.0
    small = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(small, np.eye(small.shape[0]), atol=2e-5)


def test_delta_orthogonal_structure():
    w = as_f64(fj.delta_orthogonal(1.5)(jax.random.key(0), (3, 5, 8, 16)))
    centre = w[1, 2]
    np.testing.assert_allclose(centre @ centre.T / 1.5**2, np.eye(8), atol=2e-5)
    w[1, 2] = 0
    assert not w.any()


@pytest.mark.parametrize("name", list(DETERMINISTIC))
@pytest.mark.parametrize("dtype", list(JAX_DTYPES))
def test_deterministic_initializers_equal_jaxs(name, dtype):
    ours, theirs = DETERMINISTIC[name]
    a = ours(jax.random.key(0), (3, 4), JAX_DTYPES[dtype])
    b = theirs(jax.random.key(1), (3, 4), JAX_DTYPES[dtype])
    assert a.dtype == b.dtype and a.shape == b.shape and jbits(a) == jbits(b)
    assert ours(jax.random.key(0), (3, 4)).dtype == theirs(jax.random.key(0), (3, 4)).dtype


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        pytest.param(lambda m: m.orthogonal(), (5,), id="orthogonal-1d"),
        pytest.param(lambda m: m.delta_orthogonal(), (3, 3, 8, 4), id="delta_orthogonal-in>out"),
        pytest.param(lambda m: m.delta_orthogonal(), (8, 8), id="delta_orthogonal-2d"),
        pytest.param(lambda m: m.variance_scaling(1.0, "fan_x", "normal"), (3, 3), id="bad-mode"),
        pytest.param(lambda m: m.variance_scaling(1.0, "fan_in", "cauchy"), (3, 3), id="bad-distribution"),
    ],
)
def test_invalid_shapes_and_options_raise_value_errors_like_jax(make, shape):
    with pytest.raises(ValueError):
        make(JI)(jax.random.key(0), shape)
    with pytest.raises(ValueError):
        make(fj)(jax.random.key(0), shape)


# ---- Flax ------------------------------------------------------------------------------------------


def test_flax_linen_dense_kernel_init():
    linen = pytest.importorskip("flax.linen")
    base = fj.glorot_uniform()
    seen = []

    def recording(key, shape, dtype=jnp.float32):
        seen.append(key)
        return base(key, shape, dtype)

    x = jnp.ones((2, 8))
    model = linen.Dense(16, kernel_init=recording)
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    kernel = params["kernel"]
    assert kernel.shape == (8, 16) and kernel.dtype == jnp.float32
    [key] = seen
    assert jbits(kernel) == jbits(base(key, (8, 16)))

    plain = linen.Dense(16, kernel_init=base)
    again = plain.init(jax.random.PRNGKey(0), x)["params"]["kernel"]
    jitted = jax.jit(plain.init)(jax.random.PRNGKey(0), x)["params"]["kernel"]
    other = plain.init(jax.random.PRNGKey(1), x)["params"]["kernel"]
    assert jbits(again) == jbits(kernel) == jbits(jitted)
    assert jbits(other) != jbits(kernel)
    assert plain.apply({"params": {"kernel": kernel, "bias": params["bias"]}}, x).shape == (2, 16)


def test_flax_linen_conv_and_dtype():
    linen = pytest.importorskip("flax.linen")
    model = linen.Conv(32, (3, 3), kernel_init=fj.he_normal(), param_dtype=jnp.bfloat16)
    kernel = model.init(jax.random.PRNGKey(3), jnp.ones((1, 8, 8, 4)))["params"]["kernel"]
    assert kernel.shape == (3, 3, 4, 32) and kernel.dtype == jnp.bfloat16
    std = float(jnp.std(kernel.astype(jnp.float32)))
    assert abs(std / math.sqrt(2 / 36) - 1) < 0.1  # 1152 samples: 10% is > 3 standard errors


def test_flax_nnx_linear_kernel_init():
    nnx = pytest.importorskip("flax.nnx")
    a = nnx.Linear(8, 16, kernel_init=fj.lecun_normal(), rngs=nnx.Rngs(0))
    b = nnx.Linear(8, 16, kernel_init=fj.lecun_normal(), rngs=nnx.Rngs(0))
    c = nnx.Linear(8, 16, kernel_init=fj.lecun_normal(), rngs=nnx.Rngs(1))
    assert a.kernel[...].shape == (8, 16)
    assert jbits(a.kernel[...]) == jbits(b.kernel[...]) != jbits(c.kernel[...])
