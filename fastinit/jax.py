"""JAX adapter: fastinit's schemes as ``jax.nn.initializers``-style initializers.

Imported on demand (``import fastinit.jax``), never by ``import fastinit``.

Every factory returns ``init(key, shape, dtype=<default float>)`` with JAX's names and
defaults (``glorot_uniform``, ``he_normal``, ``lecun_normal``, ``variance_scaling``,
``orthogonal``, ``delta_orthogonal``, ``truncated_normal``, ``normal``, ``uniform``,
``constant``; ``zeros`` and ``ones`` are initializers themselves), usable as a Flax
``kernel_init``. The JAX key picks the stream: a key with two 32-bit words (the default
threefry keys, legacy ``PRNGKey`` arrays or typed ``jax.random.key``) gives
``seed = word0 * 2**32 + word1``, so ``jax.random.key(42)`` draws exactly what
``fastinit.<scheme>(..., seed=42)`` draws; keys of other implementations are hashed to a seed.
The same key gives the same array. Under ``jax.jit`` (a traced key) the values come through
``jax.pure_callback``.

Sharded arrays: pass ``out_sharding=`` to any initializer (``constant``, ``zeros`` and ``ones``
included): a ``jax.sharding.Sharding``, or a ``PartitionSpec`` under a mesh set with
``jax.set_mesh(mesh)``, as JAX takes it (the spec is padded with ``None`` to the array's rank,
as JAX's results carry it). For any sampler or scheme, ``fastinit.jax.sharded(fastinit.normal,
shape, ..., sharding=...)``. ``jax.make_array_from_callback`` asks for each device's block,
which is generated alone from its global position (``index=``), with no communication; the
result equals the unsharded array for every mesh and partitioning. Under ``jax.jit`` (a traced
key) the array is placed by ``jax.device_put`` to ``out_sharding``, as JAX places its own.

Scalar parameters (``stddev``, ``scale``, ``lower``, ``upper``) may be Python numbers or 0-d
real JAX / NumPy arrays; the output dtype is always the requested one, never upcast.

Complex dtypes (complex64; complex128 under x64) for ``normal``, ``variance_scaling`` and its
presets (he_*, glorot_*, lecun_*), ``orthogonal`` and ``delta_orthogonal``, with JAX's laws:

- normal: a circular complex normal, real and imaginary parts independent, each of variance
  stddev**2 / 2 (so E|z|**2 = stddev**2; variance_scaling "normal" likewise with scale / n);
- variance_scaling "uniform": uniform on the disk of radius sqrt(2 scale / n), E|z|**2 = scale / n;
- variance_scaling "truncated_normal": JAX's modulus-truncated complex normal, |z|**2 an Exp(1)
  cut at 4, times sqrt(scale / n) / .95311164380491208 (JAX's constant, which makes E|z|**2
  1.0187 scale / n rather than scale / n: fastinit follows JAX);
- orthogonal: a Haar-distributed unitary (QR of a complex normal matrix, columns times the
  phase of diag R).

Each complex element stays a pure function of (key, index), so sharding works unchanged:
element i is drawn from elements (i, 0) and (i, 1) of the real stream of shape
``shape + (2,)`` in the matching real dtype (float32 for complex64). The normal takes them as
(real, imaginary) parts, bit for bit ``fastinit.normal(shape + (2,), 0, stddev / sqrt(2))``;
the disk and the truncated law take them as uniforms u, v from ``fastinit.uniform(shape + (2,))``
and return r exp(2 pi i v) with r = sqrt(2 u) (disk) or sqrt(-log(1 - (1 - e**-4) u))
(truncated), JAX's formulas, computed in float64 and rounded once. Orthogonal factors the
complex normal (rows, cols) matrix drawn so. ``uniform`` and ``truncated_normal`` are
real-only, as in JAX.

JAX semantics where they differ from torch's: he_* and glorot_normal / lecun_normal use
variance_scaling's truncated normal; fans follow the JAX layout ``(..., in, out)``.

>>> import jax, jax.numpy as jnp, fastinit.jax
>>> fastinit.jax.he_uniform()(jax.random.key(0), (4, 3), jnp.complex64).dtype
dtype('complex64')
"""

from __future__ import annotations

import hashlib
import math

import jax
import jax.numpy as jnp
import numpy as np

from . import driver, samplers
from .schemes import delta_orthogonal as _delta_orthogonal
from .schemes import orthogonal as _orthogonal
from .schemes import variance_scaling as _variance_scaling
from .schemes.fans import compute_fans
from .schemes.orthogonal import factorization_threads
from .schemes.variance_scaling import check_mode_and_distribution

__all__ = [
    "zeros",
    "ones",
    "constant",
    "uniform",
    "normal",
    "truncated_normal",
    "variance_scaling",
    "glorot_uniform",
    "glorot_normal",
    "xavier_uniform",
    "xavier_normal",
    "lecun_uniform",
    "lecun_normal",
    "he_uniform",
    "he_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "delta_orthogonal",
    "key_to_seed",
    "sharded",
]


def key_to_seed(key) -> int:
    """The fastinit seed of a JAX PRNG key (typed or legacy uint32 array).

    >>> import jax
    >>> key_to_seed(jax.random.key(42)), key_to_seed(jax.random.PRNGKey(42))
    (42, 42)
    """
    dtype = getattr(key, "dtype", None)
    if dtype is None or not any(jnp.issubdtype(dtype, t) for t in (jax.dtypes.prng_key, jnp.unsignedinteger)):
        raise TypeError(f"key must be a JAX PRNG key (jax.random.key or PRNGKey), got {type(key).__name__}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    words = np.asarray(key).astype(np.uint32).reshape(-1)
    if words.size == 2:
        return (int(words[0]) << 32) | int(words[1])
    return int.from_bytes(hashlib.blake2b(words.tobytes(), digest_size=8).digest(), "little")


def _dtype(dtype):
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float_ if dtype is None else dtype))


def _real_param(value, argname: str) -> float:
    """``value`` as a float: a real number, or a 0-d real JAX / NumPy array (JAX's tests pass
    ``jnp.array(1.0)``); the array's dtype never reaches the output."""
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{argname} must be a concrete number, got a traced value: build the initializer outside jax.jit"
        )
    if isinstance(value, (np.ndarray, jax.Array)):
        real = any(jnp.issubdtype(value.dtype, t) for t in (jnp.floating, jnp.integer))  # bfloat16 too
        if value.shape != () or not real:
            raise TypeError(
                f"{argname} must be a real number or a 0-d real array, got a {value.shape} {value.dtype} array"
            )
        value = float(np.asarray(value))
    return driver.check_real(value, argname)


def _padded(spec, ndim: int):
    """``spec`` with ``None`` for the dimensions it leaves out, as JAX's results carry it."""
    if len(spec) >= ndim:
        return spec
    extra = {k: getattr(spec, k) for k in ("unreduced", "reduced") if getattr(spec, k, None)}
    return jax.sharding.PartitionSpec(*spec, *([None] * (ndim - len(spec))), **extra)


def _sharding(out_sharding, ndim: int, *, traced: bool = False):
    """``out_sharding`` as a concrete ``Sharding`` (None stays None): a ``PartitionSpec`` is
    taken on the mesh of ``jax.set_mesh``, as JAX does. ``traced``: for ``jax.device_put``
    under ``jax.jit``, where the spec itself is taken (JAX resolves it on the context mesh)."""
    if out_sharding is None:
        return None
    if isinstance(out_sharding, jax.sharding.PartitionSpec):
        if traced:
            return _padded(out_sharding, ndim)
        get_mesh = getattr(jax.sharding, "get_mesh", None)  # JAX >= 0.7
        mesh = get_mesh() if get_mesh is not None else None
        if mesh is None or mesh.empty:
            raise ValueError(
                f"out_sharding={out_sharding} is a PartitionSpec, which needs a mesh: call the initializer "
                "under `with jax.set_mesh(mesh):`, or pass a NamedSharding"
            )
        return jax.sharding.NamedSharding(mesh, _padded(out_sharding, ndim))
    if isinstance(out_sharding, jax.sharding.NamedSharding):
        if len(out_sharding.spec) >= ndim:
            return out_sharding
        return jax.sharding.NamedSharding(
            out_sharding.mesh, _padded(out_sharding.spec, ndim), memory_kind=out_sharding.memory_kind
        )
    if isinstance(out_sharding, jax.sharding.Sharding):
        return out_sharding
    raise TypeError(
        f"out_sharding must be a jax.sharding.Sharding or a PartitionSpec, got {type(out_sharding).__name__}"
    )


def _host(x) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else x


def sharded(fn, shape, *args, sharding, seed=0, name=None, dtype=None, **params):
    """A ``jax.Array`` of ``fn(shape, *args, **params, seed=, name=, dtype=)`` laid out by
    ``sharding`` (a ``Sharding``, or a ``PartitionSpec`` under ``jax.set_mesh``), each
    device's block generated alone from its global index.

    >>> import jax, numpy as np, fastinit, fastinit.jax
    >>> mesh = jax.sharding.Mesh(np.array(jax.devices()), ("x",))
    >>> spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("x"))
    >>> a = fastinit.jax.sharded(fastinit.normal, (8, 4), 0.0, 0.02, sharding=spec, seed=1, name="w")
    >>> bool(np.array_equal(np.asarray(a), np.asarray(fastinit.normal((8, 4), 0.0, 0.02, seed=1, name="w"))))
    True
    """
    shape = driver.check_shape(shape)
    dt = _dtype(dtype)
    sharding = _sharding(sharding, len(shape))

    def block(index):
        return fn(shape, *args, **params, seed=seed, name=name, dtype=dt.name, index=index).numpy()

    return jax.make_array_from_callback(shape, sharding, block)


def _make(sample, default_dtype=None, complex_sample=None, jax_name=None):
    """An initializer ``init(key, shape, dtype, out_sharding)`` from ``sample(shape, seed=,
    dtype=, index=)`` (a fastinit array) and, for complex dtypes, ``complex_sample`` (the same
    arguments, a NumPy array of the given complex dtype)."""

    def init(key, shape, dtype=default_dtype, out_sharding=None):
        dtype = _dtype(dtype)
        shape = driver.check_shape(shape)
        if dtype.kind == "c":
            if complex_sample is None:
                raise ValueError(f"dtype argument to `{jax_name}` must be a float dtype, got {dtype.name}")

            def draw(seed, index=None):
                return complex_sample(shape, seed=seed, dtype=dtype, index=index)
        else:

            def draw(seed, index=None):
                return sample(shape, seed=seed, dtype=dtype.name, index=index)

        def host(key_data):
            return _host(draw(key_to_seed(key_data)))

        if isinstance(key, jax.core.Tracer):
            data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
            x = jax.pure_callback(host, jax.ShapeDtypeStruct(shape, dtype), data, vmap_method="sequential")
            # under jax.jit JAX places arrays: there device_put is the sharding constraint
            sharding = _sharding(out_sharding, len(shape), traced=True)
            return x if sharding is None else jax.device_put(x, sharding)
        sharding = _sharding(out_sharding, len(shape))
        if sharding is not None:
            seed = key_to_seed(key)
            return jax.make_array_from_callback(shape, sharding, lambda index: _host(draw(seed, index)))
        result = draw(key_to_seed(key))
        return jnp.asarray(result) if dtype.kind == "c" else jnp.from_dlpack(result)

    return init


def _full(shape, value, dtype, out_sharding):
    dtype = _dtype(dtype)
    ndim = len(driver.check_shape(shape))
    if out_sharding is None:
        return jnp.full(shape, value, dtype)
    if isinstance(jnp.zeros((), dtype), jax.core.Tracer):  # under jax.jit (every value is traced there)
        return jax.device_put(jnp.full(shape, value, dtype), _sharding(out_sharding, ndim, traced=True))
    return jnp.full(shape, value, dtype, device=_sharding(out_sharding, ndim))


def zeros(key, shape, dtype=None, out_sharding=None):
    """An array of zeros (the key is ignored), as ``jax.nn.initializers.zeros``."""
    return _full(shape, 0, dtype, out_sharding)


def ones(key, shape, dtype=None, out_sharding=None):
    """An array of ones (the key is ignored), as ``jax.nn.initializers.ones``."""
    return _full(shape, 1, dtype, out_sharding)


def constant(value, dtype=None):
    """Initializer returning ``value`` everywhere (broadcast to the shape), as
    ``jax.nn.initializers.constant``.

    >>> import jax, fastinit.jax
    >>> fastinit.jax.constant(-7)(jax.random.key(0), (2, 3)).tolist()
    [[-7.0, -7.0, -7.0], [-7.0, -7.0, -7.0]]
    """

    def init(key, shape, dtype=dtype, out_sharding=None):
        return _full(shape, value, dtype, out_sharding)

    return init


# ---- complex dtypes (see the module docstring) ----------------------------------------------------

# JAX's divisor for its modulus-truncated complex normal (jax.nn.initializers.variance_scaling)
_JAX_COMPLEX_TRUNCATED_STD = 0.95311164380491208


def _real_dtype(dtype) -> str:
    return "float32" if np.dtype(dtype) == np.complex64 else "float64"


def _pair_index(shape, index):
    """The index of the real stream of shape ``shape + (2,)`` that holds ``index``'s elements."""
    return None if index is None else (*driver.normalized_index(shape, index), slice(None))


def _pairs_to_complex(pairs, dtype) -> np.ndarray:
    # (..., 2) C-contiguous floats of the matching width are (real, imag) in complex layout
    return np.ascontiguousarray(pairs).view(dtype)[..., 0]


def _complex_normal(shape, std, *, seed, dtype, index=None):
    pairs = samplers.normal((*shape, 2), 0.0, std / math.sqrt(2), seed=seed, dtype=_real_dtype(dtype),
                       index=_pair_index(shape, index))  # fmt: skip
    return _pairs_to_complex(pairs.numpy(), dtype)


def _complex_polar(shape, law, scale, *, seed, dtype, index=None):
    """r * exp(2 pi i v) * scale, r from u: JAX's uniform disk or modulus-truncated normal."""
    uv = samplers.uniform((*shape, 2), seed=seed, dtype=_real_dtype(dtype), index=_pair_index(shape, index))
    uv = np.asarray(uv.numpy(), dtype=np.float64)
    u, v = uv[..., 0], uv[..., 1]
    if law == "uniform":
        r = np.sqrt(2.0 * u)
    else:  # |z|**2 ~ Exp(1) truncated to [0, 4): inverse CDF with (1 - e**-4) u
        r = np.sqrt(-np.log1p(np.expm1(-4.0) * u))
    return ((scale * r) * np.exp(2j * np.pi * v)).astype(dtype)


def _complex_variance_scaling(shape, scale, mode, distribution, in_axis, out_axis, batch_axis, *, seed, dtype,
                              index=None):  # fmt: skip
    check_mode_and_distribution(mode, distribution)
    if 0 in shape:  # nothing to draw, and the fans may be 0
        return np.zeros(driver.result_shape(shape, index), dtype)
    fan_in, fan_out = compute_fans(
        shape, layout="jax", in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis
    )
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
         "fan_geo_avg": (fan_in * fan_out) ** 0.5}[mode]  # fmt: skip
    std = math.sqrt(scale / n)
    if distribution in ("normal", "untruncated_normal"):
        return _complex_normal(shape, std, seed=seed, dtype=dtype, index=index)
    if distribution == "uniform":
        return _complex_polar(shape, "uniform", std, seed=seed, dtype=dtype, index=index)
    return _complex_polar(
        shape, "truncated", std / _JAX_COMPLEX_TRUNCATED_STD, seed=seed, dtype=dtype, index=index
    )


def _unitary(rows: int, cols: int, *, seed, dtype) -> np.ndarray:
    """A Haar (rows, cols) matrix with orthonormal columns (tall) or rows (wide): QR of a
    complex normal matrix, columns of Q times the phase of diag R (Mezzadri 2007)."""
    g = _complex_normal((rows, cols), 1.0, seed=seed, dtype=dtype)
    tall = g if rows >= cols else g.T
    with factorization_threads(rows * cols):
        q, r = np.linalg.qr(tall)
    d = np.diagonal(r)
    q *= np.where(d == 0, 1, d / np.where(d == 0, 1, np.abs(d)))
    return q if rows >= cols else q.T


def _complex_orthogonal(shape, scale, column_axis, *, seed, dtype, index=None):
    if len(shape) < 2:
        raise ValueError("orthogonal initializer requires at least a 2D shape")
    if not -len(shape) <= column_axis < len(shape):
        raise ValueError(f"column_axis={column_axis} is out of range for a shape {shape}")
    if 0 in shape:
        return np.zeros(driver.result_shape(shape, index), dtype)
    cols = shape[column_axis]
    q = _unitary(math.prod(shape) // cols, cols, seed=seed, dtype=dtype) * dtype.type(scale)
    q = np.moveaxis(q.reshape(tuple(np.delete(shape, column_axis)) + (cols,)), -1, column_axis)
    return np.ascontiguousarray(q if index is None else q[driver.normalized_index(shape, index)])


def _complex_delta_orthogonal(shape, scale, column_axis, *, seed, dtype, index=None):
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"Delta orthogonal initializer requires a 3D, 4D or 5D shape, got {shape}")
    if shape[-1] < shape[-2]:
        raise ValueError("`fan_in` must be less or equal than `fan_out`. ")
    w = np.zeros(shape, dtype)
    w[tuple((k - 1) // 2 for k in shape[:-2])] = _complex_orthogonal(
        shape[-2:], scale, column_axis, seed=seed, dtype=dtype
    )
    return np.ascontiguousarray(w if index is None else w[driver.normalized_index(shape, index)])


# ---- the initializers --------------------------------------------------------------------------


def _check_stddev(stddev) -> float:
    # (checked here so that the error names stddev, not the sampler's std)
    stddev = _real_param(stddev, "stddev")
    if stddev < 0:
        raise ValueError(f"stddev={stddev} must be >= 0")
    return stddev


def uniform(scale=1e-2, dtype=None):
    """U[0, scale), as ``jax.nn.initializers.uniform`` (real dtypes only, as JAX's).

    >>> import jax, fastinit.jax
    >>> fastinit.jax.uniform(0.5)(jax.random.key(0), (2, 3)).shape
    (2, 3)
    """
    scale = _real_param(scale, "scale")
    if scale < 0:
        raise ValueError(f"scale={scale} must be >= 0")
    return _make(lambda shape, **kw: samplers.uniform(shape, 0.0, scale, **kw), dtype, jax_name="uniform")


def normal(stddev=1e-2, dtype=None):
    """N(0, stddev**2), as ``jax.nn.initializers.normal``; for a complex dtype, real and
    imaginary parts each N(0, stddev**2 / 2).

    >>> import jax, jax.numpy as jnp, fastinit.jax
    >>> fastinit.jax.normal(jnp.array(0.1))(jax.random.key(0), (2,), jnp.bfloat16).dtype
    dtype(bfloat16)
    """
    stddev = _check_stddev(stddev)
    return _make(
        lambda shape, **kw: samplers.normal(shape, 0.0, stddev, **kw),
        dtype,
        lambda shape, **kw: _complex_normal(shape, stddev, **kw),
    )


def truncated_normal(stddev=1e-2, dtype=None, lower=-2.0, upper=2.0):
    """stddev times a standard normal truncated to [lower, upper], as
    ``jax.nn.initializers.truncated_normal`` (no variance correction; real dtypes only)."""
    stddev = _check_stddev(stddev)
    lower, upper = _real_param(lower, "lower"), _real_param(upper, "upper")
    return _make(
        lambda shape, **kw: samplers.truncated_normal(shape, 0.0, stddev, lower=lower, upper=upper, **kw),
        dtype,
        jax_name="truncated_normal",
    )


def variance_scaling(scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """``jax.nn.initializers.variance_scaling`` with fastinit's streams (complex dtypes as JAX:
    see the module docstring).

    >>> import jax, fastinit.jax
    >>> init = fastinit.jax.variance_scaling(2.0, "fan_in", "normal")
    >>> init(jax.random.key(0), (64, 32)).shape
    (64, 32)
    """
    scale = _real_param(scale, "scale")

    def sample(shape, **kw):
        return _variance_scaling(shape, scale, mode, distribution, layout="jax", in_axis=in_axis, out_axis=out_axis,
                                 batch_axis=batch_axis, **kw)  # fmt: skip

    def complex_sample(shape, **kw):
        return _complex_variance_scaling(
            shape, scale, mode, distribution, in_axis, out_axis, batch_axis, **kw
        )

    return _make(sample, dtype, complex_sample)


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal


def orthogonal(scale=1.0, column_axis=-1, dtype=None):
    """``jax.nn.initializers.orthogonal``: columns along ``column_axis`` orthonormal (times
    scale); unitary for a complex dtype.

    >>> import jax, jax.numpy as jnp, numpy as np, fastinit.jax
    >>> q = np.asarray(fastinit.jax.orthogonal()(jax.random.key(0), (5, 3), jnp.complex64))
    >>> bool(np.allclose(q.conj().T @ q, np.eye(3), atol=1e-5))
    True
    """
    scale = _real_param(scale, "scale")
    return _make(
        lambda shape, **kw: _orthogonal(shape, scale, column_axis=column_axis, **kw),
        dtype,
        lambda shape, **kw: _complex_orthogonal(shape, scale, column_axis, **kw),
    )


def delta_orthogonal(scale=1.0, column_axis=-1, dtype=None):
    """``jax.nn.initializers.delta_orthogonal``."""
    scale = _real_param(scale, "scale")
    return _make(
        lambda shape, **kw: _delta_orthogonal(shape, scale, column_axis=column_axis, **kw),
        dtype,
        lambda shape, **kw: _complex_delta_orthogonal(shape, scale, column_axis, **kw),
    )
