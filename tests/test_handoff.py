"""Sampler results go to torch / JAX / NumPy through DLPack without a copy, dtypes intact."""

import numpy as np
import pytest

import fastinit

torch = pytest.importorskip("torch")
jnp = pytest.importorskip("jax.numpy")

SAMPLERS = [
    ("uniform", lambda **kw: fastinit.uniform((33, 65), -1.0, 1.0, **kw)),
    ("normal", lambda **kw: fastinit.normal((33, 65), 0.0, 0.02, **kw)),
    ("truncated_normal", lambda **kw: fastinit.truncated_normal((33, 65), 0.0, 0.02, -0.04, 0.04, **kw)),
]
TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


@pytest.mark.parametrize("dtype", list(TORCH_DTYPES))
@pytest.mark.parametrize("label,make", SAMPLERS, ids=[s[0] for s in SAMPLERS])
def test_torch_takes_samples_without_copy(label, make, dtype):
    x = make(seed=5, name=label, dtype=dtype)
    t = torch.from_dlpack(x)
    assert t.dtype == TORCH_DTYPES[dtype]
    assert t.shape == (33, 65)
    assert t.data_ptr() == x.raw.ctypes.data
    bits = t.view(
        torch.int16 if x.dtype.itemsize == 2 else {4: torch.int32, 8: torch.int64}[x.dtype.itemsize]
    )
    assert bits.numpy().tobytes() == x.tobytes()


@pytest.mark.parametrize(
    "dtype,jax_dtype", [("float32", "float32"), ("bfloat16", "bfloat16"), ("float16", "float16")]
)
def test_jax_takes_samples_without_copy(dtype, jax_dtype):
    x = fastinit.normal((128, 64), 0.0, 1.0, seed=1, name="jax", dtype=dtype)
    a = jnp.from_dlpack(x)
    assert a.dtype == jnp.dtype(jax_dtype)
    assert a.unsafe_buffer_pointer() == x.raw.ctypes.data
    assert np.asarray(a).view(np.uint8).tobytes() == x.tobytes()


def test_numpy_takes_samples_without_copy():
    x = fastinit.uniform((7, 9), seed=2, dtype="float64")
    a = np.from_dlpack(x)
    assert a.ctypes.data == x.raw.ctypes.data
    assert np.shares_memory(a, np.asarray(x))


def test_torch_inplace_out_equals_functional():
    t = torch.empty((40, 70), dtype=torch.bfloat16)
    returned = fastinit.normal(t.shape, 0.0, 0.02, seed=1, name="w", out=t)
    assert returned is t
    expected = fastinit.normal((40, 70), 0.0, 0.02, seed=1, name="w", dtype="bfloat16")
    assert t.view(torch.int16).numpy().tobytes() == expected.tobytes()
