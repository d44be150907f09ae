"""fastinit.array.FastArray: description, host access, and zero-copy DLPack export."""

import ctypes
import gc
import weakref

import numpy as np
import pytest

from fastinit import dlpack
from fastinit.array import ALIGNMENT, FastArray, c_strides
from fastinit.dtypes import DTYPES

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy
ml_dtypes = pytest.importorskip("ml_dtypes")

NAMES = list(DTYPES)
TORCH = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
JAX = {
    "float32": jnp.float32,
    "float64": jnp.float64,
    "float16": jnp.float16,
    "bfloat16": jnp.bfloat16,
}
SHAPES = [(), (0,), (3, 0, 2), (7,), (3, 5), (2, 1, 3, 1, 2, 1, 2, 3)]


def make(shape, name):
    """A FastArray holding 0.5 * (0, 1, 2, ...), exact in every dtype for small sizes."""
    x = FastArray.empty(shape, name)
    values = 0.5 * np.arange(x.size, dtype=np.float32).reshape(shape)
    x.numpy()[...] = values.astype(DTYPES[name].numpy_dtype())
    return x


def to_float64(y):
    if isinstance(y, torch.Tensor):
        return y.to(torch.float64).numpy()
    return np.asarray(y, dtype=np.float64)


def expected(x):
    return 0.5 * np.arange(x.size, dtype=np.float64).reshape(x.shape)


@pytest.fixture(autouse=True)
def no_export_outlives_its_test():
    before = len(dlpack._LIVE)
    yield
    if len(dlpack._LIVE) != before:
        gc.collect()
    assert len(dlpack._LIVE) == before


@pytest.fixture(scope="module", autouse=True)
def jax_x64():
    # float64 stays float64 in JAX only with x64 on
    with jax.enable_x64(True):
        yield


# ---- construction and description ------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_description(name):
    x = make((3, 4), name)
    d = DTYPES[name]
    assert x.dtype is d and x.device == "cpu"
    assert (x.shape, x.ndim, x.size, len(x)) == ((3, 4), 2, 12, 3)
    assert (x.itemsize, x.nbytes) == (d.itemsize, 12 * d.itemsize)
    assert x.raw.dtype == d.storage and x.raw.shape == (3, 4)
    assert x.numpy().dtype == d.numpy_dtype()
    assert np.shares_memory(x.numpy(), x.raw)
    assert x.tobytes() == x.raw.tobytes() and len(x.tobytes()) == x.nbytes
    np.testing.assert_array_equal(x.numpy().astype(np.float64), expected(x))


def test_empty_is_aligned():
    for shape in [(), (1,), (3, 7), (0, 4), 5]:
        for name in NAMES:
            x = FastArray.empty(shape, name)
            assert x.raw.ctypes.data % ALIGNMENT == 0 or x.size == 0
            assert x.raw.flags.c_contiguous and x.raw.dtype == DTYPES[name].storage
    assert FastArray.empty(5, "f4").shape == (5,)
    with pytest.raises(ValueError, match="negative"):
        FastArray.empty((2, -1), "float32")


def test_constructor_validates():
    with pytest.raises(TypeError, match="stored as uint16"):
        FastArray(np.zeros(3, dtype=np.float16), "bfloat16")
    with pytest.raises(ValueError, match="C-contiguous"):
        FastArray(np.zeros((3, 4), dtype=np.float32).T, "float32")
    with pytest.raises(TypeError, match="NumPy array"):
        FastArray([1.0, 2.0], "float32")
    with pytest.raises(ValueError, match="device='cuda'"):
        FastArray(np.zeros(3, dtype=np.float32), "float32", device="cuda")
    with pytest.raises(TypeError, match="dtype='int8' is not supported"):
        FastArray(np.zeros(3, dtype=np.int8), "int8")


@pytest.mark.parametrize(("device", "error"), [("tpu", ValueError), ("cuda0", ValueError), (0, TypeError)])
def test_bad_devices_are_refused_as_the_samplers_refuse_them(device, error):
    """FastArray and the samplers read device= with one parser: the same error, word for word."""
    import fastinit

    with pytest.raises(error) as sampler_error:
        fastinit.uniform(3, device=device)
    for call in (
        lambda: FastArray.empty(3, "float32", device),
        lambda: FastArray(np.zeros(3, np.float32), "float32", device),
    ):
        with pytest.raises(error) as array_error:
            call()
        assert str(array_error.value) == str(sampler_error.value)


@pytest.mark.parametrize(
    ("shape", "error"),
    [((2, -1), ValueError), ((2.0, 3), TypeError), ("23", TypeError), ({2, 3}, TypeError),
     (np.zeros((2, 2), np.int64), TypeError), ((2**32, 2**32), ValueError)],
)  # fmt: skip
def test_bad_shapes_are_refused_as_the_samplers_refuse_them(shape, error):
    """FastArray.empty and the samplers read shape with one checker: the same error."""
    import fastinit

    with pytest.raises(error) as sampler_error:
        fastinit.uniform(shape)
    with pytest.raises(error) as array_error:
        FastArray.empty(shape, "float32")
    assert str(array_error.value) == str(sampler_error.value)


@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4), (1, 7, 1), (3, 0, 4), (0,)])
def test_c_strides_are_numpys_for_nonempty_shapes(shape):
    """The strides a new FastArray, a CUDA out= FastArray and the driver's plans all use;
    a 0-size shape keeps the strides of its nonzero dimensions (NumPy's may be anything)."""
    strides = c_strides(shape)
    if 0 not in shape:
        assert strides == tuple(s // 4 for s in np.empty(shape, np.float32).strides)
    else:
        assert strides == c_strides(tuple(max(n, 1) for n in shape))


def test_len_and_repr():
    x = make((8,), "bfloat16")
    assert repr(x) == ("FastArray([0, 0.5, 1, 1.5, 2, 2.5, ...], shape=(8,), dtype=bfloat16, device='cpu')")
    assert repr(make((), "float64")) == ("FastArray([0], shape=(), dtype=float64, device='cpu')")
    assert repr(make((2, 0), "float16")).startswith("FastArray([], shape=(2, 0)")
    with pytest.raises(TypeError, match="0-d"):
        len(make((), "float32"))
    assert len(make((0, 3), "float32")) == 0


def test_equality_is_identity():
    x = make((2,), "float32")
    y = make((2,), "float32")
    same = x
    assert x == same and x != y  # identity, not elementwise


# ---- __array__ -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_array_protocol(name):
    x = make((2, 3), name)
    a = np.asarray(x)
    assert a.dtype == DTYPES[name].numpy_dtype()
    assert a.ctypes.data == x.raw.ctypes.data  # no copy
    b = np.asarray(x, copy=False)
    assert b.ctypes.data == x.raw.ctypes.data
    c = np.array(x, copy=True)
    assert c.ctypes.data != x.raw.ctypes.data
    np.testing.assert_array_equal(c.astype(np.float64), expected(x))
    d = np.asarray(x, dtype=np.float64)
    np.testing.assert_array_equal(d, expected(x))
    if name != "float64":
        with pytest.raises(ValueError, match="copy=False"):
            np.asarray(x, dtype=np.float64, copy=False)


# ---- DLPack export ---------------------------------------------------------------------


def pointer(y):
    if isinstance(y, torch.Tensor):
        return y.data_ptr()
    if isinstance(y, np.ndarray):
        return y.ctypes.data
    return y.unsafe_buffer_pointer()


class Capsule:
    """Gives consumers a capsule we asked for ourselves (legacy or versioned)."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("consumer", "how"),
    [
        ("numpy", "protocol"),  # versioned: numpy asks for max_version=(1, 0)
        ("numpy", "legacy"),
        ("torch", "protocol"),  # versioned
        ("torch", "legacy"),
        ("jax", "protocol"),  # legacy: jax passes no max_version
    ],
)
def test_consumers_take_it_without_copying(consumer, how, name, shape):
    x = make(shape, name)
    source = x if how == "protocol" else Capsule(x.__dlpack__())
    if consumer == "numpy" and name == "bfloat16":
        with pytest.raises(RuntimeError, match="[Uu]nsupported dtype"):
            np.from_dlpack(source)  # NumPy has no bfloat16
        return
    if consumer == "numpy":
        y = np.from_dlpack(source)
        assert y.dtype == DTYPES[name].storage
    elif consumer == "torch":
        y = torch.from_dlpack(source)
        assert y.dtype == TORCH[name]
    else:
        y = jnp.from_dlpack(source)
        assert y.dtype == JAX[name]
    assert tuple(y.shape) == shape
    if x.size:
        assert pointer(y) == x.raw.ctypes.data
    np.testing.assert_array_equal(to_float64(y), expected(x))


def test_torch_from_direct_versioned_capsule_and_writes_are_shared():
    x = make((4,), "float32")
    t = torch.from_dlpack(x.__dlpack__(max_version=(1, 0)))
    t += 1
    np.testing.assert_array_equal(x.raw, [1, 1.5, 2, 2.5])


def test_dlpack_device_and_capsule_kinds():
    x = make((2,), "float32")
    assert x.__dlpack_device__() == (1, 0)
    assert repr(x.__dlpack__()).startswith('<capsule object "dltensor"')
    for version in [(1, 0), (1, 1), (2, 0)]:
        cap = x.__dlpack__(max_version=version)
        assert repr(cap).startswith('<capsule object "dltensor_versioned"')
    assert repr(x.__dlpack__(max_version=(0, 8))).startswith('<capsule object "dltensor"')


def test_dlpack_keywords():
    x = make((3,), "float32")
    with pytest.raises(BufferError, match="stream"):
        x.__dlpack__(stream=1)
    with pytest.raises(BufferError, match="DLPack device"):
        x.__dlpack__(dl_device=(2, 0))
    np.from_dlpack(x, device="cpu")  # passes dl_device=(kDLCPU, 0)
    torch.from_dlpack(x, device="cpu")

    same = np.from_dlpack(x, copy=False)
    assert same.ctypes.data == x.raw.ctypes.data
    copied = np.from_dlpack(x, copy=True)
    assert copied.ctypes.data != x.raw.ctypes.data
    np.testing.assert_array_equal(copied, x.raw)
    t = torch.from_dlpack(x, copy=True)
    assert t.data_ptr() != x.raw.ctypes.data

    managed = read_managed(x.__dlpack__(max_version=(1, 0), copy=True), True)
    assert managed.flags == dlpack.DLPACK_FLAG_BITMASK_IS_COPIED
    assert managed.dl_tensor.data != x.raw.ctypes.data
    managed = read_managed(x.__dlpack__(max_version=(1, 0), copy=False), True)
    assert (managed.flags, managed.dl_tensor.data) == (0, x.raw.ctypes.data)


def read_managed(capsule, versioned):
    get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi)
    )
    name = b"dltensor_versioned" if versioned else b"dltensor"
    struct = dlpack.DLManagedTensorVersioned if versioned else dlpack.DLManagedTensor
    return struct.from_address(get_pointer(capsule, name))


def test_read_only_storage_exports_only_versioned():
    storage = np.zeros(3, dtype=np.float32)
    storage.flags.writeable = False
    x = FastArray(storage, "float32")
    y = np.from_dlpack(x)  # versioned, READ_ONLY flag honoured by NumPy
    assert not y.flags.writeable
    with pytest.raises(BufferError, match="read-only"):
        x.__dlpack__()
    assert x.__dlpack__(copy=True) is not None  # a copy may be writable


@pytest.mark.parametrize("consumer", ["numpy", "torch", "jax"])
def test_consumer_keeps_the_fastarray_alive(consumer):
    x = make((64,), "float32")
    ref = weakref.ref(x)
    y = {"numpy": np.from_dlpack, "torch": torch.from_dlpack, "jax": jnp.from_dlpack}[consumer](x)
    del x
    gc.collect()
    assert ref() is not None
    np.testing.assert_array_equal(to_float64(y), 0.5 * np.arange(64))
    del y
    gc.collect()
    assert ref() is None
