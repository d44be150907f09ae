"""fastinit.dlpack: the ctypes mirrors, the producer's lifetime rules, the consumer."""

import array
import ctypes
import gc
import sys
import threading
import weakref

import numpy as np
import pytest

from fastinit import dlpack
from fastinit.array import FastArray
from fastinit.dlpack import (
    DLPACK_FLAG_BITMASK_IS_COPIED,
    DLPACK_FLAG_BITMASK_READ_ONLY,
    DLDeviceType,
    DLManagedTensor,
    DLManagedTensorVersioned,
    DLTensor,
    make_capsule,
    writable_view,
)
from fastinit.dtypes import DTYPES

torch = pytest.importorskip("torch")
jnp = pytest.importorskip("jax.numpy")

F32 = DTYPES["float32"]


class Exporter:
    """Hands out a prepared capsule, as a foreign producer would."""

    def __init__(self, capsule, device=(1, 0)):
        self.capsule, self.device = capsule, device

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return self.device


class LegacyProducer:
    """A producer from before DLPack 1.0: __dlpack__ takes no max_version."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, stream=None):
        return self.array.__dlpack__()

    def __dlpack_device__(self):
        return (1, 0)


def owned(shape=(3, 4), dtype="float32"):
    x = FastArray.empty(shape, dtype)
    x.raw[...] = np.arange(x.size, dtype=np.uint16).reshape(shape)
    return x


def capsule_name(capsule):
    return repr(capsule).split('"')[1]


@pytest.fixture(autouse=True)
def no_export_outlives_its_test():
    before = len(dlpack._LIVE)
    yield
    if len(dlpack._LIVE) != before:
        gc.collect()  # slow with torch and jax loaded, so only when needed
    assert len(dlpack._LIVE) == before


# ---- layout -------------------------------------------------------------------------


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="64-bit layout")
def test_struct_layout_matches_dlpack_h():
    assert ctypes.sizeof(DLTensor) == 48
    assert DLTensor.byte_offset.offset == 40
    assert ctypes.sizeof(DLManagedTensor) == 64
    assert DLManagedTensor.deleter.offset == 56
    assert ctypes.sizeof(DLManagedTensorVersioned) == 80
    offsets = {
        name: getattr(DLManagedTensorVersioned, name).offset
        for name in ("version", "manager_ctx", "deleter", "flags", "dl_tensor")
    }
    assert offsets == {
        "version": 0,
        "manager_ctx": 8,
        "deleter": 16,
        "flags": 24,
        "dl_tensor": 32,
    }
    assert (DLPACK_FLAG_BITMASK_READ_ONLY, DLPACK_FLAG_BITMASK_IS_COPIED) == (1, 2)
    assert (DLDeviceType.kDLCPU, DLDeviceType.kDLCUDA) == (1, 2)


# ---- producer ------------------------------------------------------------------------


def read_managed(capsule, versioned):
    get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi)
    )
    name = b"dltensor_versioned" if versioned else b"dltensor"
    struct = DLManagedTensorVersioned if versioned else DLManagedTensor
    return struct.from_address(get_pointer(capsule, name))


@pytest.mark.parametrize("versioned", [False, True])
def test_make_capsule_fields(versioned):
    a = np.zeros((2, 5), dtype=np.float32)
    view = a[:, ::2]
    cap = make_capsule(a, view.ctypes.data, view.shape, (5, 2), F32, versioned=versioned)
    assert capsule_name(cap) == ("dltensor_versioned" if versioned else "dltensor")
    managed = read_managed(cap, versioned)
    t = managed.dl_tensor
    assert (t.device.device_type, t.device.device_id) == (1, 0)
    assert (t.ndim, t.dtype.code, t.dtype.bits, t.dtype.lanes) == (2, 2, 32, 1)
    assert (t.shape[0], t.shape[1], t.strides[0], t.strides[1]) == (2, 3, 5, 2)
    assert (t.data, t.byte_offset) == (view.ctypes.data, 0)
    if versioned:
        assert (managed.version.major, managed.version.minor) == dlpack.DLPACK_VERSION
        assert managed.flags == 0
    # a consumer sees the strided view
    assert np.shares_memory(np.from_dlpack(Exporter(cap)), a)


def test_make_capsule_flags_and_zero_size():
    a = np.zeros(0, dtype=np.float32)
    cap = make_capsule(a, a.ctypes.data, (0,), (1,), F32, versioned=True, read_only=True, copied=True)
    managed = read_managed(cap, True)
    assert managed.flags == DLPACK_FLAG_BITMASK_READ_ONLY | DLPACK_FLAG_BITMASK_IS_COPIED
    assert managed.dl_tensor.data is None  # dlpack.h: NULL data for size 0
    with pytest.raises(ValueError, match="legacy"):
        make_capsule(a, a.ctypes.data, (0,), (1,), F32, versioned=False, copied=True)
    with pytest.raises(ValueError, match="strides"):
        make_capsule(a, a.ctypes.data, (0,), (), F32, versioned=True)


class Owner:
    """Something a weakref can watch, holding the exported memory."""

    def __init__(self, n=8):
        # aligned for XLA, which copies (and frees the capsule at once) otherwise
        self.a = FastArray.empty(n, "float32").raw
        self.a[...] = np.arange(n)


def capsule_of(owner, versioned):
    a = owner.a
    return make_capsule(owner, a.ctypes.data, a.shape, (1,), F32, versioned=versioned)


@pytest.mark.parametrize("versioned", [False, True])
def test_unconsumed_capsule_releases_owner(versioned):
    owner = Owner()
    ref = weakref.ref(owner)
    cap = capsule_of(owner, versioned)
    del owner
    assert ref() is not None
    del cap
    assert ref() is None  # at once: the capsule destructor ran the deleter


def consumers():
    return {
        "numpy": np.from_dlpack,
        "torch": torch.from_dlpack,
        "jax": jnp.from_dlpack,
    }


@pytest.mark.parametrize(
    ("consumer", "versioned"),
    [
        ("numpy", False),
        ("numpy", True),
        ("torch", False),
        ("torch", True),
        ("jax", False),
    ],
)
def test_owner_released_after_consumer_deletes_tensor(consumer, versioned):
    owner = Owner()
    ref = weakref.ref(owner)
    exporter = Exporter(capsule_of(owner, versioned))
    tensor = consumers()[consumer](exporter)
    assert capsule_name(exporter.capsule).startswith("used_")
    del owner, exporter
    gc.collect()
    assert ref() is not None, "the consumer's tensor must keep the memory alive"
    assert float(tensor[3]) == 3.0
    del tensor
    gc.collect()
    assert ref() is None


def test_jax_refuses_a_versioned_capsule_and_the_owner_is_still_released():
    # jax 0.10 reads only legacy capsules (its from_dlpack never passes max_version)
    owner = Owner()
    ref = weakref.ref(owner)
    exporter = Exporter(capsule_of(owner, versioned=True))
    del owner
    with pytest.raises(Exception, match="dltensor_versioned"):
        jnp.from_dlpack(exporter)
    assert capsule_name(exporter.capsule) == "dltensor_versioned"
    del exporter
    assert ref() is None


def test_deleter_may_be_called_from_a_thread_without_the_gil():
    owner = Owner()
    ref = weakref.ref(owner)
    cap = capsule_of(owner, versioned=True)
    del owner
    managed = read_managed(cap, True)
    set_name = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_SetName", ctypes.pythonapi)
    )
    keep_name = ctypes.c_char_p(b"used_dltensor_versioned")
    set_name(cap, keep_name)  # consumed: from now on the deleter is ours to call
    deleter, address = managed.deleter, ctypes.addressof(managed)
    # a CFUNCTYPE call releases the GIL, as a C++ thread freeing a tensor would
    worker = threading.Thread(target=deleter, args=(address,))
    worker.start()
    worker.join()
    assert ref() is None
    del cap, keep_name


def test_exception_in_flight_survives_capsule_drop():
    # NumPy rejects a bfloat16 capsule and drops it with its error already set; the
    # destructor must not swallow or replace that error.
    x = owned(dtype="bfloat16")
    ref = weakref.ref(x)
    with pytest.raises(RuntimeError, match="[Uu]nsupported dtype"):
        np.from_dlpack(x)
    with pytest.raises(ZeroDivisionError):
        [x.__dlpack__(), 1 / 0]  # capsule freed while the error unwinds
    del x
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("consumer", ["numpy", "torch"])
def test_exception_in_flight_survives_deleter(consumer):
    # The consumer's temporary is freed while the shape error propagates, which calls
    # our deleter with the error set.
    x = owned((4,))
    ref = weakref.ref(x)
    if consumer == "torch":
        with pytest.raises(RuntimeError, match="size"):
            torch.zeros(3).copy_(torch.from_dlpack(x))
    else:
        with pytest.raises(ValueError, match="broadcast"):
            np.zeros(3)[:] = np.from_dlpack(x)
    del x
    gc.collect()
    assert ref() is None


def test_no_leak_over_10000_round_trips():
    x = owned((16,))
    base = x.raw
    refs_before = sys.getrefcount(x)
    live_before = len(dlpack._LIVE)
    for i in range(10_000):
        consumer = (np.from_dlpack, torch.from_dlpack)[i % 2]
        y = consumer(x)
        assert int(y[5]) == 5
        del y
        if i % 3 == 0:
            del_unconsumed = x.__dlpack__(max_version=(1, 0))
            del del_unconsumed
    gc.collect()
    assert sys.getrefcount(x) == refs_before
    assert len(dlpack._LIVE) == live_before
    assert x.raw is base


# ---- consumer ------------------------------------------------------------------------

TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def torch_storage(t):
    """The tensor's values as NumPy storage (bfloat16 as its uint16 bits)."""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


@pytest.mark.parametrize("name", list(TORCH_DTYPES))
@pytest.mark.parametrize(
    "select",
    [
        lambda t: t,
        lambda t: t.T,
        lambda t: t[:, ::2],
        lambda t: t[1:, 2:],
        lambda t: t.T[1:, ::3],
        lambda t: t[2],
    ],
    ids=["contiguous", "T", "every_other_column", "offset", "T_sliced", "row"],
)
def test_writes_through_torch_views_reach_the_right_elements(name, select):
    base = torch.zeros(4, 6, dtype=TORCH_DTYPES[name])
    target = select(base)
    storage = DTYPES[name].storage
    values = np.arange(1, target.numel() + 1).astype(storage).reshape(target.shape)
    with writable_view(target) as view:
        assert view.dtype is DTYPES[name]
        assert view.array.dtype == storage
        assert view.shape == tuple(target.shape)
        assert view.strides == tuple(target.stride())
        view.array[...] = values
    expected = np.zeros((4, 6), dtype=storage)
    select(expected)[...] = values  # the same selection, applied by NumPy
    np.testing.assert_array_equal(torch_storage(base), expected)


def test_numpy_and_buffer_outputs():
    a = np.zeros((3, 4), dtype=np.float64)
    with writable_view(a[:, 1::2]) as view:
        view.array[...] = 7
    assert a[:, 1::2].sum() == 42 and a[:, ::2].sum() == 0

    ml_dtypes = pytest.importorskip("ml_dtypes")
    b = np.zeros(3, dtype=ml_dtypes.bfloat16)
    view = writable_view(b)
    assert (view.dtype.name, view.array.dtype) == ("bfloat16", np.uint16)
    view.array[...] = 0x3F80  # 1.0
    assert b.tolist() == [1.0, 1.0, 1.0]

    for buffer in (array.array("f", [0] * 4), array.array("d", [0] * 4)):
        with writable_view(buffer) as view:
            view.array[...] = 2.5
        assert list(buffer) == [2.5] * 4
    raw = bytearray(8)
    with writable_view(memoryview(raw).cast("f")) as view:
        assert view.dtype.name == "float32"
        view.array[...] = 1.0
    assert np.frombuffer(raw, dtype=np.float32).tolist() == [1.0, 1.0]


def test_fastarray_as_out_is_released_with_the_view():
    x = owned((5,))
    ref = weakref.ref(x)
    view = writable_view(x)
    assert view.array.ctypes.data == x.raw.ctypes.data
    view.array[...] = 3
    del x
    gc.collect()
    assert ref() is not None
    assert ref().raw.tolist() == [3] * 5
    view.release()
    gc.collect()
    assert ref() is None
    with pytest.raises(ValueError, match="released"):
        _ = view.array


def test_an_array_kept_from_the_view_keeps_the_memory():
    x = owned((5,))
    ref = weakref.ref(x)
    view = writable_view(x)
    kept = view.array[1:]
    del x
    view.release()
    gc.collect()
    assert ref() is not None  # the deleter waits for the last array over the memory
    del kept
    gc.collect()
    assert ref() is None


def test_consumed_capsule_is_renamed_and_legacy_producers_work():
    x = owned((4,))
    exporter = Exporter(x.__dlpack__(max_version=(1, 0)))
    writable_view(exporter).release()
    assert capsule_name(exporter.capsule) == "used_dltensor_versioned"
    with pytest.raises(TypeError, match="out.*used_dltensor_versioned"):
        writable_view(exporter)
    with writable_view(LegacyProducer(x)) as view:
        view.array[...] = 9
    assert x.raw.tolist() == [9] * 4


def test_zero_size_and_0d_outputs():
    with writable_view(torch.zeros(3, 0)) as view:
        assert view.shape == (3, 0)
    t = torch.zeros(())
    with writable_view(t) as view:
        assert view.shape == ()
        view.array[...] = 4
    assert float(t) == 4.0


# ---- consumer errors: each names the argument ------------------------------------------


@pytest.mark.parametrize(
    "make_out",
    [
        lambda: torch.zeros(3, dtype=torch.int32),
        lambda: torch.zeros(3, dtype=torch.bool),
        lambda: np.zeros(3, dtype=np.int32),
        lambda: np.zeros(3, dtype=np.uint16),  # bfloat16's storage, yet not bfloat16
        lambda: bytearray(8),
        lambda: array.array("i", [0, 0]),
    ],
    ids=["torch_int32", "torch_bool", "np_int32", "np_uint16", "bytearray", "array_i"],
)
def test_unsupported_dtypes(make_out):
    with pytest.raises(TypeError, match=r"^out has .*float32, float64, float16, bfloat16"):
        writable_view(make_out())


@pytest.mark.parametrize(
    "make_out",
    [
        lambda: np.broadcast_to(np.zeros(3, dtype=np.float32), (2, 3)),
        lambda: memoryview(np.zeros(3, dtype=np.float32)).toreadonly(),
        lambda: memoryview(b"\0" * 8).cast("f"),
        lambda: Exporter(
            FastArray(_read_only(np.zeros(3, np.float32)), "float32").__dlpack__(max_version=(1, 0))
        ),
    ],
    ids=["np_readonly", "memoryview_readonly", "bytes", "versioned_read_only_flag"],
)
def test_read_only_outputs(make_out):
    with pytest.raises(ValueError, match=r"^out is (a )?read-only"):
        writable_view(make_out())


def _read_only(a):
    a.flags.writeable = False
    return a


def test_non_cpu_devices():
    class OnCuda:
        def __dlpack__(self, **kwargs):
            raise AssertionError("must be refused before export")

        def __dlpack_device__(self):
            return (DLDeviceType.kDLCUDA, 0)

    with pytest.raises(ValueError, match="out is on a CUDA device.*device='cuda'"):
        writable_view(OnCuda())

    # a capsule that only says so inside: consumed, refused, and released
    owner = Owner()
    ref = weakref.ref(owner)
    a = owner.a
    cap = make_capsule(owner, a.ctypes.data, a.shape, (1,), F32, (10, 1), versioned=True)
    del owner, a
    with pytest.raises(ValueError, match="out is on a ROCm device"):
        writable_view(Exporter(cap, device=(1, 0)))
    del cap
    assert ref() is None


def test_copied_export_is_refused():
    x = owned((3,))
    with pytest.raises(ValueError, match="out was copied"):
        writable_view(Exporter(x.__dlpack__(max_version=(1, 0), copy=True)))


@pytest.mark.parametrize(
    "make_out",
    [
        lambda: torch.zeros(3).expand(4, 3),
        lambda: torch.zeros(10).as_strided((3, 3), (1, 1)),
        lambda: np.lib.stride_tricks.as_strided(np.zeros(10, np.float32), (3, 3), (4, 4), writeable=True),
        lambda: np.lib.stride_tricks.as_strided(np.zeros(10, np.float32), (2, 5), (0, 4), writeable=True),
    ],
    ids=["torch_expand", "torch_overlap", "np_overlap", "np_zero_stride"],
)
def test_overlapping_outputs(make_out):
    with pytest.raises(ValueError, match=r"^out has (stride 0|overlapping memory)"):
        writable_view(make_out())


def test_jax_arrays_are_refused():
    with pytest.raises(TypeError, match="out is a JAX array.*immutable"):
        writable_view(jnp.zeros(3))


def test_requires_grad_is_explained():
    t = torch.zeros(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"out requires grad.*\.detach\(\).*no_grad"):
        writable_view(t)
    with torch.no_grad(), writable_view(t.detach()) as view:
        view.array[...] = 1
    assert t.sum().item() == 3.0


def test_other_errors_and_argname():
    with pytest.raises(TypeError, match="^buf must be a NumPy array"):
        writable_view([0.0, 1.0], argname="buf")
    with pytest.raises(ValueError, match="^buf has non-native byte order"):
        writable_view(np.zeros(3, dtype=">f4"), argname="buf")
    with pytest.raises(TypeError, match="^buf has DLPack dtype"):
        writable_view(torch.zeros(2, dtype=torch.complex64), argname="buf")
