"""The tensor type every fastinit sampler returns.

A ``FastArray`` owns one buffer, knows its fastinit ``DType`` (bfloat16 included, stored as
its 16-bit pattern) and hands the buffer to torch / JAX / NumPy through DLPack without a
copy. It deliberately has no arithmetic: convert it (``torch.from_dlpack``,
``jax.numpy.from_dlpack``, ``np.asarray``) and compute there.

On the CPU the buffer is a NumPy array. On a GPU (``device="cuda:N"``) it is a Numba CUDA
device array, and the array is exported with ``__dlpack__`` (kDLCUDA, with the array API's
stream semantics) and ``__cuda_array_interface__`` (version 3). The host-only paths
(``raw``, ``numpy()``, ``__array__``) refuse a device array with an error that says how to
copy it (``copy_to_host()``, ``to_host()``): fastinit never copies between devices
implicitly. ``tobytes()`` and ``repr`` do copy (they make host bytes/text by definition).

``import fastinit`` never imports ``numba.cuda``: CUDA arrays load it (through
``cuda_runtime.py``) on first use.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fastinit import dlpack
from fastinit.cuda_runtime import (
    check_device,
    consumer_stream,
    cuda_runtime,
    device_name,
    device_ordinal,
    device_pointer,
    new_event,
    stream_handle,
)
from fastinit.dtypes import DType, resolve_dtype
from fastinit.typing import DeviceLike, DTypeLike, ShapeLike

__all__ = ["FastArray", "MAX_ELEMENTS", "c_strides", "check_shape"]

_REPR_VALUES = 6  # how many leading values __repr__ shows

# XLA's CPU client takes a DLPack buffer without copying only if it is 64-byte aligned
# (measured with jax 0.10: 16- and 32-byte aligned buffers are silently copied).
ALIGNMENT = 64


def _int_pair(value, argname: str) -> tuple[int, int] | None:
    """None, or a (major, minor) / (device type, device id) pair of ints >= 0, as ints."""
    if value is None:
        return None
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0 for v in value)
    ):
        raise TypeError(f"{argname} must be None or a tuple of two ints >= 0, got {value!r}")
    return int(value[0]), int(value[1])


def check_addressable(shape: tuple[int, ...], itemsize: int) -> None:
    """Refuse a shape NumPy cannot hold at ``itemsize`` bytes per element, naming it. NumPy
    refuses these even with a 0 dimension: it sizes the nonzero dimensions.

    >>> check_addressable((2**40, 0), 8)
    >>> check_addressable((2**40, 2**40, 0), 8)
    Traceback (most recent call last):
    ...
    ValueError: shape=(1099511627776, 1099511627776, 0) needs 9671406556917033397649408 bytes, more than a process can address
    """
    addressed = math.prod(n for n in shape if n) * itemsize
    if addressed > sys.maxsize - ALIGNMENT:
        raise ValueError(f"shape={shape} needs {addressed} bytes, more than a process can address")


class FastArray:
    """A tensor that owns its buffer; what every fastinit sampler returns.

    ``storage`` is a C-contiguous NumPy array whose dtype is ``dtype.storage`` (uint16
    for bfloat16); its shape is the tensor's shape. On ``device="cuda:N"`` it is a
    C-contiguous Numba CUDA device array (fastinit's samplers make those with
    ``device="cuda"``).

    >>> import numpy as np
    >>> x = FastArray(np.arange(6, dtype=np.float32).reshape(2, 3), "float32")
    >>> x
    FastArray([0, 1, 2, 3, 4, 5], shape=(2, 3), dtype=float32, device='cpu')
    >>> x.shape, x.dtype, len(x)
    ((2, 3), fastinit.float32, 2)
    >>> np.from_dlpack(x)[1, 2]  # a view of the same memory, no copy
    np.float32(5.0)

    bfloat16 is stored as its bits; ``numpy()`` shows values (needs ml_dtypes):

    >>> b = FastArray(np.array([0x3F80, 0xC000], dtype=np.uint16), "bfloat16")
    >>> b
    FastArray([1, -2], shape=(2,), dtype=bfloat16, device='cpu')
    >>> b.raw
    array([16256, 49152], dtype=uint16)
    >>> b.numpy().astype(np.float32)
    array([ 1., -2.], dtype=float32)
    """

    __slots__ = ("__weakref__", "_device", "_dtype", "_ready", "_storage", "_stream")

    def __init__(self, storage: Any, dtype: DTypeLike, device: DeviceLike = "cpu") -> None:
        dtype = resolve_dtype(dtype)
        device = device_name(device)  # (the storage is checked before any GPU is looked at)
        if device == "cpu":
            if not isinstance(storage, np.ndarray):
                raise TypeError(f"storage must be a NumPy array, got {type(storage).__name__}")
            contiguous = storage.flags.c_contiguous
        else:
            if isinstance(storage, np.ndarray) or not hasattr(storage, "copy_to_host"):
                raise ValueError(
                    f"device={device!r}: a CUDA FastArray's storage must be a Numba CUDA device "
                    f"array, got {type(storage).__name__}"
                )
            device = check_device(device)
            contiguous = storage.is_c_contiguous()
        if storage.dtype != dtype.storage:
            raise TypeError(
                f"storage has dtype {storage.dtype}, but a {dtype.name} FastArray is "
                f"stored as {dtype.storage}"
            )
        if not contiguous:
            raise ValueError("storage must be C-contiguous")
        self._storage = storage
        self._dtype = dtype
        self._device = device
        self._stream = None  # CUDA: the stream the values were written on
        self._ready = None  # CUDA: an event recorded after the last write (None: nothing pending)

    def record_write(self, stream: Any, event: Any) -> None:
        """Record that the values were (are being) written on the CUDA ``stream``, done at
        ``event``: exports then order their consumers after this write. A backend calls it
        after every launch that writes ``storage``."""
        self._stream, self._ready = stream, event

    @property
    def storage(self) -> Any:
        """The buffer as held, in the storage dtype and the array's shape: a NumPy array on the
        CPU, a Numba device array on CUDA. No copy and no synchronization (a backend writes it,
        then calls ``record_write``); users want ``raw``, ``numpy()`` or DLPack instead."""
        return self._storage

    @property
    def write_stream(self) -> Any:
        """CUDA: the stream of the last recorded write (None: none recorded yet)."""
        return self._stream

    @classmethod
    def empty(cls, shape: ShapeLike, dtype: DTypeLike, device: DeviceLike = "cpu") -> FastArray:
        """An uninitialised array whose buffer is ``ALIGNMENT``-byte aligned.

        >>> x = FastArray.empty((2, 3), "bfloat16")
        >>> x.shape, x.raw.dtype, x.raw.ctypes.data % ALIGNMENT
        ((2, 3), dtype('uint16'), 0)
        """
        dtype = resolve_dtype(dtype)
        shape = check_shape(shape)
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no silent int64 wraparound
        check_addressable(shape, dtype.itemsize)
        device = check_device(device)
        if device != "cpu":
            # cudaMalloc's allocations are 256-byte aligned
            cuda = cuda_runtime(device)
            with cuda.gpus[device_ordinal(device)]:
                storage = cuda.device_array(shape, dtype.storage)
            return cls(storage, dtype, device)
        try:
            raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
        except MemoryError:  # (NumPy's message names the byte buffer's shape, not this one)
            raise MemoryError(f"shape={shape} needs {nbytes} bytes, more than can be allocated") from None
        start = -raw.ctypes.data % ALIGNMENT
        storage = raw[start : start + nbytes].view(dtype.storage).reshape(shape)
        return cls(storage, dtype, device)

    # -- description ------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self._storage.shape

    @property
    def ndim(self) -> int:
        return self._storage.ndim

    @property
    def size(self) -> int:
        return self._storage.size

    @property
    def itemsize(self) -> int:
        return self._dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    @property
    def dtype(self) -> DType:
        return self._dtype

    @property
    def device(self) -> str:
        return self._device

    def __len__(self) -> int:
        if not self.ndim:
            raise TypeError("len() of a 0-d FastArray")
        return self.shape[0]

    def __repr__(self) -> str:
        if self._device == "cpu":
            flat = self._storage.reshape(-1)[: _REPR_VALUES + 1]
        else:  # a few leading values, copied from the device
            flat = self._copy_storage(self._storage.reshape(self.size)[: _REPR_VALUES + 1])
        if self._dtype.name == "bfloat16":  # bits -> float32 without ml_dtypes
            flat = (flat.astype(np.uint32) << 16).view(np.float32)
        values = [f"{float(v):.6g}" for v in flat[:_REPR_VALUES]]
        if self.size > _REPR_VALUES:
            values.append("...")
        return (
            f"FastArray([{', '.join(values)}], shape={self.shape}, "
            f"dtype={self._dtype.name}, device={self._device!r})"
        )

    # -- host access ------------------------------------------------------------------

    def _host_storage(self) -> np.ndarray:
        # The one place a device buffer refuses host access (copies are explicit).
        if self._device != "cpu":
            raise TypeError(
                f"this FastArray is on {self._device}; its memory is not host memory. Copy it "
                "explicitly with .copy_to_host() (a NumPy array) or .to_host() (a CPU FastArray), "
                "or hand it to torch / CuPy / JAX without a copy (torch.from_dlpack, ...)"
            )
        return self._storage

    def _copy_storage(self, storage) -> np.ndarray:
        """A host copy of (part of) the device storage, after the pending writes."""
        if storage.size == 0:
            return np.empty(storage.shape, self._dtype.storage)
        cuda = cuda_runtime(self._device)
        with cuda.gpus[device_ordinal(self._device)]:  # (streams and copies in this GPU's context)
            stream = self._stream if self._stream is not None else cuda.default_stream()
            host = storage.copy_to_host(stream=stream)
            stream.synchronize()
        return host

    def copy_to_host(self, *, raw: bool = False) -> np.ndarray:
        """A NumPy copy of the values (of any array; on the CPU, a copy of the buffer).

        The dtype is the user dtype (``ml_dtypes.bfloat16`` for bfloat16, which needs
        ml_dtypes); ``raw=True`` gives the storage instead (bfloat16 bits as uint16).
        """
        host = self._storage.copy() if self._device == "cpu" else self._copy_storage(self._storage)
        return host if raw else host.view(self._dtype.numpy_dtype())

    def to_host(self) -> FastArray:
        """A CPU FastArray holding a copy of the values (itself when already on the CPU)."""
        if self._device == "cpu":
            return self
        out = FastArray.empty(self.shape, self._dtype)
        out._storage[...] = self._copy_storage(self._storage)
        return out

    @property
    def raw(self) -> np.ndarray:
        """The storage array: the values' bits as uint16 for bfloat16, else the values."""
        return self._host_storage()

    def numpy(self) -> np.ndarray:
        """A NumPy view of the same memory with the user dtype (ml_dtypes for bf16)."""
        return self._host_storage().view(self._dtype.numpy_dtype())

    def tobytes(self) -> bytes:
        """The raw bytes of the storage, C order (copied from the device for a CUDA array)."""
        if self._device != "cpu":
            return self._copy_storage(self._storage).tobytes()
        return self._storage.tobytes()

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        # NumPy 2 protocol: copy=False must not copy, and must raise if it would have to.
        array = self.numpy()
        if dtype is not None and np.dtype(dtype) != array.dtype:
            if copy is False:
                raise ValueError(
                    f"converting a {self._dtype.name} FastArray to {np.dtype(dtype)} "
                    "needs a copy, but copy=False"
                )
            return array.astype(dtype)
        return array.copy() if copy else array

    # -- DLPack -----------------------------------------------------------------------

    def __dlpack_device__(self) -> tuple[dlpack.DLDeviceType, int]:
        if self._device == "cpu":
            return (dlpack.DLDeviceType.kDLCPU, 0)
        return (dlpack.DLDeviceType.kDLCUDA, device_ordinal(self._device))

    def __dlpack__(
        self,
        *,
        stream: Any = None,
        max_version: tuple[int, int] | None = None,
        dl_device: tuple[int, int] | None = None,
        copy: bool | None = None,
    ) -> Any:
        """Export as a DLPack capsule (array API standard, 2023.12 signature).

        A versioned capsule when the consumer's ``max_version`` is 1.x or newer, else a
        legacy one. ``copy=True`` exports a fresh copy (flagged IS_COPIED when
        versioned); ``copy=False`` and ``None`` never copy. ``dl_device`` may only name
        this array's device.

        ``stream``: on the CPU it must be None (host memory has no streams). On CUDA it is
        the consumer's stream, as the array API defines it: None or 1 the legacy default
        stream, 2 the per-thread default stream, another int a ``cudaStream_t`` address, -1
        "do not synchronize" (0 is refused). The consumer's stream is made to wait (an event,
        no host synchronization) for the work that wrote the values.
        """
        max_version = _int_pair(max_version, "max_version")
        dl_device = _int_pair(dl_device, "dl_device")
        if copy is not None and not isinstance(copy, bool):
            raise TypeError(f"copy must be None, True or False, got {type(copy).__name__}")
        device = self.__dlpack_device__()
        if stream is not None and self._device == "cpu":
            raise BufferError(
                f"stream={stream!r}: a {self._device} array has no streams; the array "
                "API allows only stream=None here"
            )
        if dl_device is not None and dl_device != device:
            raise BufferError(f"cannot export a {self._device} FastArray to DLPack device {dl_device}")
        versioned = max_version is not None and max_version[0] >= 1
        if self._device != "cpu":
            storage, owner = self._export_cuda(stream, copy)
            return dlpack.make_capsule(
                owner,
                device_pointer(storage),
                storage.shape,
                c_strides(storage.shape),
                self._dtype,
                device,
                versioned=versioned,
                copied=bool(copy) and versioned,
            )
        storage, owner = self._storage, self  # the consumer keeps this FastArray alive
        if copy:
            storage = owner = storage.copy()
        read_only = not storage.flags.writeable
        if read_only and not versioned:
            raise BufferError(
                "a read-only FastArray can only be exported as a versioned DLPack "
                "capsule (max_version >= (1, 0)), which can flag it read-only"
            )
        return dlpack.make_capsule(
            owner,
            storage.ctypes.data,
            storage.shape,
            c_strides(storage.shape),
            self._dtype,
            device,
            versioned=versioned,
            read_only=read_only,
            copied=bool(copy) and versioned,
        )

    def _export_cuda(self, stream, copy):
        """(storage, owner) to export: ordered before ``stream``'s later work (see __dlpack__)."""
        cuda = cuda_runtime(self._device)
        storage, owner = self._storage, self
        # The consumer's stream object is made in this GPU's context (outside it, Numba would
        # make a context on the current device, cuda:0, for a cuda:1 array).
        with cuda.gpus[device_ordinal(self._device)]:
            consumer = None if stream == -1 else consumer_stream(cuda, 1 if stream is None else stream)
            if copy:
                producer = self._stream if self._stream is not None else cuda.default_stream()
                storage = owner = cuda.device_array(self.shape, self._dtype.storage, stream=producer)
                if self.size:
                    storage.copy_to_device(self._storage, stream=producer)
                ready = new_event(cuda)
                ready.record(producer)
            else:
                ready = self._ready
            if consumer is not None and ready is not None:
                ready.wait(consumer)
        return storage, owner

    @property
    def __cuda_array_interface__(self) -> dict:
        """CUDA Array Interface version 3 (CUDA arrays only; not bfloat16, which the interface
        cannot name: use DLPack). ``stream`` is the stream the values were written on (1: the
        legacy default stream); a consumer synchronizes with it before reading, as v3 says."""
        if self._device == "cpu":
            raise AttributeError("a CPU FastArray has no __cuda_array_interface__ (it has __array__)")
        if self._dtype.name == "bfloat16":
            raise AttributeError(
                "a bfloat16 FastArray has no __cuda_array_interface__: the interface has no "
                "typestr for bfloat16; export it with DLPack (torch.from_dlpack, cupy.from_dlpack, ...)"
            )
        return {
            "shape": tuple(self.shape),
            "strides": None,
            "typestr": self._dtype.storage.str,
            "data": (device_pointer(self._storage), False),
            "version": 3,
            "stream": None if self._stream is None else stream_handle(self._stream),
        }


# The most elements a tensor may have: its flat indices are int64.
MAX_ELEMENTS = 2**63 - 1


def check_shape(shape, argname: str = "shape") -> tuple[int, ...]:
    """An int or a sequence of ints >= 0 (tuple, list, range, torch.Size, 1-D integer array), as a tuple.

    Sets and dicts (no order), strings, floats and bools are refused, and so are shapes of more
    than ``MAX_ELEMENTS`` elements: flat indices are int64 in the kernels and in NumPy.

    >>> check_shape(4), check_shape([2, 3]), check_shape(())
    ((4,), (2, 3), ())
    >>> check_shape((2, -1))
    Traceback (most recent call last):
    ValueError: shape=(2, -1) has a negative dimension
    """
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        dims = (shape,)
    elif isinstance(shape, np.ndarray) and shape.ndim == 1 and shape.dtype.kind in "iu":
        dims = shape.tolist()
    elif isinstance(shape, Sequence) and not isinstance(shape, (str, bytes, bytearray)):
        dims = shape
    else:
        kind = f"a {shape.ndim}-D {shape.dtype} array" if isinstance(shape, np.ndarray) else (
            type(shape).__name__)  # fmt: skip
        raise TypeError(f"{argname} must be an int or a tuple of ints (or a list), got {kind}")
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{argname}={shape!r} must contain only ints, got {type(d).__name__}")
        if d < 0:
            raise ValueError(f"{argname}={shape!r} has a negative dimension")
        out.append(int(d))
    # NumPy refuses these even with a 0 dimension: count the nonzero dimensions as it does
    count = math.prod(d for d in out if d)
    if count > MAX_ELEMENTS:
        where = "" if 0 not in out else " in its nonzero dimensions"
        raise ValueError(f"{argname}={tuple(out)} has {count} elements{where}, more than 2**63 - 1")
    return tuple(out)


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """C-order strides in elements of a dense array of ``shape``, the layout of every FastArray
    (also right for 0-size shapes, unlike NumPy's).

    >>> c_strides((2, 3, 4)), c_strides((0, 5)), c_strides(())
    ((12, 4, 1), (5, 1), ())
    """
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))
