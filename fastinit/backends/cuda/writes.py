"""Writing values with the CUDA kernels, and ordering the streams around the writes:
``fill_array`` / ``fill_out`` sample into a new FastArray / an ``out=`` view, ``deliver``
stores values computed elsewhere (NumPy or device arrays) into either.

A kernel writing a new FastArray runs on Numba's default stream (the legacy default stream)
and records an event that ``FastArray.__dlpack__`` makes the consumer's stream wait for
(``FastArray.record_write``).
"""

from __future__ import annotations

import math

import numpy as np

from ...array import FastArray
from ...cuda_runtime import device_ordinal, new_event
from ...dtypes import DType
from ..cpu import round_to_storage
from ..plan import FillPlan
from . import device_code, launch
from .compiler import load
from .device_code import STORE_SAME
from .launch import kernel_storage, store_kind
from .memory import OutView, device_array_at, is_dense, is_simulated_array

__all__ = ["fill_array", "fill_out", "deliver", "finish"]


def _record(array: FastArray, stream) -> None:
    event = new_event(device_code.cuda)
    event.record(stream)
    array.record_write(stream, event)


def fill_array(array: FastArray, plan: FillPlan, dist: int, params, key, *, geometry=None) -> None:
    """Fill a new CUDA FastArray (dense, C order) following ``plan``."""
    cuda = load()
    index = device_ordinal(array.device)
    with cuda.gpus[index]:
        stream = cuda.default_stream()
        if array.size:
            storage = kernel_storage(array.storage, array.dtype)
            launch.fill(storage, plan, dist, params, key, kind=store_kind(array.dtype), index=index, stream=stream,
                 geometry=geometry)  # fmt: skip
        _record(array, stream)


def fill_out(view: OutView, plan: FillPlan, dist: int, params, key) -> None:
    """Fill an ``out=`` view (``memory.writable_out``) following ``plan``, then ``finish`` it."""
    launch.fill(view.flat, plan, dist, params, key, kind=store_kind(view.dtype), index=view.index,
                stream=view.stream)  # fmt: skip
    finish(view)


def finish(view: OutView) -> None:
    """After a launch into ``view``: wait for it where the producer cannot be told about it; a
    FastArray ``out`` records it (its __dlpack__ / __cuda_array_interface__ export then orders
    consumers after this write, not only after its earlier ones)."""
    if view.wait:
        view.stream.synchronize()
    if isinstance(view.keep, FastArray):
        with device_code.cuda.gpus[view.index]:
            _record(view.keep, view.stream)


def _values_on_device(values, dtype: DType, stream):
    """(flat dense device array, kind, producer stream or None) of ``values``: a NumPy array
    (rounded on the host by the CPU's converter, then copied) or a dense float32 / float64 device
    array (torch / CuPy / Numba, rounded on the device by the kernel)."""
    from ... import dlpack

    if isinstance(values, np.ndarray):
        host = round_to_storage(values, dtype.storage)
        host = np.ascontiguousarray(host.view(np.uint16) if dtype.bits == 16 else host).reshape(-1)
        return device_code.cuda.to_device(host, stream=stream), STORE_SAME, None
    if is_simulated_array(values):  # a simulated device array holds its values in a NumPy array
        host = values._ary
        if host.dtype not in (np.float32, np.float64) or not host.flags.c_contiguous:
            raise AssertionError(f"device values must be dense float32 / float64, got {host.dtype}")
        kind = store_kind(dtype) if dtype.bits == 16 else STORE_SAME
        return type(values)(host.reshape(-1)), kind, None
    with dlpack.device_view(values, argname="values", writable=False) as view:
        size = math.prod(view.shape)
        if not is_dense(view.shape, view.strides) or view.dtype.name not in ("float32", "float64"):
            raise AssertionError(f"device values must be dense float32 / float64, got {view!r}")
        if view.dtype.name == "float64" and dtype.compute != 64:
            raise AssertionError("float64 device values delivered for a dtype computed in float32")
        array = device_array_at(view.pointer, size, view.dtype.storage, values)
        producer = (
            device_code.cuda.legacy_default_stream()
            if view.stream is None
            else device_code.cuda.external_stream(view.stream)
        )
        return array, store_kind(dtype) if dtype.bits == 16 else STORE_SAME, producer


def deliver(values, plan: FillPlan, *, array: FastArray | None = None, view: OutView | None = None):
    """Write ``values`` (the result's values, dense, in C order: NumPy or device) to a new CUDA
    FastArray or an ``out=`` view, following ``plan`` (its sources index into values).

    Device values are read on the stream that made them (a new array is written there too);
    the streams are chained with events both ways, so neither side can reuse the memory early.
    """
    cuda = load()
    if array is not None:
        index, dtype = device_ordinal(array.device), array.dtype
        out = kernel_storage(array.storage, dtype) if array.size else None
    else:
        index, dtype, out = view.index, view.dtype, view.flat
    with cuda.gpus[index]:
        stream = cuda.default_stream() if array is not None else view.stream
        if plan.size:
            src, kind, producer = _values_on_device(values, dtype, stream)
            if producer is not None and array is not None:
                stream = producer
            elif producer is not None:
                _chain(producer, stream)
            launch.scatter(out, src, plan, kind=kind, index=index, stream=stream)
            if producer is not None and producer is not stream:
                _chain(stream, producer)
        if array is not None:
            _record(array, stream)
        else:
            finish(view)


def _chain(first, then) -> None:
    """Make stream ``then`` wait for the work queued on stream ``first`` so far."""
    event = new_event(device_code.cuda)
    event.record(first)
    event.wait(then)
