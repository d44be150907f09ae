"""The CUDA runtime as fastinit uses it: ``numba.cuda`` imported on first use (with a clear
error when numba-cuda or a GPU is missing), the simulator test, the parsing and checking of
``device=`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``), and the stream, event and pointer helpers
the array type and the CUDA backend share.

Nothing here imports ``numba.cuda`` at import time: ``import fastinit`` must not.
"""

from __future__ import annotations

import functools
import importlib.util
import sys

__all__ = [
    "cuda_runtime",
    "device_name",
    "check_device",
    "cuda_device_index",
    "device_ordinal",
    "is_simulator",
    "device_pointer",
    "stream_handle",
    "consumer_stream",
    "new_event",
]


def cuda_runtime(device: str = "cuda", *, context: str | None = None):
    """``numba.cuda``, imported on first use; ValueError saying what is missing otherwise.

    Errors start with ``context`` (default: ``device='<device>'``).

    Never a silent fallback: without numba-cuda, or without a usable GPU and driver, every
    ``device="cuda"`` request raises. (``NUMBA_ENABLE_CUDASIM=1``, numba's CUDA simulator,
    counts as a GPU: it runs the same kernels in Python, for tests.)
    """
    context = f"device={device!r}" if context is None else context
    # (find_spec walks sys.path, ~40 us: skip it once numba-cuda is imported; a None entry,
    # as tests use to hide the package, still reads as missing)
    if sys.modules.get("numba_cuda") is None and importlib.util.find_spec("numba_cuda") is None:
        raise ValueError(
            f"{context}: fastinit's CUDA backend needs the numba-cuda package, which is "
            "not installed: pip install 'fastinit[cuda]' (numba-cuda with its CUDA 13 wheels)"
        )
    _restore_numpy_aliases_numba_cuda_uses()
    from numba import cuda

    if not _cuda_available(cuda):
        raise ValueError(
            f"{context}: no CUDA GPU is available: numba-cuda is installed but found no "
            "usable NVIDIA driver and device (numba.cuda.detect() prints why)"
        )
    return cuda


def _restore_numpy_aliases_numba_cuda_uses() -> None:
    """numba-cuda (0.30.4, the newest when written) registers an overload of ``np.row_stack``
    when it compiles its first kernel; NumPy 2.5 removed that alias of ``np.vstack``, so every
    kernel compile fails there with AttributeError (seen on a GPU machine with NumPy 2.5.2).
    Put the alias back, and nothing else, only when it is missing."""
    import numpy

    if not hasattr(numpy, "row_stack"):
        numpy.row_stack = numpy.vstack


@functools.cache
def _cuda_available(cuda) -> bool:
    return bool(cuda.is_available())


def is_simulator() -> bool:
    """Whether numba.cuda (already imported) is numba's CUDA simulator."""
    from numba import cuda

    return "simulator" in type(cuda.gpus).__module__


def device_name(device) -> str:
    """``device`` as fastinit spells it: "cpu", "cuda" or "cuda:..." (stripped, lower case);
    TypeError / ValueError otherwise. Looks at no GPU: ``check_device`` does.

    >>> device_name(" CUDA:1 ")
    'cuda:1'
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda', got {type(device).__name__}")
    name = device.strip().lower()
    if name == "cpu" or name == "cuda" or name.startswith("cuda:"):
        return name
    raise ValueError(f"device={device!r} is not supported; use 'cpu' or 'cuda[:N]'")


def check_device(device) -> str:
    """'cpu', or 'cuda:N' for 'cuda' (the current device) / 'cuda:N' when that GPU exists and
    fastinit's CUDA backend can run (else a ValueError saying what is missing).

    >>> check_device(" CPU ")
    'cpu'
    >>> check_device("tpu")
    Traceback (most recent call last):
    ValueError: device='tpu' is not supported; use 'cpu' or 'cuda[:N]'
    """
    name = device_name(device)
    return name if name == "cpu" else f"cuda:{cuda_device_index(name)}"


def device_ordinal(device: str) -> int:
    """N of an already checked ``"cuda:N"`` (a FastArray's or a view's device).

    >>> device_ordinal("cuda:3")
    3
    """
    return int(device[len("cuda:") :])


def cuda_device_index(device: str) -> int:
    """The GPU ordinal of ``"cuda"`` (the current device) or ``"cuda:N"``; checks it exists.

    ``device`` must already be lower-case and stripped (``device_name`` does that).
    """
    cuda = cuda_runtime(device)
    if device == "cuda":
        return int(getattr(cuda.get_current_device(), "id", 0))  # (the simulator's has no id: 0)
    text = device[len("cuda:") :]
    if not text.isdigit():
        raise ValueError(f"device={device!r} must be 'cuda' or 'cuda:N' with N a device number")
    index, count = int(text), len(cuda.gpus)
    if index >= count:
        raise ValueError(
            f"device={device!r}: there is no CUDA device {index}; this machine has {count} "
            f"({', '.join(f'cuda:{i}' for i in range(count))})"
        )
    return index


def device_pointer(storage) -> int:
    """The device address of a Numba device array (in the simulator: its host buffer)."""
    if storage.size == 0:
        return 0
    if getattr(type(storage), "__cuda_array_interface__", None) is not None:
        # Not through __cuda_array_interface__: Numba's computes int(stream) for an array
        # allocated on a stream, which warns (DeprecationWarning: __int__ returned an enum)
        # for its default stream.
        return int(storage.device_ctypes_pointer.value or 0)
    return int(storage._ary.ctypes.data)  # simulator: a FakeCUDAArray wraps a NumPy array


def stream_handle(stream) -> int:
    """The __cuda_array_interface__ / DLPack integer of a Numba stream: 1 for the legacy default
    stream (what handle 0 means to the driver API Numba uses), else the CUstream address."""
    # int(stream.handle), not int(stream): Numba's Stream.__int__ returns an enum member for
    # its default stream (handle 0), which Python deprecates (a DeprecationWarning).
    handle = int(stream.handle) if getattr(stream, "handle", None) is not None else 0
    return handle or 1


def consumer_stream(cuda, stream):
    """A Numba stream for the array API's ``stream`` argument of ``__dlpack__`` on CUDA."""
    if isinstance(stream, bool) or not isinstance(stream, int):
        raise BufferError(f"stream={stream!r} must be None or an int (a CUDA stream pointer, 1, 2 or -1)")
    if stream == 0:
        raise BufferError("stream=0 is ambiguous for CUDA and disallowed by the array API; use 1 or 2")
    if stream < -1:
        raise BufferError(f"stream={stream} is not a CUDA stream")
    if stream == 1:
        return cuda.legacy_default_stream()
    if stream == 2:
        return cuda.per_thread_default_stream()
    return cuda.external_stream(stream)


def new_event(cuda):
    """A CUDA event for ordering streams (no timing: cheaper to record and wait on)."""
    # (the simulator's events take no arguments)
    return cuda.event() if is_simulator() else cuda.event(timing=False)
