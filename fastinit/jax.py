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

Sharded arrays: pass ``out_sharding=`` (a ``jax.sharding.Sharding``) to any initializer, or use
``fastinit.jax.sharded(fastinit.normal, shape, ..., sharding=...)`` for any sampler or scheme:
``jax.make_array_from_callback`` asks for each device's block, which is generated alone from
its global position (``index=``), with no communication; the result equals the unsharded
array for every mesh and partitioning.

JAX semantics where they differ from torch's: he_* and glorot_normal / lecun_normal use
variance_scaling's truncated normal; fans follow the JAX layout ``(..., in, out)``.
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from . import api
from .schemes import delta_orthogonal as _delta_orthogonal
from .schemes import orthogonal as _orthogonal
from .schemes import variance_scaling as _variance_scaling

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


def sharded(fn, shape, *args, sharding, seed=0, name=None, dtype=None, **params):
    """A ``jax.Array`` of ``fn(shape, *args, **params, seed=, name=, dtype=)`` laid out by
    ``sharding``, each device's block generated alone from its global index.

    >>> import jax, numpy as np, fastinit, fastinit.jax
    >>> mesh = jax.sharding.Mesh(np.array(jax.devices()), ("x",))
    >>> spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("x"))
    >>> a = fastinit.jax.sharded(fastinit.normal, (8, 4), 0.0, 0.02, sharding=spec, seed=1, name="w")
    >>> bool(np.array_equal(np.asarray(a), np.asarray(fastinit.normal((8, 4), 0.0, 0.02, seed=1, name="w"))))
    True
    """
    shape = api.check_shape(shape)
    dt = _dtype(dtype)

    def block(index):
        return fn(shape, *args, **params, seed=seed, name=name, dtype=dt.name, index=index).numpy()

    return jax.make_array_from_callback(shape, sharding, block)


def _make(sample, default_dtype=None):
    """An initializer ``init(key, shape, dtype, out_sharding)`` from ``sample(shape, seed=, dtype=)``."""

    def init(key, shape, dtype=default_dtype, out_sharding=None):
        dtype = _dtype(dtype)
        shape = api.check_shape(shape)
        if out_sharding is not None:
            if isinstance(key, jax.core.Tracer):
                raise ValueError("out_sharding needs a concrete key: call the initializer outside jax.jit")
            return sharded(sample, shape, sharding=out_sharding, seed=key_to_seed(key), dtype=dtype)

        def host(key_data):
            return sample(shape, seed=key_to_seed(key_data), dtype=dtype.name).numpy()

        if isinstance(key, jax.core.Tracer):
            data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
            return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, dtype), data, vmap_method="sequential")
        result = sample(shape, seed=key_to_seed(key), dtype=dtype.name)
        return jnp.from_dlpack(result)

    return init


def zeros(key, shape, dtype=None):
    """An array of zeros (the key is ignored), as ``jax.nn.initializers.zeros``."""
    return jnp.zeros(shape, _dtype(dtype))


def ones(key, shape, dtype=None):
    """An array of ones (the key is ignored), as ``jax.nn.initializers.ones``."""
    return jnp.ones(shape, _dtype(dtype))


def constant(value, dtype=None):
    """Initializer returning ``value`` everywhere, as ``jax.nn.initializers.constant``."""
    return lambda key, shape, dtype=dtype: jnp.full(shape, value, _dtype(dtype))


def _check_stddev(stddev) -> None:
    # (checked here so that the error names stddev, not the sampler's std)
    if api.check_real(stddev, "stddev") < 0:
        raise ValueError(f"stddev={stddev} must be >= 0")


def uniform(scale=1e-2, dtype=None):
    """U[0, scale), as ``jax.nn.initializers.uniform``.

    >>> import jax, fastinit.jax
    >>> fastinit.jax.uniform(0.5)(jax.random.key(0), (2, 3)).shape
    (2, 3)
    """
    if api.check_real(scale, "scale") < 0:
        raise ValueError(f"scale={scale} must be >= 0")
    return _make(lambda shape, **kw: api.uniform(shape, 0.0, scale, **kw), dtype)


def normal(stddev=1e-2, dtype=None):
    """N(0, stddev**2), as ``jax.nn.initializers.normal``."""
    _check_stddev(stddev)
    return _make(lambda shape, **kw: api.normal(shape, 0.0, stddev, **kw), dtype)


def truncated_normal(stddev=1e-2, dtype=None, lower=-2.0, upper=2.0):
    """stddev times a standard normal truncated to [lower, upper], as
    ``jax.nn.initializers.truncated_normal`` (no variance correction)."""
    _check_stddev(stddev)
    return _make(
        lambda shape, **kw: api.truncated_normal(shape, 0.0, stddev, lower=lower, upper=upper, **kw), dtype
    )


def variance_scaling(scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """``jax.nn.initializers.variance_scaling`` with fastinit's streams.

    >>> import jax, fastinit.jax
    >>> init = fastinit.jax.variance_scaling(2.0, "fan_in", "normal")
    >>> init(jax.random.key(0), (64, 32)).shape
    (64, 32)
    """

    def sample(shape, **kw):
        return _variance_scaling(shape, scale, mode, distribution, layout="jax", in_axis=in_axis, out_axis=out_axis,
                                 batch_axis=batch_axis, **kw)  # fmt: skip

    return _make(sample, dtype)


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
    """``jax.nn.initializers.orthogonal``: columns along ``column_axis`` orthonormal (times scale)."""
    return _make(lambda shape, **kw: _orthogonal(shape, scale, column_axis=column_axis, **kw), dtype)


def delta_orthogonal(scale=1.0, column_axis=-1, dtype=None):
    """``jax.nn.initializers.delta_orthogonal``."""
    return _make(lambda shape, **kw: _delta_orthogonal(shape, scale, column_axis=column_axis, **kw), dtype)
