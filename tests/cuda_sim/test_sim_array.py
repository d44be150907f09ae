"""CUDA FastArrays under the simulator: DLPack export (kDLCUDA, the array API's stream
argument), __cuda_array_interface__, explicit host copies, refused host access, device names."""

import ctypes

import numpy as np
import pytest

import fastinit
from fastinit import dlpack
from fastinit.dlpack import DLDeviceType


def read_capsule(capsule):
    """(name, version or None, flags, dl_tensor fields) of an unconsumed capsule, left unconsumed."""
    name = dlpack._capsule_get_name_obj(capsule)
    address = dlpack._capsule_get_pointer_obj(capsule, name)
    if name == b"dltensor_versioned":
        managed = dlpack.DLManagedTensorVersioned.from_address(address)
        version, flags = (managed.version.major, managed.version.minor), managed.flags
    else:
        managed = dlpack.DLManagedTensor.from_address(address)
        version, flags = None, 0
    t = managed.dl_tensor
    return {
        "name": name,
        "version": version,
        "flags": flags,
        "device": (t.device.device_type, t.device.device_id),
        "data": (t.data or 0) + t.byte_offset,
        "shape": tuple(t.shape[i] for i in range(t.ndim)),
        "strides": tuple(t.strides[i] for i in range(t.ndim)) if t.strides else None,
        "dtype": (t.dtype.code, t.dtype.bits, t.dtype.lanes),
    }


def device_address(x) -> int:
    return x.storage._ary.ctypes.data  # the simulator's device memory is a NumPy array


@pytest.mark.parametrize("dtype, code", [("float32", 2), ("float64", 2), ("float16", 2), ("bfloat16", 4)])
@pytest.mark.parametrize("max_version", [None, (1, 0), (1, 3)])
def test_dlpack_capsule_is_kdlcuda(dtype, code, max_version):
    x = fastinit.normal((3, 5), dtype=dtype, device="cuda", seed=1)
    assert x.__dlpack_device__() == (DLDeviceType.kDLCUDA, 0)
    info = read_capsule(x.__dlpack__(max_version=max_version))
    assert info["name"] == (b"dltensor" if max_version is None else b"dltensor_versioned")
    assert info["version"] == (None if max_version is None else (1, 0))
    assert info["flags"] == 0  # writable, not a copy
    assert info["device"] == (DLDeviceType.kDLCUDA, 0)
    assert info["data"] == device_address(x)
    assert info["shape"] == (3, 5) and info["strides"] in ((5, 1), None)
    assert info["dtype"] == (code, 16 if dtype in ("float16", "bfloat16") else int(dtype[5:]), 1)


def test_dlpack_copy():
    x = fastinit.uniform((4, 3), device="cuda", seed=2)
    info = read_capsule(x.__dlpack__(copy=True, max_version=(1, 0)))
    assert info["flags"] & dlpack.DLPACK_FLAG_BITMASK_IS_COPIED
    assert info["data"] != device_address(x)
    copied = np.ctypeslib.as_array(ctypes.cast(info["data"], ctypes.POINTER(ctypes.c_float)), shape=(12,))
    assert copied.tobytes() == x.copy_to_host().tobytes()
    assert read_capsule(x.__dlpack__(copy=False))["data"] == device_address(x)


def test_dlpack_dl_device():
    x = fastinit.uniform(3, device="cuda")
    x.__dlpack__(dl_device=(DLDeviceType.kDLCUDA, 0))
    with pytest.raises(BufferError, match=r"cannot export a cuda:0 FastArray to DLPack device \(1, 0\)"):
        x.__dlpack__(dl_device=(DLDeviceType.kDLCPU, 0))


def test_fastinit_reads_its_own_cuda_capsules():
    """The DLPack consumer (out= path) sees what the producer wrote, bfloat16 included."""

    class OnlyDLPack:
        def __init__(self, x):
            self.__dlpack__, self.__dlpack_device__ = x.__dlpack__, x.__dlpack_device__

    x = fastinit.normal((2, 7), dtype="bfloat16", device="cuda")
    with dlpack.device_view(OnlyDLPack(x), argname="values", writable=False) as view:
        assert (view.pointer, view.shape, view.strides) == (device_address(x), (2, 7), (7, 1))
        assert (view.dtype.name, view.device_id, view.stream) == ("bfloat16", 0, None)


# ---- stream semantics -------------------------------------------------------------------------


class Recorder:
    """Stands in for numba.cuda's streams and events: who waited for what."""

    def __init__(self, monkeypatch, cuda):
        self.log = []
        recorder = self

        class Stream:
            def __init__(self, label):
                self.label = label

            def synchronize(self):
                recorder.log.append(("synchronize", self.label))

            def __repr__(self):
                return f"Stream({self.label})"

        class Event:
            count = 0

            def __init__(self, *args, **kwargs):
                Event.count += 1
                self.label = f"event{Event.count}"

            def record(self, stream=None):
                recorder.log.append(("record", self.label, getattr(stream, "label", stream)))

            def wait(self, stream=None):
                recorder.log.append(("wait", self.label, getattr(stream, "label", stream)))

            def synchronize(self):
                pass

        self.Stream = Stream
        monkeypatch.setattr(cuda, "event", Event)
        monkeypatch.setattr(cuda, "legacy_default_stream", lambda: Stream("legacy"))
        monkeypatch.setattr(cuda, "per_thread_default_stream", lambda: Stream("per-thread"))
        monkeypatch.setattr(cuda, "external_stream", lambda ptr: Stream(f"external {ptr:#x}"))


@pytest.fixture
def streams(monkeypatch, cuda):
    return Recorder(monkeypatch, cuda)


@pytest.mark.parametrize(
    "stream, consumer",
    [(None, "legacy"), (1, "legacy"), (2, "per-thread"), (0x7F00DEAD0000, "external 0x7f00dead0000")],
)
def test_dlpack_stream_orders_the_kernel_before_the_consumer(streams, stream, consumer):
    x = fastinit.uniform(70, device="cuda")
    (record,) = [e for e in streams.log if e[0] == "record"]  # after the kernel
    streams.log.clear()
    x.__dlpack__(stream=stream)
    assert streams.log == [("wait", record[1], consumer)]


def test_dlpack_stream_minus_one_does_not_synchronize(streams):
    x = fastinit.uniform(70, device="cuda")
    streams.log.clear()
    x.__dlpack__(stream=-1)
    assert streams.log == []


@pytest.mark.parametrize(
    "stream, message",
    [
        (0, "stream=0 is ambiguous for CUDA and disallowed by the array API"),
        (-2, "stream=-2 is not a CUDA stream"),
        (True, "stream=True must be None or an int"),
        ("1", "stream='1' must be None or an int"),
        (1.0, "stream=1.0 must be None or an int"),
    ],
)
def test_dlpack_bad_streams(stream, message):
    x = fastinit.uniform(3, device="cuda")
    with pytest.raises(BufferError, match=message):
        x.__dlpack__(stream=stream)


def test_dlpack_copy_is_ordered_too(streams):
    x = fastinit.uniform(70, device="cuda")
    streams.log.clear()
    x.__dlpack__(copy=True, stream=2)
    (record,) = [e for e in streams.log if e[0] == "record"]
    assert streams.log[-1] == ("wait", record[1], "per-thread")


@pytest.mark.parametrize("call", ["sampler", "deliver"])
def test_out_fastarray_export_waits_for_the_out_write(streams, call):
    """A CUDA FastArray written through out= records that write: a consumer on another stream
    waits for it (not for nothing, as for a fresh FastArray.empty, or for an older write)."""
    out = fastinit.FastArray.empty((7, 10), "float32", device="cuda")
    for _ in range(2):  # fresh, then already written once
        streams.log.clear()
        if call == "sampler":
            fastinit.uniform((7, 10), out=out, seed=4)
        else:
            fastinit.driver.deliver(np.ones((7, 10), np.float32), (7, 10), out=out)  # (schemes)
        record = [e for e in streams.log if e[0] == "record"][-1]
        streams.log.clear()
        out.__dlpack__(stream=2)
        assert streams.log == [("wait", record[1], "per-thread")]
        assert out.__cuda_array_interface__["stream"] is not None


def test_cpu_array_refuses_streams():
    with pytest.raises(BufferError, match="a cpu array has no streams"):
        fastinit.uniform(3).__dlpack__(stream=1)


def test_out_on_a_producer_stream(cuda, streams):
    """A __cuda_array_interface__ out with a stream is written on that stream, without a wait;
    without one (DLPack producers), on the legacy default stream, and the writer waits."""

    memory = cuda.device_array(6, np.float32)._ary

    class Producer:
        __cuda_array_interface__ = {
            "shape": (6,), "typestr": "<f4", "data": (memory.ctypes.data, False),
            "strides": None, "version": 3, "stream": 0x1234,
        }  # fmt: skip

    fastinit.uniform(6, out=Producer(), seed=3)
    assert memory.tobytes() == fastinit.uniform(6, seed=3).tobytes()
    assert not any(e[0] == "synchronize" for e in streams.log)
    streams.log.clear()
    target = fastinit.FastArray.empty(6, "float32", device="cuda")

    class OnlyDLPack:
        __dlpack__, __dlpack_device__ = target.__dlpack__, target.__dlpack_device__

    fastinit.uniform(6, out=OnlyDLPack(), seed=3)
    assert ("synchronize", "legacy") in streams.log
    assert target.tobytes() == memory.tobytes()


# ---- __cuda_array_interface__ ----------------------------------------------------------------


@pytest.mark.parametrize("dtype, typestr", [("float32", "<f4"), ("float64", "<f8"), ("float16", "<f2")])
def test_cuda_array_interface(dtype, typestr):
    x = fastinit.normal((2, 3, 4), dtype=dtype, device="cuda")
    cai = x.__cuda_array_interface__
    assert cai == {
        "shape": (2, 3, 4),
        "strides": None,
        "typestr": typestr,
        "data": (device_address(x), False),
        "version": 3,
        "stream": 1,  # written on the legacy default stream
    }


def test_cuda_array_interface_is_what_the_consumer_reads():
    x = fastinit.normal((2, 3), device="cuda", seed=4)
    with dlpack.device_view(x, writable=False) as view:
        assert view.pointer == device_address(x) and view.stream == 1


def test_no_cuda_array_interface_for_bfloat16_or_the_cpu():
    with pytest.raises(AttributeError, match="no typestr for bfloat16; export it with DLPack"):
        fastinit.normal(3, dtype="bfloat16", device="cuda").__cuda_array_interface__  # noqa: B018
    assert not hasattr(fastinit.normal(3), "__cuda_array_interface__")


# ---- host copies and refused host access ------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_copy_to_host_and_to_host(dtype):
    import ml_dtypes

    x = fastinit.truncated_normal((3, 33), 0.0, 0.02, -0.04, 0.04, dtype=dtype, device="cuda", seed=5)
    cpu = fastinit.truncated_normal((3, 33), 0.0, 0.02, -0.04, 0.04, dtype=dtype, seed=5)
    host = x.copy_to_host()
    assert isinstance(host, np.ndarray) and host.shape == (3, 33)
    assert host.dtype == (ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype))
    assert host.tobytes() == cpu.tobytes()
    assert x.copy_to_host(raw=True).dtype == cpu.raw.dtype
    back = x.to_host()
    assert isinstance(back, fastinit.FastArray) and back.device == "cpu" and back.dtype == x.dtype
    assert back.tobytes() == cpu.tobytes() and x.tobytes() == cpu.tobytes()
    assert cpu.to_host() is cpu


def test_host_access_is_refused_with_the_way_out():
    x = fastinit.uniform((2, 3), device="cuda")
    message = r"this FastArray is on cuda:0; its memory is not host memory. Copy it explicitly with \.copy_to_host\(\)"
    for access in (lambda: x.raw, x.numpy, lambda: np.asarray(x), lambda: np.from_dlpack(x)):
        with pytest.raises((TypeError, BufferError, RuntimeError), match="cuda|CUDA|device"):
            access()
    with pytest.raises(TypeError, match=message):
        x.numpy()


def test_description_of_a_cuda_array():
    x = fastinit.uniform((2, 3), dtype="bfloat16", device="cuda")
    assert (x.shape, x.ndim, x.size, x.nbytes, len(x), x.device) == ((2, 3), 2, 6, 12, 2, "cuda:0")
    assert repr(x).startswith("FastArray([") and repr(x).endswith(
        "shape=(2, 3), dtype=bfloat16, device='cuda:0')"
    )
    empty = fastinit.uniform((0, 4), device="cuda")
    assert empty.copy_to_host().shape == (0, 4) and empty.tobytes() == b""


# ---- devices ---------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cuda", "cuda:0", " CUDA:0 ", "Cuda"])
def test_device_names(device):
    assert fastinit.uniform(3, device=device).device == "cuda:0"


@pytest.mark.parametrize(
    "device, error, message",
    [
        ("cuda:7", ValueError, r"device='cuda:7': there is no CUDA device 7; this machine has 1 \(cuda:0\)"),
        ("cuda:x", ValueError, "device='cuda:x' must be 'cuda' or 'cuda:N'"),
        ("cuda:-1", ValueError, "device='cuda:-1' must be 'cuda' or 'cuda:N'"),
        ("gpu", ValueError, "device='gpu' is not supported; use 'cpu' or 'cuda"),
        (0, TypeError, "device must be a str"),
    ],
)
def test_bad_devices(device, error, message):
    for call in (
        lambda: fastinit.uniform(3, device=device),
        lambda: fastinit.xavier_normal((3, 4), device=device),
        lambda: fastinit.eye((3, 4), device=device),
    ):
        with pytest.raises(error, match=message):
            call()


def test_fastarray_constructor_checks_cuda_storage(cuda):
    with pytest.raises(ValueError, match="a CUDA FastArray's storage must be a Numba CUDA device array"):
        fastinit.FastArray(np.zeros(3, np.float32), "float32", device="cuda")
    with pytest.raises(TypeError, match="storage has dtype float64"):
        fastinit.FastArray(cuda.device_array(3, np.float64), "float32", device="cuda")
    with pytest.raises(ValueError, match="C-contiguous"):
        fastinit.FastArray(cuda.device_array((3, 4), np.float32).T, "float32", device="cuda")
    with pytest.raises(ValueError, match="no CUDA device 3"):
        fastinit.FastArray.empty(3, "float32", device="cuda:3")
