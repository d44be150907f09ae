"""Adapting ``out=`` for the CUDA kernels: a CUDA output (a FastArray, a DLPack producer, a
``__cuda_array_interface__`` object, a simulated device array) as an ``OutView``: a flat device
array over its memory, the offset of its element [0, ..., 0], its strides, its device and the
stream to write on.

A kernel writing into ``out=`` runs on the stream the output belongs to: torch's and CuPy's
current stream for their tensors, the ``stream`` of a ``__cuda_array_interface__``, else the
legacy default stream (and then waits for the kernel, since a DLPack producer cannot be told
about work done on its memory).
"""

from __future__ import annotations

import contextlib

import numpy as np

from ...array import FastArray, c_strides
from ...cuda_runtime import device_ordinal, is_simulator
from ...dtypes import DType
from ..plan import flat_storage, offset_range
from . import device_code
from .compiler import load
from .launch import kernel_storage

__all__ = [
    "OutView",
    "device_out",
    "writable_out",
    "out_dtype",
    "out_index",
    "device_array_at",
    "is_dense",
    "is_simulated_array",
]


def device_out(out):
    """Whether ``out`` is CUDA memory fastinit should write with this backend, by its type
    alone (no numba import): torch CUDA tensors, CUDA DLPack producers (kDLCUDA and managed
    memory), ``__cuda_array_interface__`` objects and Numba device arrays (also simulated)."""
    from ... import dlpack

    return dlpack.device_of(out) is not None


class OutView:
    """``out`` as (flat 1-D Numba device array of its storage, offset of element [0, ..., 0] in
    it, element strides), with the device, the stream to launch on, whether to wait for the
    write (a producer that cannot be told about it) and ``keep``: the object the view keeps
    alive (the FastArray ``out`` itself, which records the write; see writes.finish)."""

    def __init__(self, flat, base, strides, shape, dtype, index, stream, wait, keep):
        self.flat, self.base, self.strides, self.shape = flat, base, strides, shape
        self.dtype, self.index, self.stream, self.wait, self.keep = dtype, index, stream, wait, keep


@contextlib.contextmanager
def writable_out(out, *, argname: str = "out"):
    """A context manager giving an ``OutView`` of the CUDA output ``out`` (``device_out``); the
    driver checks its device, dtype and shape against the call's (``driver.check_out``)."""
    from ... import dlpack

    cuda = load(f"{argname} is CUDA memory")
    if isinstance(out, FastArray):
        yield _fastarray_view(out)
        return
    if is_simulated_array(out):
        yield _simulated_view(out, argname)
        return
    with dlpack.device_view(out, argname=argname) as view:
        index = view.device_id
        if index is None:
            index = _pointer_device(view.pointer)
        with cuda.gpus[index]:
            if view.stream is None:
                stream, wait = cuda.legacy_default_stream(), view.wait
            else:
                stream, wait = cuda.external_stream(view.stream), False
            low, high = offset_range(view.shape, view.strides)
            storage = np.dtype(np.uint16) if view.dtype.bits == 16 else view.dtype.storage
            size = max(high - low + 1, 0)
            flat = device_array_at(view.pointer + low * view.dtype.itemsize, size, storage, view)
            yield OutView(flat, -low, view.strides, view.shape, view.dtype, index, stream, wait, view)


def device_array_at(pointer: int, size: int, storage, owner):
    """A flat Numba device array of ``size`` elements of ``storage`` at device address
    ``pointer``, kept alive with ``owner``; no copy, no synchronization.

    Under numba's CUDA simulator "device memory" is host memory, and the simulator has no
    ``from_cuda_array_interface``: the array is then a simulated device array over the same
    host bytes, so the out= paths of DLPack and __cuda_array_interface__ producers run there
    too (tests/cuda_sim).
    """
    if is_simulator():
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        class _Memory:
            def __init__(self):
                self.owner = owner
                self.__array_interface__ = {
                    "shape": (size,),
                    "typestr": storage.str,
                    "data": (pointer if size else 0, False),
                    "version": 3,
                }

        return FakeCUDAArray(np.asarray(_Memory()) if size else np.empty(0, storage))
    return device_code.cuda.from_cuda_array_interface(
        {"shape": (size,), "strides": None, "typestr": storage.str, "data": (pointer if size else 0, False),
         "version": 3, "stream": None},
        owner=owner,
        sync=False,
    )  # fmt: skip


def _fastarray_view(out: FastArray) -> OutView:
    index = device_ordinal(out.device)
    with device_code.cuda.gpus[index]:
        stream = out.write_stream if out.write_stream is not None else device_code.cuda.default_stream()
    flat = kernel_storage(out.storage, out.dtype)
    strides = c_strides(tuple(out.shape))
    return OutView(flat, 0, strides, tuple(out.shape), out.dtype, index, stream, False, out)


def is_dense(shape, strides) -> bool:
    """Whether a layout is dense C order. The stride of a dimension of size 1 is free: torch
    calls such tensors contiguous whatever it is (e.g. the (n, 1) Q of torch.linalg.qr has
    strides (1, n)), and ``.contiguous()`` leaves them as they are."""
    return all(s == c for n, s, c in zip(shape, strides, c_strides(shape), strict=True) if n != 1)


def is_simulated_array(obj) -> bool:
    return is_simulator() and type(obj).__name__ == "FakeCUDAArray"


def _simulated_view(out, argname) -> OutView:
    """A simulated device array (a NumPy array inside): its memory as a flat array, as for
    real device memory."""
    from ... import dlpack

    host = dlpack.writable_view(out._ary, argname=argname)
    array = host.array
    flat, base, _ = flat_storage(array.view(np.uint16) if host.dtype.bits == 16 else array)
    return OutView(type(out)(flat), base, host.strides, tuple(array.shape), host.dtype, 0,
                   device_code.cuda.default_stream(), False, out)  # fmt: skip


def out_dtype(out) -> DType:
    """The fastinit dtype of a CUDA ``out`` (see ``device_out``)."""
    from ... import dlpack

    if isinstance(out, FastArray):
        return out.dtype
    if type(out).__name__ == "FakeCUDAArray":  # simulated
        return dlpack.writable_view(out._ary).dtype
    with dlpack.device_view(out, argname="out") as view:
        return view.dtype


def _pointer_device(pointer: int) -> int:
    """The device ordinal owning a device pointer (CUDA driver: CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL);
    the current device when it cannot be told (a NULL pointer: nothing is written)."""
    if pointer and not is_simulator():  # (the simulator has one device and no driver)
        try:
            from cuda.bindings import driver as cudrv

            attribute = cudrv.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL
            error, ordinal = cudrv.cuPointerGetAttribute(attribute, pointer)
            if error == cudrv.CUresult.CUDA_SUCCESS:
                return int(ordinal)
        except (ImportError, AttributeError, TypeError):  # pragma: no cover - other bindings
            pass
    return int(getattr(device_code.cuda.get_current_device(), "id", 0))


def out_index(out) -> int:
    """The GPU ordinal of a CUDA ``out``."""
    with writable_out(out) as view:
        return view.index
