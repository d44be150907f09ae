"""fastinit.jax as a drop-in for ``jax.nn.initializers``: what JAX's own initializer tests ask.

JAX's ``tests/nn_test.py`` (``NNInitializersTest``) and the ``out_sharding=`` initializer tests
of ``tests/pjit_test.py`` pass against ``fastinit.jax`` (tools/upstream_suites.md runs them).
These are fastinit's own tests of the same behaviours, and of what those suites leave out:

- complex dtypes (complex64; complex128 under x64) for ``normal``, the variance-scaling
  family (all three distributions), ``orthogonal`` and ``delta_orthogonal``, drawn with JAX's
  laws: a circular normal (real and imaginary parts each of half the variance), a uniform disk
  of mean square 1, JAX's modulus-truncated normal (with JAX's constant .95311164380491208),
  a Haar-distributed unitary; and each complex element a pure function of (key, index);
- scalar parameters given as 0-d JAX / NumPy arrays, without upcasting the output dtype;
- ``out_sharding=`` as a ``PartitionSpec`` under ``jax.set_mesh`` or as a ``Sharding``, on
  every initializer, ``constant``, ``zeros`` and ``ones`` included (the 8-device checks are in
  test_jax_sharding.py).

Statistical checks run at fixed keys, so each outcome is deterministic; a threshold's comment
gives the probability that a correct sampler fails it.
"""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from scipy import stats

import fastinit
import fastinit.jax as fj

JI = jax.nn.initializers  # JAX's own initializers, the reference
KS_P_MIN = 1e-4  # KS test: a correct sampler falls below this p-value with probability 1e-4
# E r^2 of a unit complex normal whose modulus is truncated at 2 (r^2 ~ Exp(1) cut at 4), and
# JAX's divisor for it: JAX's complex truncated normal has variance TRUNC_R2 / JAX_C**2 times
# the nominal one (1.0187), and fastinit.jax follows JAX.
TRUNC_R2 = 1 - 4 * math.exp(-4) / (1 - math.exp(-4))
JAX_C = 0.95311164380491208


def fan_variance(scale, mode, shape, in_axis=-2, out_axis=-1, batch_axis=()):
    def size(axes):
        axes = (axes,) if isinstance(axes, int) else axes
        return math.prod(shape[a] for a in axes)

    receptive = math.prod(shape) / (size(in_axis) * size(out_axis) * size(batch_axis))
    fan_in, fan_out = size(in_axis) * receptive, size(out_axis) * receptive
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
         "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]  # fmt: skip
    return scale / n


# id -> (factory of a module (fj or JI), law, nominal variance of shape)
# law: "normal" (circular normal), "disk" (uniform disk), "truncated" (JAX's modulus-truncated)
COMPLEX = {
    "normal": (lambda m: m.normal(0.3), "normal", lambda s: 0.09),
    "he_normal": (lambda m: m.he_normal(), "truncated", lambda s: fan_variance(2.0, "fan_in", s)),
    "he_uniform": (lambda m: m.he_uniform(), "disk", lambda s: fan_variance(2.0, "fan_in", s)),
    "glorot_normal": (lambda m: m.glorot_normal(), "truncated", lambda s: fan_variance(1.0, "fan_avg", s)),
    "glorot_uniform": (lambda m: m.glorot_uniform(), "disk", lambda s: fan_variance(1.0, "fan_avg", s)),
    "lecun_normal": (lambda m: m.lecun_normal(), "truncated", lambda s: fan_variance(1.0, "fan_in", s)),
    "lecun_uniform": (lambda m: m.lecun_uniform(), "disk", lambda s: fan_variance(1.0, "fan_in", s)),
    "vs-fan_out-normal": (
        lambda m: m.variance_scaling(0.5, "fan_out", "normal"),
        "normal",
        lambda s: fan_variance(0.5, "fan_out", s),
    ),
    "vs-fan_geo_avg-truncated": (
        lambda m: m.variance_scaling(3.0, "fan_geo_avg", "truncated_normal"),
        "truncated",
        lambda s: fan_variance(3.0, "fan_geo_avg", s),
    ),
    "vs-batch_axis-uniform": (
        lambda m: m.variance_scaling(1.0, "fan_avg", "uniform", in_axis=1, out_axis=2, batch_axis=0),
        "disk",
        lambda s: fan_variance(1.0, "fan_avg", s, 1, 2, 0),
    ),
}
SHAPES = [(2, 2), (2, 3), (3, 2), (2, 3, 4), (4, 3, 2), (2, 3, 4, 5)]
BIG = (256, 512)  # 131072 complex values per statistical check


def expected_mean_square(law, variance):
    return variance * (TRUNC_R2 / JAX_C**2 if law == "truncated" else 1.0)


def as_c128(x) -> np.ndarray:
    return np.asarray(x).astype(np.complex128)


# ---- complex dtypes: shapes and dtypes, as JAX's testInitializer / testInitializerProvider ----------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(COMPLEX))
def test_complex64_shape_and_dtype(name, shape):
    if name == "vs-batch_axis-uniform" and len(shape) < 3:
        pytest.skip("needs three axes")
    make = COMPLEX[name][0]
    key = jax.random.PRNGKey(0)
    x = make(fj)(key, shape, jnp.complex64)
    assert x.shape == shape and x.dtype == jnp.complex64
    assert np.isfinite(as_c128(x)).all() and np.abs(as_c128(x).imag).max() > 0
    assert np.asarray(make(fj)(key, shape, jnp.complex64)).tobytes() == np.asarray(x).tobytes()


@pytest.mark.parametrize(
    "factory",
    [
        pytest.param(lambda: fj.normal(dtype=jnp.complex64), id="normal"),
        pytest.param(lambda: fj.he_uniform(dtype=jnp.complex64), id="he_uniform"),
        pytest.param(lambda: fj.glorot_normal(dtype=jnp.complex64), id="glorot_normal"),
        pytest.param(lambda: fj.variance_scaling(1.0, "fan_in", "normal", dtype=jnp.complex64), id="vs"),
        pytest.param(lambda: fj.orthogonal(dtype=jnp.complex64), id="orthogonal"),
        pytest.param(lambda: fj.delta_orthogonal(dtype=jnp.complex64), id="delta_orthogonal"),
    ],
)
def test_complex_dtype_bound_in_the_factory(factory):
    x = factory()(jax.random.key(3), (3, 3, 4, 4))
    assert x.shape == (3, 3, 4, 4) and x.dtype == jnp.complex64


@pytest.mark.parametrize("name", ["uniform", "truncated_normal"])
def test_real_only_initializers_refuse_complex_like_jax(name):
    with pytest.raises(ValueError, match="float dtype"):
        getattr(JI, name)()(jax.random.key(0), (4,), jnp.complex64)
    with pytest.raises(ValueError, match="float dtype"):
        getattr(fj, name)()(jax.random.key(0), (4,), jnp.complex64)


# ---- complex dtypes: the laws JAX draws -------------------------------------------------------------


@pytest.mark.parametrize("name", list(COMPLEX))
def test_complex_same_law_as_jax(name):
    """Two-sample KS against JAX's own initializer (other key) on the real part, the imaginary
    part and the modulus; and the mean square within 1.5% of JAX's (> 5 standard errors)."""
    make, law, variance = COMPLEX[name]
    shape = (4, 128, 256) if name == "vs-batch_axis-uniform" else BIG
    ours = as_c128(make(fj)(jax.random.key(123), shape, jnp.complex64)).ravel()
    theirs = as_c128(make(JI)(jax.random.key(456), shape, jnp.complex64)).ravel()
    for part in (np.real, np.imag, np.abs):
        pvalue = stats.ks_2samp(part(ours), part(theirs)).pvalue
        assert pvalue > KS_P_MIN, (part.__name__, pvalue)
    target = expected_mean_square(law, variance(shape))
    assert abs(np.mean(np.abs(ours) ** 2) / target - 1) < 0.015
    assert abs(np.mean(np.abs(theirs) ** 2) / target - 1) < 0.015  # the target is JAX's


@pytest.mark.parametrize("name", list(COMPLEX))
def test_complex_modulus_and_phase_follow_the_law(name):
    """One-sample KS of |z|^2 against its exact law and of the phase against U(-pi, pi); real
    and imaginary parts uncorrelated (|r| < 5 / sqrt(n): a correct sampler fails with p ~ 6e-7)."""
    make, law, variance = COMPLEX[name]
    shape = (4, 128, 256) if name == "vs-batch_axis-uniform" else BIG
    z = as_c128(make(fj)(jax.random.key(7), shape, jnp.complex64)).ravel()
    v = variance(shape)
    r2 = np.abs(z) ** 2
    if law == "normal":
        law_of_r2 = stats.expon(scale=v)
    elif law == "disk":
        law_of_r2 = stats.uniform(0, 2 * v)
    else:
        s2 = v / JAX_C**2
        law_of_r2 = stats.truncexpon(b=4.0, scale=s2)
        assert r2.max() <= 4 * s2 * (1 + 1e-5)
    assert stats.kstest(r2, law_of_r2.cdf).pvalue > KS_P_MIN
    assert stats.kstest(np.angle(z), stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > KS_P_MIN
    assert abs(np.corrcoef(z.real, z.imag)[0, 1]) < 5 / math.sqrt(z.size)


def test_complex_normal_is_the_real_stream_in_pairs():
    """Element i of a complex normal is (re, im) = elements (2i, 2i+1) of the real normal stream
    of shape shape + (2,), with std / sqrt(2) each."""
    z = np.asarray(fj.normal(0.3)(jax.random.key(5), (6, 7), jnp.complex64))
    pairs = np.asarray(fastinit.normal((6, 7, 2), 0.0, 0.3 / math.sqrt(2), seed=5, dtype="float32"))
    assert z.real.tobytes() == np.ascontiguousarray(pairs[..., 0]).tobytes()
    assert z.imag.tobytes() == np.ascontiguousarray(pairs[..., 1]).tobytes()


@pytest.mark.parametrize(
    ("make", "big", "small"),
    [
        pytest.param(lambda: fj.normal(0.3), (40,), (17,), id="normal"),
        pytest.param(
            lambda: fj.variance_scaling(1.0, "fan_in", "uniform", in_axis=1, out_axis=2, batch_axis=0),
            (10, 4, 6),
            (3, 4, 6),
            id="disk",
        ),
        pytest.param(
            lambda: fj.variance_scaling(
                1.0, "fan_in", "truncated_normal", in_axis=1, out_axis=2, batch_axis=0
            ),
            (10, 4, 6),
            (3, 4, 6),
            id="truncated",
        ),
    ],
)
def test_complex_element_depends_on_key_and_index_only(make, big, small):
    """A shape that only grows along the first axis (with the same fans) keeps its prefix."""
    key = jax.random.key(9)
    a = np.asarray(make()(key, big, jnp.complex64))
    b = np.asarray(make()(key, small, jnp.complex64))
    assert a[: small[0]].tobytes() == b.tobytes()


@pytest.mark.parametrize("name", ["normal", "he_uniform", "glorot_normal"])
def test_complex_under_jit_equals_eager(name):
    init, key = COMPLEX[name][0](fj), jax.random.key(2)
    eager = init(key, (5, 6), jnp.complex64)
    jitted = jax.jit(lambda k: init(k, (5, 6), jnp.complex64))(key)
    assert jitted.dtype == jnp.complex64 and np.asarray(jitted).tobytes() == np.asarray(eager).tobytes()


# ---- complex orthogonal --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column_axis", "shape"),
    [
        pytest.param(-1, (40, 30), id="tall"),
        pytest.param(-1, (3, 30, 40), id="wide-3d"),
        pytest.param(0, (6, 10), id="column_axis0"),
        pytest.param(-1, (2, 2), id="2x2"),
    ],
)
def test_complex_orthogonal_is_unitary(column_axis, shape):
    q = as_c128(fj.orthogonal(2.0, column_axis=column_axis)(jax.random.key(0), shape, jnp.complex64))
    assert q.shape == shape
    m = np.moveaxis(q, column_axis, -1).reshape(-1, shape[column_axis]) / 2.0
    small = m.conj().T @ m if m.shape[0] >= m.shape[1] else m @ m.conj().T
    np.testing.assert_allclose(small, np.eye(small.shape[0]), atol=2e-6)
    assert np.abs(m.imag).max() > 0.1  # really complex, not a real matrix cast


@pytest.mark.slow
def test_complex_orthogonal_is_haar():
    """Over 1000 keys, Q[0, 0] of a 4 x 4 Haar unitary: |Q00|^2 ~ Beta(1, 3) and its phase is
    uniform (the phase fix of diag R; without it the phase piles up near 0)."""
    init = fj.orthogonal()
    q00 = np.array([as_c128(init(jax.random.key(k), (4, 4), jnp.complex64))[0, 0] for k in range(1000)])
    assert stats.kstest(np.abs(q00) ** 2, stats.beta(1, 3).cdf).pvalue > KS_P_MIN
    assert stats.kstest(np.angle(q00), stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > KS_P_MIN


def test_complex_delta_orthogonal_structure():
    w = as_c128(fj.delta_orthogonal(1.5)(jax.random.key(0), (3, 5, 8, 16), jnp.complex64))
    centre = w[1, 2] / 1.5
    np.testing.assert_allclose(centre @ centre.conj().T, np.eye(8), atol=2e-6)
    w[1, 2] = 0
    assert not w.any()


def test_complex128_under_x64():
    with jax.enable_x64(True):
        key = jax.random.key(4)
        for init in (fj.normal(), fj.he_normal(), fj.lecun_uniform(), fj.orthogonal()):
            x = init(key, (6, 5), jnp.complex128)
            assert x.dtype == jnp.complex128 and x.shape == (6, 5)
        z = np.asarray(fj.normal(0.5)(key, (9,), jnp.complex128))
        pairs = np.asarray(fastinit.normal((9, 2), 0.0, 0.5 / math.sqrt(2), seed=4, dtype="float64"))
        assert z.real.tobytes() == np.ascontiguousarray(pairs[:, 0]).tobytes()
        q = np.asarray(fj.orthogonal()(key, (7, 5), jnp.complex128))
        np.testing.assert_allclose(q.conj().T @ q, np.eye(5), atol=1e-12)


# ---- 0-d array parameters, as testAccidentalUpcasting --------------------------------------------

PARAM_FACTORIES = {
    "uniform": lambda p, dt: fj.uniform(p, dt),
    "normal": lambda p, dt: fj.normal(p, dt),
    "truncated_normal": lambda p, dt: fj.truncated_normal(p, dt),
    "truncated_normal-bounds": lambda p, dt: fj.truncated_normal(0.5, dt, lower=-p, upper=p),
    "variance_scaling": lambda p, dt: fj.variance_scaling(p, "fan_in", "normal", dtype=dt),
    "orthogonal": lambda p, dt: fj.orthogonal(p, dtype=dt),
    "delta_orthogonal": lambda p, dt: fj.delta_orthogonal(p, dtype=dt),
    "constant": lambda p, dt: fj.constant(p, dt),
}
ZERO_D = {
    "jax-float32": lambda: jnp.array(1.5, dtype=jnp.float32),
    "jax-bfloat16": lambda: jnp.array(1.5, dtype=jnp.bfloat16),
    "numpy-0d": lambda: np.array(1.5),
    "numpy-scalar": lambda: np.float32(1.5),
}


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("kind", list(ZERO_D))
@pytest.mark.parametrize("name", list(PARAM_FACTORIES))
def test_0d_array_parameters_act_as_the_number_without_upcasting(name, kind, dtype):
    key, shape = jax.random.key(1), (3, 4, 4)
    x = PARAM_FACTORIES[name](ZERO_D[kind](), dtype)(key, shape)
    assert x.dtype == jnp.dtype(dtype)
    assert np.asarray(x).tobytes() == np.asarray(PARAM_FACTORIES[name](1.5, dtype)(key, shape)).tobytes()


@pytest.mark.parametrize(
    ("make", "argname"),
    [
        pytest.param(lambda v: fj.uniform(v), "scale", id="uniform"),
        pytest.param(lambda v: fj.normal(v), "stddev", id="normal"),
        pytest.param(lambda v: fj.truncated_normal(0.1, upper=v), "upper", id="truncated_normal"),
        pytest.param(lambda v: fj.variance_scaling(v, "fan_in", "normal"), "scale", id="variance_scaling"),
        pytest.param(lambda v: fj.orthogonal(v), "scale", id="orthogonal"),
    ],
)
@pytest.mark.parametrize(
    "value", [jnp.array([1.0, 2.0]), np.ones((1,)), jnp.array(1 + 1j)], ids=["1d-jax", "1d-numpy", "complex"]
)
def test_non_scalar_array_parameters_are_refused_naming_them(make, argname, value):
    with pytest.raises(TypeError, match=argname):
        make(value)(jax.random.key(0), (4, 4))


# ---- out_sharding -----------------------------------------------------------------------------

SHARDED = {
    "he_normal": lambda: fj.he_normal(in_axis=0, out_axis=1),
    "uniform": lambda: fj.uniform(),
    "normal": lambda: fj.normal(),
    "truncated_normal": lambda: fj.truncated_normal(),
    "glorot_uniform": lambda: fj.glorot_uniform(),
    "orthogonal": lambda: fj.orthogonal(),
    "constant": lambda: fj.constant(-7),
    "zeros": lambda: fj.zeros,
    "ones": lambda: fj.ones,
}


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((1,), ("x",))


@pytest.mark.parametrize("name", list(SHARDED))
def test_every_initializer_takes_out_sharding(name):
    params = inspect.signature(SHARDED[name]()).parameters
    assert list(params)[:4] == ["key", "shape", "dtype", "out_sharding"]
    assert params["out_sharding"].default is None


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64], ids=["float32", "complex64"])
@pytest.mark.parametrize("name", list(SHARDED))
def test_partition_spec_under_set_mesh(mesh, name, dtype):
    if dtype == jnp.complex64 and name in ("uniform", "truncated_normal"):
        pytest.skip("real-only, as in JAX")
    init, key = SHARDED[name](), jax.random.key(0)
    with jax.set_mesh(mesh):
        out = init(key, (8, 2), dtype, out_sharding=P("x"))
    assert out.sharding == NamedSharding(mesh, P("x", None))  # the spec padded to the rank, as JAX's
    assert out.dtype == dtype and np.asarray(out).tobytes() == np.asarray(init(key, (8, 2), dtype)).tobytes()


@pytest.mark.parametrize("name", list(SHARDED))
def test_named_sharding_needs_no_mesh_context(mesh, name):
    init, key = SHARDED[name](), jax.random.key(0)
    out = init(key, (8, 2), jnp.float32, out_sharding=NamedSharding(mesh, P("x")))
    assert out.sharding == NamedSharding(mesh, P("x", None))
    assert np.asarray(out).tobytes() == np.asarray(init(key, (8, 2), jnp.float32)).tobytes()


@pytest.mark.parametrize("name", list(SHARDED))
def test_partition_spec_without_a_mesh_is_an_error_saying_so(name):
    with pytest.raises(ValueError, match="set_mesh"):
        SHARDED[name]()(jax.random.key(0), (8, 2), jnp.float32, out_sharding=P("x"))


@pytest.mark.parametrize("name", list(SHARDED))
def test_out_sharding_of_another_type_is_refused_naming_it(name):
    with pytest.raises(TypeError, match="out_sharding"):
        SHARDED[name]()(jax.random.key(0), (8, 2), jnp.float32, out_sharding="x")


@pytest.mark.parametrize("spec", [P("x"), "named"], ids=["PartitionSpec", "NamedSharding"])
@pytest.mark.parametrize("name", list(SHARDED))
def test_out_sharding_under_jit_places_the_array(mesh, name, spec):
    init, key = SHARDED[name](), jax.random.key(4)
    spec = NamedSharding(mesh, P("x")) if spec == "named" else spec
    with jax.set_mesh(mesh):
        out = jax.jit(lambda k: init(k, (8, 2), jnp.float32, out_sharding=spec))(key)
    assert out.sharding == NamedSharding(mesh, P("x", None))
    assert np.asarray(out).tobytes() == np.asarray(init(key, (8, 2), jnp.float32)).tobytes()
