"""The tensor type every fastinit sampler returns.

A ``FastArray`` owns one buffer, knows its fastinit ``DType`` (bfloat16 included, stored as
its 16-bit pattern) and hands the buffer to torch / JAX / NumPy through DLPack without a
copy. It deliberately has no arithmetic: convert it (``torch.from_dlpack``,
``jax.numpy.from_dlpack``, ``np.asarray``) and compute there.

Only host memory is implemented. The device lives in one attribute and the host-only
paths (``raw``, ``numpy()``, ``__array__``) go through ``_host_storage()``, so a CUDA buffer
can be added beside the NumPy one without changing the rest.
"""

from __future__ import annotations

import numpy as np

from fastinit import dlpack
from fastinit.dtypes import DType, resolve_dtype

__all__ = ["FastArray"]

# device string -> DLPack (device type, device id)
_DLPACK_DEVICES = {"cpu": (dlpack.DLDeviceType.kDLCPU, 0)}

_REPR_VALUES = 6  # how many leading values __repr__ shows

# XLA's CPU client takes a DLPack buffer without copying only if it is 64-byte aligned
# (measured with jax 0.10: 16- and 32-byte aligned buffers are silently copied).
ALIGNMENT = 64


class FastArray:
    """A tensor that owns its buffer; what every fastinit sampler returns.

    ``storage`` is a C-contiguous NumPy array whose dtype is ``dtype.storage`` (uint16
    for bfloat16); its shape is the tensor's shape.

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

    __slots__ = ("__weakref__", "_device", "_dtype", "_storage")

    def __init__(self, storage: np.ndarray, dtype: DType, device: str = "cpu"):
        dtype = resolve_dtype(dtype)
        if device not in _DLPACK_DEVICES:
            raise ValueError(f"device={device!r} is not supported by FastArray yet; only 'cpu' is")
        if not isinstance(storage, np.ndarray):
            raise TypeError(f"storage must be a NumPy array, got {type(storage).__name__}")
        if storage.dtype != dtype.storage:
            raise TypeError(
                f"storage has dtype {storage.dtype}, but a {dtype.name} FastArray is "
                f"stored as {dtype.storage}"
            )
        if not storage.flags.c_contiguous:
            raise ValueError("storage must be C-contiguous")
        self._storage = storage
        self._dtype = dtype
        self._device = device

    @classmethod
    def empty(cls, shape, dtype, device: str = "cpu") -> FastArray:
        """An uninitialised array whose buffer is ``ALIGNMENT``-byte aligned.

        >>> x = FastArray.empty((2, 3), "bfloat16")
        >>> x.shape, x.raw.dtype, x.raw.ctypes.data % ALIGNMENT
        ((2, 3), dtype('uint16'), 0)
        """
        dtype = resolve_dtype(dtype)
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
        if any(n < 0 for n in shape):
            raise ValueError(f"shape={shape} has a negative dimension")
        if device not in _DLPACK_DEVICES:
            raise ValueError(f"device={device!r} is not supported by FastArray yet; only 'cpu' is")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
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
        flat = self._host_storage().reshape(-1)[: _REPR_VALUES + 1]
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
        # The one place a device buffer would refuse (or copy) host access.
        return self._storage

    @property
    def raw(self) -> np.ndarray:
        """The storage array: the values' bits as uint16 for bfloat16, else the values."""
        return self._host_storage()

    def numpy(self) -> np.ndarray:
        """A NumPy view of the same memory with the user dtype (ml_dtypes for bf16)."""
        return self._host_storage().view(self._dtype.numpy_dtype())

    def tobytes(self) -> bytes:
        """The raw bytes of the storage, C order."""
        return self._host_storage().tobytes()

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
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
        return _DLPACK_DEVICES[self._device]

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Export as a DLPack capsule (array API standard, 2023.12 signature).

        A versioned capsule when the consumer's ``max_version`` is 1.x or newer, else a
        legacy one. ``copy=True`` exports a fresh copy (flagged IS_COPIED when
        versioned); ``copy=False`` and ``None`` never copy. ``dl_device`` may only name
        this array's device, and ``stream`` must be None: host memory has no streams.
        """
        device = self.__dlpack_device__()
        if stream is not None:
            raise BufferError(
                f"stream={stream!r}: a {self._device} array has no streams; the array "
                "API allows only stream=None here"
            )
        if dl_device is not None and (int(dl_device[0]), int(dl_device[1])) != device:
            raise BufferError(
                f"cannot export a {self._device} FastArray to DLPack device "
                f"{tuple(int(d) for d in dl_device)}"
            )
        versioned = max_version is not None and int(max_version[0]) >= 1
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
            _c_strides(storage.shape),
            self._dtype,
            device,
            versioned=versioned,
            read_only=read_only,
            copied=bool(copy) and versioned,
        )


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """C-order strides in elements (also right for 0-size shapes, unlike NumPy's)."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))
