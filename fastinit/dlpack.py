"""DLPack, both ways, in pure Python (ctypes): the producer behind ``FastArray.__dlpack__``
and the consumer behind the samplers' ``out=`` argument.

The structures mirror ``dlpack.h`` 1.x (dmlc/dlpack, include/dlpack/dlpack.h); the Python
protocol (``__dlpack__(stream, max_version, dl_device, copy)``, capsule names, renaming a
consumed capsule) follows the array API standard's data-interchange section.

Producer: :func:`make_capsule` wraps memory kept alive by ``owner`` in a ``"dltensor"``
(legacy ``DLManagedTensor``) or ``"dltensor_versioned"`` capsule. The owner is released when
the consumer calls the deleter, or when the capsule is dropped without being consumed.

Consumer: :func:`writable_view` turns ``out`` (NumPy array, torch tensor or any other DLPack
producer, writable buffer) into a NumPy view of the same memory, or raises an error naming
the argument. :func:`device_view` is its CUDA counterpart: it describes CUDA memory (torch
CUDA tensors, kDLCUDA DLPack producers, ``__cuda_array_interface__`` objects such as CuPy and
Numba arrays) by pointer, shape, strides, dtype, device and stream, for the CUDA backend;
:func:`device_of` tells the two kinds of ``out`` apart.

Why there is a little native code here: the deleter and the capsule destructor are called
from C, sometimes while an exception is propagating (a consumer that rejects a capsule drops
it with its error already set; a temporary tensor freed during unwinding). A ctypes callback
entered in that state corrupts the interpreter: the pending exception is replaced by a
SystemError and then lost (tests/test_dlpack.py reproduces both cases). So each callback is
entered through a trampoline of a dozen instructions, JIT-compiled on the first export with
llvmlite (installed with numba), that takes the GIL, sets the pending exception aside,
calls the Python function and restores the exception, as C extensions such as NumPy do in
their own DLPack deleters.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import math
import sys

import numpy as np

from fastinit.dtypes import DTYPES, DType, dtype_from_dlpack, resolve_dtype

__all__ = [
    "declared_dtype",
    "DLPACK_FLAG_BITMASK_IS_COPIED",
    "DLPACK_FLAG_BITMASK_READ_ONLY",
    "DLPACK_VERSION",
    "DLDataType",
    "DLDevice",
    "DLDeviceType",
    "DLManagedTensor",
    "DLManagedTensorVersioned",
    "DLPackVersion",
    "DLTensor",
    "DeviceView",
    "WritableView",
    "device_of",
    "device_view",
    "make_capsule",
    "mark_written",
    "writable_view",
]

# The version written into versioned capsules. 1.0 is the first release with
# DLManagedTensorVersioned and both flags below; 1.1 only adds type codes (fp8, fp6, fp4)
# that no fastinit dtype uses yet. Raise the minor when one of those dtypes is added.
DLPACK_VERSION = (1, 0)

DLPACK_FLAG_BITMASK_READ_ONLY = 1 << 0
DLPACK_FLAG_BITMASK_IS_COPIED = 1 << 1


class DLDeviceType(enum.IntEnum):
    """``DLDeviceType`` from dlpack.h."""

    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3  # pinned host memory (cudaMallocHost)
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11  # pinned host memory (hipMallocHost)
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14
    kDLWebGPU = 15
    kDLHexagon = 16
    kDLMAIA = 17
    kDLTrn = 18


# Device types whose memory the CPU may write: plain CPU memory and pinned host memory.
_HOST_DEVICE_TYPES = frozenset({DLDeviceType.kDLCPU, DLDeviceType.kDLCUDAHost, DLDeviceType.kDLROCMHost})

_VOID_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # void (*)(void *)


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint8),
        ("bits", ctypes.c_uint8),
        ("lanes", ctypes.c_uint16),
    ]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),  # in elements; NULL = C-contiguous
        ("byte_offset", ctypes.c_uint64),
    ]


class DLManagedTensor(ctypes.Structure):
    """The legacy (unversioned) managed tensor, capsule name ``"dltensor"``."""

    _fields_ = [
        ("dl_tensor", DLTensor),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", _VOID_FN),
    ]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    """The versioned managed tensor, capsule name ``"dltensor_versioned"``."""

    _fields_ = [
        ("version", DLPackVersion),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", _VOID_FN),
        ("flags", ctypes.c_uint64),
        ("dl_tensor", DLTensor),
    ]


def _capi(name, restype, *argtypes):
    # Private prototypes: setting argtypes on ctypes.pythonapi.X would change them for
    # every other library in the process that uses the same attribute.
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


_py_incref = _capi("Py_IncRef", None, ctypes.py_object)


def _keep_forever(obj):
    """Leak one reference to ``obj`` so it outlives interpreter teardown.

    Consumers may call a deleter, or drop a capsule, after this module's globals have been
    cleared at exit (a torch tensor held by another module's global). What they call into
    (compiled code, ctypes thunks, capsule-name strings) must still be there.
    """
    _py_incref(obj)
    return obj


def _c_string(text: bytes):
    """A NUL-terminated string at a fixed address for the life of the process.

    PyCapsule stores the name pointer, it does not copy the name.
    """
    return _keep_forever(ctypes.create_string_buffer(text))


_NAME_LEGACY = _c_string(b"dltensor")
_NAME_VERSIONED = _c_string(b"dltensor_versioned")
_NAME_USED_LEGACY = _c_string(b"used_dltensor")
_NAME_USED_VERSIONED = _c_string(b"used_dltensor_versioned")


_capsule_new = _capi("PyCapsule_New", ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
# These take the capsule as a bare address: the destructor sees a capsule whose reference
# count is already zero, which must not be wrapped in a Python reference again.
_capsule_get_name = _capi("PyCapsule_GetName", ctypes.c_char_p, ctypes.c_void_p)
_capsule_get_pointer = _capi("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)
_capsule_set_name = _capi("PyCapsule_SetName", ctypes.c_int, ctypes.py_object, ctypes.c_void_p)
_capsule_get_name_obj = _capi("PyCapsule_GetName", ctypes.c_char_p, ctypes.py_object)
_capsule_get_pointer_obj = _capi("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)


# ---------------------------------------------------------------------------------------
# Producer
# ---------------------------------------------------------------------------------------

# Address of each exported managed tensor -> (its ctypes block, the owner it keeps alive).
# An entry is removed exactly once: by the deleter, or by the destructor of a capsule
# that was never consumed. Its size is the number of exports still alive.
_LIVE: dict[int, tuple[ctypes.Structure, object]] = {}


def _python_callbacks(live):
    # Closures rather than module globals: at exit the module's globals are cleared before
    # every foreign tensor is gone.
    pop = live.pop
    get_name, get_pointer = _capsule_get_name, _capsule_get_pointer
    unconsumed = (b"dltensor", b"dltensor_versioned")

    def deleter(managed):
        pop(managed, None)

    def capsule_destructor(capsule):
        # A consumer renames the capsule ("used_dltensor...") when it takes ownership;
        # only a capsule nobody consumed still owns its tensor.
        name = get_name(capsule)
        if name in unconsumed:
            pop(get_pointer(capsule, name), None)  # our own deleter, called directly

    return deleter, capsule_destructor


_TRAMPOLINE_IR = """
define void @{name}(ptr %arg) {{
entry:
  %is_init = call i32 inttoptr (i{w} {is_initialized} to ptr)()
  %alive = icmp ne i32 %is_init, 0
  br i1 %alive, label %run, label %done
run:
  %type = alloca ptr
  %value = alloca ptr
  %tb = alloca ptr
  %gil = call i32 inttoptr (i{w} {gil_ensure} to ptr)()
  call void inttoptr (i{w} {err_fetch} to ptr)(ptr %type, ptr %value, ptr %tb)
  call void inttoptr (i{w} {target} to ptr)(ptr %arg)
  %t = load ptr, ptr %type
  %v = load ptr, ptr %value
  %b = load ptr, ptr %tb
  call void inttoptr (i{w} {err_restore} to ptr)(ptr %t, ptr %v, ptr %b)
  call void inttoptr (i{w} {gil_release} to ptr)(i32 %gil)
  br label %done
done:
  ret void
}}
"""


def _compile_trampolines(targets: dict[str, int]) -> dict[str, int]:
    """Native ``void f(void *)`` entry points that call ``targets`` exception-safely.

    Each one: return at once if the interpreter is gone (as NumPy's deleter does); else
    take the GIL (the caller may be a framework thread without it), set aside the pending
    exception, call the target (a ctypes callback), restore the exception.
    """
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()

    def address(fn):
        return ctypes.cast(fn, ctypes.c_void_p).value

    api = ctypes.pythonapi
    symbols = {
        "w": ctypes.sizeof(ctypes.c_void_p) * 8,
        "is_initialized": address(api.Py_IsInitialized),
        "gil_ensure": address(api.PyGILState_Ensure),
        "gil_release": address(api.PyGILState_Release),
        "err_fetch": address(api.PyErr_Fetch),
        "err_restore": address(api.PyErr_Restore),
    }
    source = "".join(
        _TRAMPOLINE_IR.format(name=name, target=target, **symbols) for name, target in targets.items()
    )
    module = llvm.parse_assembly(source)
    module.triple = llvm.get_process_triple()
    module.verify()
    machine = llvm.Target.from_triple(module.triple).create_target_machine()
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    _keep_forever(engine)  # owns the machine code
    return {name: engine.get_function_address(name) for name in targets}


@functools.cache
def _native_callbacks() -> tuple[int, int]:
    """(deleter, capsule destructor): native addresses, built on first export."""
    deleter, destructor = (_keep_forever(_VOID_FN(fn)) for fn in _python_callbacks(_LIVE))
    entry = _compile_trampolines(
        {
            "fastinit_dlpack_deleter": ctypes.cast(deleter, ctypes.c_void_p).value,
            "fastinit_dlpack_capsule_destructor": ctypes.cast(destructor, ctypes.c_void_p).value,
        }
    )
    return entry["fastinit_dlpack_deleter"], entry["fastinit_dlpack_capsule_destructor"]


@functools.cache
def _block_type(versioned: bool, ndim: int) -> type[ctypes.Structure]:
    # One allocation holds the managed tensor and its shape and strides, so they live and
    # die together. The managed tensor comes first: its address is the block's address.
    head = DLManagedTensorVersioned if versioned else DLManagedTensor
    return type(
        f"_Block{'Versioned' if versioned else ''}{ndim}",
        (ctypes.Structure,),
        {
            "_fields_": [
                ("managed", head),
                ("shape", ctypes.c_int64 * ndim),
                ("strides", ctypes.c_int64 * ndim),
            ]
        },
    )


def make_capsule(
    owner,
    data_ptr: int,
    shape,
    strides,
    dtype: DType,
    device=(DLDeviceType.kDLCPU, 0),
    *,
    versioned: bool,
    read_only: bool = False,
    copied: bool = False,
):
    """A DLPack capsule describing memory that ``owner`` keeps alive.

    ``strides`` are in elements. ``owner`` is referenced until the consumer calls the
    deleter, or until the capsule is dropped unconsumed. ``read_only`` and ``copied`` set
    the versioned flags; a legacy capsule cannot carry them.

    >>> import numpy as np
    >>> from fastinit.dtypes import DTYPES
    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> cap = make_capsule(a, a.ctypes.data, a.shape, (3, 1), DTYPES["float32"],
    ...                    versioned=True)
    >>> class Export:  # np.from_dlpack takes an object with __dlpack__
    ...     def __dlpack__(self, **kwargs): return cap
    ...     def __dlpack_device__(self): return (1, 0)
    >>> b = np.from_dlpack(Export())
    >>> b.ctypes.data == a.ctypes.data, b[1, 2]
    (True, np.float32(5.0))
    """
    shape = tuple(int(n) for n in shape)
    strides = tuple(int(s) for s in strides)
    ndim = len(shape)
    if len(strides) != ndim:
        raise ValueError(f"strides {strides} do not match shape {shape}")
    if not versioned and (read_only or copied):
        raise ValueError("a legacy capsule cannot carry the read-only or copied flag")
    deleter, destructor = _native_callbacks()

    block = _block_type(versioned, ndim)()
    block.shape[:] = shape
    block.strides[:] = strides
    managed = block.managed
    tensor = managed.dl_tensor
    # dlpack.h: "if the tensor is of size zero, then the data pointer should be NULL".
    tensor.data = data_ptr if math.prod(shape) else None
    tensor.device = DLDevice(int(device[0]), int(device[1]))
    tensor.ndim = ndim
    tensor.dtype = DLDataType(dtype.dlpack_code, dtype.bits, 1)
    int64_p = ctypes.POINTER(ctypes.c_int64)
    tensor.shape = ctypes.cast(block.shape, int64_p)
    tensor.strides = ctypes.cast(block.strides, int64_p)
    tensor.byte_offset = 0
    managed.deleter = _VOID_FN(deleter)
    if versioned:
        managed.version = DLPackVersion(*DLPACK_VERSION)
        managed.flags = (DLPACK_FLAG_BITMASK_READ_ONLY if read_only else 0) | (
            DLPACK_FLAG_BITMASK_IS_COPIED if copied else 0
        )

    address = ctypes.addressof(block)
    _LIVE[address] = (block, owner)
    name = _NAME_VERSIONED if versioned else _NAME_LEGACY
    try:
        return _capsule_new(address, ctypes.addressof(name), destructor)
    except BaseException:
        del _LIVE[address]
        raise


# ---------------------------------------------------------------------------------------
# Consumer
# ---------------------------------------------------------------------------------------


class _ImportedTensor:
    """A consumed DLPack tensor: calls the producer's deleter once, when released.

    It is the ``base`` of the NumPy view, so the deleter cannot run while any array
    viewing the memory is alive.
    """

    __slots__ = ("__array_interface__", "_deleter", "_managed")

    def __init__(self, managed: int, deleter):
        self._managed = managed
        self._deleter = deleter if deleter else None

    def release(self) -> None:
        deleter, self._deleter = self._deleter, None
        if deleter is not None:
            deleter(self._managed)

    def __del__(self):
        self.release()


class WritableView:
    """``out`` seen as a NumPy array of ``dtype.storage`` over the same memory.

    ``array`` has the tensor's shape; ``strides`` are in elements. ``release()`` (or
    leaving a ``with`` block) drops the view; when ``out`` was imported through DLPack the
    producer's deleter runs as soon as no array viewing the memory is left.
    """

    __slots__ = ("_array", "dtype")

    def __init__(self, array: np.ndarray, dtype: DType):
        self._array = array
        self.dtype = dtype

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            raise ValueError("this view of out was released")
        return self._array

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(s // self.dtype.itemsize for s in self.array.strides)

    def release(self) -> None:
        self._array = None

    def __enter__(self) -> WritableView:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        if self._array is None:
            return "WritableView(released)"
        return f"WritableView(shape={self.shape}, dtype={self.dtype.name}, strides={self.strides})"


_SUPPORTED = ", ".join(DTYPES)

_DEVICE_NAMES = {
    DLDeviceType.kDLCUDA: "CUDA",
    DLDeviceType.kDLCUDAManaged: "CUDA (managed memory)",
    DLDeviceType.kDLROCM: "ROCm",
}


def writable_view(obj, *, argname: str = "out", dtype=None) -> WritableView:
    """View ``obj`` as a writable NumPy array of its storage dtype, sharing its memory.

    Accepts a writeable NumPy array (a subclass is viewed as the base class over the same
    memory), any CPU DLPack producer (torch tensors, including non-contiguous views and
    bfloat16), and writable buffers (``array.array``, a ``memoryview`` cast to a float
    format). Raises TypeError / ValueError naming ``argname`` for anything fastinit cannot
    write into exactly: read-only, overlapping or masked arrays, non-native byte order, views
    reaching past the ndarray that owns their memory, torch tensors with a lazy neg/conj bit or
    a storage smaller than their shape. DLPack producers are trusted to describe memory they own.

    >>> import numpy as np
    >>> a = np.zeros((2, 3), dtype=np.float32)
    >>> with writable_view(a[:, ::2]) as view:
    ...     view.array[...] = 1.0
    ...     view.dtype.name, view.shape, view.strides
    ('float32', (2, 2), (3, 2))
    >>> a
    array([[1., 0., 1.],
           [1., 0., 1.]], dtype=float32)
    >>> writable_view(np.zeros(3, dtype=np.int32))
    Traceback (most recent call last):
    ...
    TypeError: out has dtype int32, which fastinit does not write; supported dtypes: float32, float64, float16, bfloat16
    """
    if type(obj).__module__.startswith("jax"):
        raise TypeError(
            f"{argname} is a JAX array; JAX arrays are immutable, so fastinit cannot fill "
            f"them in place. Leave {argname}=None and convert the result with "
            "jax.numpy.from_dlpack (no copy)"
        )
    if _is_torch_tensor(obj):
        _check_plain_tensor(obj, argname)
    if isinstance(obj, np.ma.MaskedArray):
        raise ValueError(f"{argname} is a masked array; pass its data ({argname}.data) to fill every element")
    if isinstance(obj, np.ndarray):
        # The base class over the same memory: a subclass's reshape, view or strides may not
        # describe that memory (np.matrix stays 2-D when flattened).
        obj = np.ndarray.view(obj, np.ndarray)
        bits_as = resolve_dtype(dtype) if dtype is not None and obj.dtype == np.uint16 else None
        return _view_numpy(
            obj, argname, bits_as if bits_as is not None and bits_as.name == "bfloat16" else None
        )
    fast = _view_torch_numpy(obj, argname)
    if fast is not None:
        return fast
    if hasattr(obj, "__dlpack__"):
        return _view_dlpack(obj, argname)
    try:
        buffer = memoryview(obj)
    except TypeError:
        raise TypeError(
            f"{argname} must be a NumPy array, a CPU tensor supporting DLPack (such as a "
            f"torch tensor) or a writable buffer; got {type(obj).__name__}"
        ) from None
    if buffer.readonly:
        raise ValueError(f"{argname} is a read-only buffer; fastinit must write into it")
    try:
        array = np.asarray(buffer)
    except (TypeError, ValueError, NotImplementedError):
        raise TypeError(
            f"{argname} is a buffer of format {buffer.format!r} that NumPy cannot view as an array"
        ) from None
    return _view_numpy(array, argname)


def declared_dtype(obj) -> DType | None:
    """The fastinit dtype a plain ndarray or a CPU torch tensor declares, without checking that
    it can be written (``writable_view`` does that); None for anything else or an unsupported
    dtype, so that the caller takes ``writable_view``'s path and its error.

    >>> import numpy as np
    >>> declared_dtype(np.zeros(3, np.float16)).name, declared_dtype(np.zeros(3, np.int8))
    ('float16', None)
    """
    try:
        if type(obj) is np.ndarray:
            return _numpy_dtype_row(obj.dtype, "out")
        if _is_torch_tensor(obj) and obj.device.type == "cpu":
            return resolve_dtype(obj.dtype)
    except (TypeError, ValueError):
        pass
    return None


def _is_torch_tensor(obj) -> bool:
    torch = sys.modules.get("torch")  # a torch tensor can only exist once torch is imported
    return torch is not None and isinstance(obj, torch.Tensor)


def _check_no_lazy_bits(tensor, argname: str) -> None:
    # The memory of a tensor with torch's lazy negation (conjugation) bit holds the negated
    # (conjugated) values, so writing it directly would show the negated fill.
    if tensor.is_neg():
        raise TypeError(
            f"{argname} has torch's lazy negation bit set; fill a plain tensor "
            f"(e.g. {argname}.resolve_neg()) and copy it in"
        )
    if tensor.is_conj():
        raise TypeError(
            f"{argname} has torch's lazy conjugation bit set; fill a plain tensor "
            f"(e.g. {argname}.resolve_conj()) and copy it in"
        )


def _check_plain_tensor(tensor, argname: str) -> None:
    """Refuse torch tensors whose memory does not hold exactly their values."""
    if tensor.is_nested:
        raise TypeError(f"{argname} is a nested tensor; fill its components one by one")
    if tensor.is_meta:
        raise ValueError(f"{argname} is a meta tensor: it has no memory to fill")
    _check_no_lazy_bits(tensor, argname)
    _check_torch_storage(tensor, argname)


def _check_torch_storage(tensor, argname: str) -> None:
    # A storage can be resized under its tensors (FSDP frees flat parameters with resize_(0)),
    # leaving a shape that reaches past the memory.
    if tensor.numel() == 0 or tensor.layout != sys.modules["torch"].strided:
        return
    try:
        held = tensor.untyped_storage().nbytes()
    except (RuntimeError, NotImplementedError):  # no storage (a wrapper subclass): export decides
        return
    last = sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride(), strict=True))
    end = (tensor.storage_offset() + last + 1) * tensor.element_size()
    if end > held:
        raise ValueError(
            f"{argname} reaches byte {end} of its storage, but its storage holds {held} bytes "
            "(resized or freed under the tensor)"
        )
    if tensor.data_ptr() == 0:  # a FakeTensor
        raise ValueError(f"{argname} has no memory (its data pointer is NULL)")


def mark_written(obj) -> None:
    """Tell ``obj``'s framework that fastinit wrote its memory, as its own in-place ops do.

    For a torch tensor this bumps autograd's version counter (shared with its views and
    ``detach()`` aliases), so a backward that saved the old values raises "modified by an
    inplace operation" instead of silently using the new ones. Anything else: nothing to do.
    """
    if _is_torch_tensor(obj):
        sys.modules["torch"].autograd.graph.increment_version(obj)


_TORCH_NUMPY_DTYPES = {"torch.float32": "f4", "torch.float64": "f8", "torch.float16": "f2"}


class _TorchMemory:
    """A torch CPU tensor's memory as NumPy sees it (``__array_interface__``), holding the
    tensor so that the array keeps it alive. ``Tensor.numpy()`` would share the memory as well,
    but marks the storage as never resizable again, which breaks code that frees or grows it
    later (FSDP1's ``summon_full_params(writeback=True)`` frees its storage with ``resize_(0)``)."""

    def __init__(self, tensor, typestr: str):
        self.tensor = tensor
        itemsize = tensor.element_size()
        self.__array_interface__ = {
            "version": 3,
            "shape": tuple(tensor.shape),
            "typestr": np.dtype(typestr).str,
            "data": (tensor.data_ptr(), False),
            "strides": tuple(s * itemsize for s in tensor.stride()),
        }


def _view_torch_numpy(obj, argname: str) -> WritableView | None:
    """A torch CPU tensor of a NumPy dtype as a NumPy array over its memory: a few
    microseconds, against ~80 for a DLPack capsule parsed with ctypes (it adds up over the
    hundreds of tensors of a model). None for anything else: DLPack handles it."""
    if not type(obj).__module__.startswith("torch") or not hasattr(obj, "numpy"):
        return None
    try:
        plain = (
            obj.device.type == "cpu"
            and str(obj.layout) == "torch.strided"
            and str(obj.dtype) in _TORCH_NUMPY_DTYPES
            and not obj.requires_grad
            and not obj.is_conj()
            and not obj.is_neg()
        )
    except (AttributeError, RuntimeError):
        return None
    if not plain:
        return None
    return _view_numpy(np.asarray(_TorchMemory(obj, _TORCH_NUMPY_DTYPES[str(obj.dtype)])), argname)


def _view_numpy(array: np.ndarray, argname: str, bits_of: DType | None = None) -> WritableView:
    # bits_of: a uint16 array holding bfloat16 bits, accepted when dtype="bfloat16" is explicit
    dtype = bits_of if bits_of is not None else _numpy_dtype_row(array.dtype, argname)
    if not array.flags.writeable:
        raise ValueError(f"{argname} is read-only; fastinit must write into it")
    itemsize = array.dtype.itemsize
    if any(s % itemsize for s in array.strides):
        raise ValueError(
            f"{argname} has byte strides {array.strides} that are not multiples of its itemsize {itemsize}"
        )
    strides = tuple(s // itemsize for s in array.strides)
    _check_no_overlap(array.shape, strides, argname)
    _check_inside_owner(array, argname)
    return WritableView(array.view(dtype.storage), dtype)


def _check_inside_owner(array: np.ndarray, argname: str) -> None:
    """Refuse a view that reaches outside the ndarray owning its memory (``as_strided`` can
    describe any address). Memory owned by other objects is taken as described."""
    if array.size == 0:
        return
    owner = array.base
    for _ in range(64):  # base links (ndarray.base, as_strided's DummyArray.base) to the owner
        if owner is None or (isinstance(owner, np.ndarray) and owner.flags.owndata):
            break
        owner = getattr(owner, "base", None)
    if not isinstance(owner, np.ndarray) or not owner.flags.owndata:
        return
    start, owner_start = array.__array_interface__["data"][0], owner.__array_interface__["data"][0]
    spans = [(n - 1) * s for n, s in zip(array.shape, array.strides, strict=True)]
    low = start + sum(d for d in spans if d < 0)
    high = start + sum(d for d in spans if d > 0) + array.itemsize
    if low < owner_start or high > owner_start + owner.nbytes:
        raise ValueError(f"{argname} reaches past the memory of the array it views (an as_strided view?)")


def _numpy_dtype_row(np_dtype: np.dtype, argname: str) -> DType:
    if not np_dtype.isnative:
        raise ValueError(
            f"{argname} has non-native byte order ({np_dtype.str}); fastinit writes native-endian values"
        )
    try:
        # By name: float16/32/64 and ml_dtypes' bfloat16. A uint16 array is refused even
        # though uint16 is bfloat16's storage: its values are not bfloat16 values.
        return resolve_dtype(np_dtype, argname=argname)
    except TypeError:
        raise TypeError(
            f"{argname} has dtype {np_dtype}, which fastinit does not write; supported dtypes: {_SUPPORTED}"
        ) from None


def _check_no_overlap(shape, strides, argname: str) -> None:
    """Refuse layouts where two elements may share memory.

    Sufficient test: sorted by |stride|, each axis must step over everything the smaller
    axes span. It also rejects interleaved layouts that happen not to overlap; no
    framework hands those out.
    """
    if 0 in shape:
        return
    for axis, (n, s) in enumerate(zip(shape, strides, strict=False)):
        if n > 1 and s == 0:
            raise ValueError(
                f"{argname} has stride 0 along axis {axis} (a broadcast view): its "
                "elements share memory, so it cannot be filled"
            )
    span = 1
    for step, n in sorted((abs(s), n) for n, s in zip(shape, strides, strict=False) if n > 1):
        if step < span:
            raise ValueError(
                f"{argname} has overlapping memory (shape {tuple(shape)}, element "
                f"strides {tuple(strides)}): its elements are not all distinct"
            )
        span += step * (n - 1)


def _view_dlpack(obj, argname: str) -> WritableView:
    if hasattr(obj, "__dlpack_device__"):
        _check_host_device(tuple(obj.__dlpack_device__()), argname)
    managed, versioned, imported = _consume_capsule(obj, argname)
    try:
        return _view_managed(managed, versioned, imported, argname)
    except BaseException:
        imported.release()
        raise


def _consume_capsule(obj, argname: str, **request) -> tuple[ctypes.Structure, bool, _ImportedTensor]:
    """(managed tensor, versioned, its owner) from the capsule ``obj.__dlpack__(**request)``
    returns, consumed: renamed as the array API says, so its deleter is ours to call, through
    the owner's ``release`` (the caller releases it if it cannot use the tensor)."""
    try:
        try:
            capsule = obj.__dlpack__(**request, max_version=DLPACK_VERSION)
        except TypeError:  # a producer older than DLPack 1.0 rejects the keyword
            capsule = obj.__dlpack__(**request)
    except BufferError as error:
        if getattr(obj, "requires_grad", False):
            raise TypeError(
                f"{argname} requires grad, and torch will not export such a tensor "
                f"through DLPack; pass {argname}=tensor.detach() instead (it shares the "
                "memory, so the tensor is filled in place), inside torch.no_grad() as "
                "torch.nn.init does"
            ) from error
        raise TypeError(f"{argname} cannot be exported through DLPack: {error}") from error
    name = _capsule_get_name_obj(capsule) if _is_capsule(capsule) else None
    if name not in (b"dltensor", b"dltensor_versioned"):
        raise TypeError(
            f"{argname}.__dlpack__() returned {type(capsule).__name__} named {name!r}, "
            "not an unconsumed DLPack capsule"
        )
    versioned = name == b"dltensor_versioned"
    address = _capsule_get_pointer_obj(capsule, name)
    used = _NAME_USED_VERSIONED if versioned else _NAME_USED_LEGACY
    _capsule_set_name(capsule, ctypes.addressof(used))
    managed = (DLManagedTensorVersioned if versioned else DLManagedTensor).from_address(address)
    return managed, versioned, _ImportedTensor(address, managed.deleter)


def _is_capsule(obj) -> bool:
    return type(obj).__name__ == "PyCapsule"


def _view_managed(managed, versioned: bool, imported, argname: str) -> WritableView:
    dtype, shape, strides, pointer = _managed_layout(
        managed, versioned, argname, writable=True, check_device=_check_host_device
    )
    storage = dtype.storage
    if math.prod(shape) == 0:
        imported.release()  # no memory to share
        return WritableView(np.empty(shape, dtype=storage), dtype)
    imported.__array_interface__ = {
        "version": 3,
        "shape": shape,
        "typestr": storage.str,
        "data": (pointer, False),
        "strides": tuple(s * dtype.itemsize for s in strides),
    }
    try:
        array = np.asarray(imported)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{argname} describes more memory than an address space holds (shape {shape}, strides {strides})"
        ) from None
    return WritableView(array, dtype)


def _managed_layout(managed, versioned: bool, argname: str, *, writable: bool, check_device):
    """(dtype, shape, strides in elements, address of element [0, ...]) of a consumed managed
    tensor, after the checks every consumer makes; ``check_device((type, id), argname)``
    accepts or refuses its device."""
    if versioned:
        version = (managed.version.major, managed.version.minor)
        if version[0] != DLPACK_VERSION[0]:
            # dlpack.h: on a major mismatch only the deleter may be touched.
            raise ValueError(
                f"{argname} was exported with DLPack {version[0]}.{version[1]}; "
                f"fastinit reads DLPack {DLPACK_VERSION[0]}.x"
            )
        if writable and managed.flags & DLPACK_FLAG_BITMASK_READ_ONLY:
            raise ValueError(f"{argname} is read-only; fastinit must write into it")
        if writable and managed.flags & DLPACK_FLAG_BITMASK_IS_COPIED:
            raise ValueError(f"{argname} was copied by its producer on export, so writes would not reach it")
    tensor = managed.dl_tensor
    check_device((tensor.device.device_type, tensor.device.device_id), argname)
    code, bits, lanes = tensor.dtype.code, tensor.dtype.bits, tensor.dtype.lanes
    dtype = dtype_from_dlpack(code, bits) if lanes == 1 else None
    if dtype is None:
        raise TypeError(
            f"{argname} has DLPack dtype (code={code}, bits={bits}, lanes={lanes}), "
            f"which fastinit does not write; supported dtypes: {_SUPPORTED}"
        )
    ndim = tensor.ndim
    if not 0 <= ndim <= 64:
        raise ValueError(f"{argname} was exported with ndim={ndim}")
    shape = tuple(tensor.shape[:ndim]) if ndim else ()
    if any(n < 0 for n in shape):
        raise ValueError(f"{argname} has a negative dimension: shape {shape}")
    if tensor.strides and ndim:
        strides = tuple(tensor.strides[:ndim])
    else:  # NULL strides: C-contiguous (allowed before DLPack 1.0)
        strides = tuple(math.prod(shape[i + 1 :]) for i in range(ndim))
    if writable:
        _check_no_overlap(shape, strides, argname)
    if math.prod(shape) and not tensor.data:
        raise ValueError(f"{argname} was exported with a NULL data pointer")
    return dtype, shape, strides, (tensor.data or 0) + tensor.byte_offset


def _check_host_device(device: tuple[int, int], argname: str) -> None:
    device_type = int(device[0])
    if device_type in _HOST_DEVICE_TYPES:
        return
    try:
        name = _DEVICE_NAMES.get(device_type) or DLDeviceType(device_type).name[3:]
    except ValueError:
        name = f"DLPack device type {device_type}"
    hint = (
        "; the CUDA backend writes CUDA memory (device='cuda', or pass out to the sampler)"
        if device_type in _CUDA_DEVICE_TYPES
        else ""
    )
    raise ValueError(
        f"{argname} is on a {name} device ({device_type}, {int(device[1])}); "
        f"fastinit fills CPU memory here{hint}"
    )


# ---------------------------------------------------------------------------------------
# CUDA memory (for the CUDA backend)
# ---------------------------------------------------------------------------------------

# Device types whose memory a CUDA kernel may write: device memory and managed memory.
_CUDA_DEVICE_TYPES = frozenset({DLDeviceType.kDLCUDA, DLDeviceType.kDLCUDAManaged})


def device_of(obj) -> tuple[str, int | None] | None:
    """``("cuda", ordinal)`` when ``obj`` is CUDA memory (ordinal None when only its pointer
    can tell), else None: host memory, JAX arrays (refused as immutable by the host path) and
    other devices (refused there by name). By type and attributes alone; imports nothing.

    >>> import numpy as np
    >>> device_of(np.zeros(3)) is None
    True
    """
    module = type(obj).__module__ or ""
    if isinstance(obj, np.ndarray) or module.startswith("jax"):
        return None
    if module.startswith("torch") and hasattr(obj, "is_cuda"):
        return ("cuda", obj.device.index) if obj.is_cuda else None
    if getattr(type(obj), "__cuda_ndarray__", False):  # Numba device arrays, also simulated
        return ("cuda", None)
    dl_device = getattr(obj, "__dlpack_device__", None)
    if dl_device is not None:
        try:
            device_type, device_id = dl_device()
        except (TypeError, ValueError, BufferError):
            return None
        return ("cuda", int(device_id)) if int(device_type) in _CUDA_DEVICE_TYPES else None
    return ("cuda", None) if hasattr(obj, "__cuda_array_interface__") else None


class DeviceView:
    """CUDA memory described for a kernel: ``pointer`` (of element [0, ..., 0]), ``shape``,
    ``strides`` (elements), ``dtype``, ``device_id`` (None: ask the driver about the pointer),
    ``stream`` (the ``cudaStream_t`` to work on as an int; None: the legacy default stream)
    and ``wait`` (True when the producer cannot be told about work on its memory: the writer
    then waits for its kernel). ``release()`` (or leaving a ``with`` block) lets it go.
    """

    __slots__ = ("_keep", "device_id", "dtype", "pointer", "shape", "stream", "strides", "wait")

    def __init__(self, pointer, shape, strides, dtype, device_id, stream, wait, keep):
        self.pointer, self.shape, self.strides, self.dtype = pointer, shape, strides, dtype
        self.device_id, self.stream, self.wait, self._keep = device_id, stream, wait, keep

    def release(self) -> None:
        keep, self._keep = self._keep, None
        if isinstance(keep, _ImportedTensor):
            keep.release()

    def __enter__(self) -> DeviceView:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"DeviceView(pointer={self.pointer:#x}, shape={self.shape}, strides={self.strides}, "
            f"dtype={self.dtype.name}, device_id={self.device_id}, stream={self.stream})"
        )


def device_view(obj, *, argname: str = "out", writable: bool = True) -> DeviceView:
    """Describe the CUDA memory of ``obj`` (see ``device_of``) without copying it.

    Accepts torch CUDA tensors (any strides, bfloat16 included; the stream is torch's current
    stream on the tensor's device), ``__cuda_array_interface__`` objects (CuPy, Numba; its
    ``stream`` entry is the stream to work on) and DLPack producers on kDLCUDA /
    kDLCUDAManaged (exported for the legacy default stream). Errors name ``argname``.

    >>> from fastinit.dtypes import DTYPES
    >>> class Fake:  # any object with a CUDA Array Interface
    ...     __cuda_array_interface__ = {"shape": (2, 3), "typestr": "<f4", "data": (4096, False),
    ...                                 "version": 3, "strides": None, "stream": 1}
    >>> with device_view(Fake()) as view:
    ...     view.pointer, view.shape, view.strides, view.dtype.name, view.stream
    (4096, (2, 3), (3, 1), 'float32', 1)
    """
    module = type(obj).__module__ or ""
    if module.startswith("torch") and hasattr(obj, "is_cuda"):
        return _torch_device_view(obj, argname, writable)
    try:
        interface = obj.__cuda_array_interface__
    except AttributeError:
        interface = None
    if interface is not None:
        return _interface_view(obj, interface, argname, writable)
    if hasattr(obj, "__dlpack__"):
        return _dlpack_device_view(obj, argname, writable)
    raise TypeError(
        f"{argname} must be CUDA memory fastinit can write (a torch CUDA tensor, a CuPy or Numba "
        f"array, or any DLPack / __cuda_array_interface__ object); got {type(obj).__name__}"
    )


def _torch_device_view(t, argname: str, writable: bool) -> DeviceView:
    import torch

    if writable and t.requires_grad:
        raise TypeError(
            f"{argname} requires grad; pass {argname}=tensor.detach() instead (it shares the "
            "memory, so the tensor is filled in place), inside torch.no_grad() as torch.nn.init does"
        )
    _check_plain_tensor(t, argname)
    try:
        dtype = resolve_dtype(t.dtype, argname=argname)
    except TypeError:
        raise TypeError(
            f"{argname} has dtype {t.dtype}, which fastinit does not write; supported dtypes: {_SUPPORTED}"
        ) from None
    shape, strides = tuple(t.shape), tuple(t.stride())
    if writable:
        _check_no_overlap(shape, strides, argname)
    stream = torch.cuda.current_stream(t.device).cuda_stream
    return DeviceView(t.data_ptr(), shape, strides, dtype, t.device.index, stream or None, False, t)


def _interface_view(obj, interface: dict, argname: str, writable: bool) -> DeviceView:
    if interface.get("mask") is not None:
        raise ValueError(f"{argname} is a masked array (its __cuda_array_interface__ has a mask)")
    pointer, read_only = interface["data"]
    if writable and read_only:
        raise ValueError(f"{argname} is read-only; fastinit must write into it")
    np_dtype = np.dtype(interface["typestr"])
    dtype = _numpy_dtype_row(np_dtype, argname)
    shape = tuple(int(n) for n in interface["shape"])
    byte_strides = interface.get("strides")
    if byte_strides is None:
        strides = tuple(math.prod(shape[i + 1 :]) for i in range(len(shape)))
    else:
        if any(int(s) % np_dtype.itemsize for s in byte_strides):
            raise ValueError(
                f"{argname} has byte strides {tuple(byte_strides)} that are not multiples of its "
                f"itemsize {np_dtype.itemsize}"
            )
        strides = tuple(int(s) // np_dtype.itemsize for s in byte_strides)
    if writable:
        _check_no_overlap(shape, strides, argname)
    _check_aligned(int(pointer or 0), dtype, argname)
    stream = interface.get("stream") if interface.get("version", 0) >= 3 else None
    device = getattr(obj, "device", None)  # CuPy arrays know their device
    device_id = getattr(device, "id", None)
    return DeviceView(int(pointer or 0), shape, strides, dtype, device_id, stream, stream is None, obj)


def _dlpack_device_view(obj, argname: str, writable: bool) -> DeviceView:
    # stream=1: exported for the legacy default stream (see device_view)
    managed, versioned, imported = _consume_capsule(obj, argname, stream=1)
    try:
        dtype, shape, strides, pointer = _managed_layout(
            managed, versioned, argname, writable=writable, check_device=_check_cuda_device
        )
        _check_aligned(pointer, dtype, argname)
        device_id = int(managed.dl_tensor.device.device_id)
        return DeviceView(pointer, shape, strides, dtype, device_id, None, True, imported)
    except BaseException:
        imported.release()
        raise


def _check_aligned(pointer: int, dtype: DType, argname: str) -> None:
    # The host writes unaligned memory correctly (Numba's unaligned array types); a GPU store
    # to such an address faults and leaves the CUDA context unusable.
    if pointer % dtype.itemsize:
        raise ValueError(
            f"{argname} is at address {pointer:#x}, not a multiple of its itemsize {dtype.itemsize}"
        )


def _check_cuda_device(device: tuple[int, int], argname: str) -> None:
    if int(device[0]) not in _CUDA_DEVICE_TYPES:
        raise ValueError(
            f"{argname} was exported for DLPack device {tuple(int(d) for d in device)}, not CUDA memory"
        )
