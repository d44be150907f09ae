"""The safetensors file format, written and read without the safetensors package.

    8 bytes      N, the header length (little-endian uint64)
    N bytes      the header: JSON {"__metadata__": {str: str}, name: {"dtype", "shape",
                 "data_offsets": [begin, end]}, ...}, padded with spaces to a multiple of 8
    data         the tensors back to back (row-major, little-endian), offsets relative to here

Offsets follow from the shapes alone, so the header is written before any value exists and
every tensor can then be generated straight into its place in the file.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct

import numpy as np

from ..dtypes import DType, resolve_dtype
from .files import open_regular, shown

__all__ = ["SAFETENSORS_DTYPES", "ITEMSIZE", "MAX_HEADER_BYTES", "build_header", "read_header", "read_raw_header",
           "HeaderEntry", "TensorFile"]  # fmt: skip

SAFETENSORS_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16"}
_FROM_CODE = {code: name for name, code in SAFETENSORS_DTYPES.items()}
# bytes per element of every dtype code the safetensors format defines
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
            "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
# the NumPy dtype of each code that has one (BF16: ml_dtypes.bfloat16, see TensorFile.array)
_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
                 "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}  # fmt: skip


class HeaderEntry:
    """One tensor in a file: its name, dtype, shape and byte range in the data section."""

    __slots__ = ("name", "dtype", "shape", "begin", "end")

    def __init__(self, name: str, dtype: DType, shape: tuple[int, ...], begin: int, end: int):
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


def build_header(tensors, metadata: dict[str, str]) -> tuple[bytes, list[HeaderEntry]]:
    """The header bytes (length prefix included) for ``tensors`` = [(name, DType, shape)],
    laid out in the given order, and the entries with their data offsets."""
    header: dict[str, object] = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    entries, offset = [], 0
    for name, dtype, shape in tensors:
        dtype = resolve_dtype(dtype)
        nbytes = dtype.itemsize
        for d in shape:
            nbytes *= d
        entries.append(HeaderEntry(name, dtype, tuple(shape), offset, offset + nbytes))
        header[name] = {"dtype": SAFETENSORS_DTYPES[dtype.name], "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}  # fmt: skip
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, entries


def read_raw_header(path) -> tuple[dict[str, str], list[tuple[str, str, tuple[int, ...], int, int]], int]:
    """(metadata, [(name, dtype code, shape, begin, end)] in file order, start of the data
    section) of the safetensors file at ``path``, any dtype safetensors defines.

    The file is untrusted: it must be a regular file (see files.py) whose header is a JSON object
    of the documented form, every shape a list of integers >= 0, every byte range inside the file
    and exactly dtype size x shape long, the ranges covering the data section without gap or
    overlap. Anything else raises ValueError naming the file, so that no work is done for what a
    file merely claims to hold.
    """
    path = os.fspath(path)
    with os.fdopen(open_regular(path), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        if len(prefix) != 8:
            raise ValueError(f"{path}: too short to be a safetensors file")
        (n,) = struct.unpack("<Q", prefix)
        if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(
                f"{path}: the header length does not fit the file ({size} bytes): not a safetensors file"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError(f"{path}: the header is not valid JSON: not a safetensors file") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header is not a JSON object: not a safetensors file")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"{path}: __metadata__ must map names to strings")
    entries = sorted((_entry(path, name, info) for name, info in header.items()), key=lambda e: (e[3], e[4]))
    end = 0
    for name, _, _, begin, stop in entries:
        if begin != end:
            raise ValueError(f"{path}: tensor {shown(name)} starts at byte {begin} of the data, not {end} "
                             "(tensors overlap or leave a gap)")  # fmt: skip
        end = stop
    if 8 + n + end != size:
        raise ValueError(f"{path}: the file has {size} bytes but its header describes {8 + n + end} "
                         f"({'trailing bytes' if size > 8 + n + end else 'truncated'})")  # fmt: skip
    return metadata, entries, 8 + n


def _entry(path: str, name: str, info) -> tuple[str, str, tuple[int, ...], int, int]:
    if not isinstance(info, dict):
        raise ValueError(f"{path}: tensor {shown(name)} is not described by an object")
    code, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(code, str) or code not in ITEMSIZE:
        raise ValueError(f"{path}: tensor {shown(name)} has a dtype the safetensors format does not define")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise ValueError(f"{path}: tensor {shown(name)}: shape must be a list of integers >= 0")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise ValueError(f"{path}: tensor {shown(name)}: data_offsets must be two integers >= 0")
    begin, end = offsets
    nbytes = ITEMSIZE[code] * math.prod(shape)
    if end - begin != nbytes:
        raise ValueError(f"{path}: tensor {shown(name)} has {end - begin} bytes for shape {shape} in {code} "
                         f"({nbytes} bytes)")  # fmt: skip
    return name, code, tuple(shape), begin, end


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_header(path) -> tuple[dict[str, str], list[HeaderEntry], int]:
    """(metadata, entries in file order, start of the data section) of a safetensors file whose
    tensors all have a dtype fastinit writes; checked as ``read_raw_header`` checks.

    Raises ValueError with the file name when it is not a valid safetensors file.
    """
    metadata, raw, data_start = read_raw_header(path)
    entries = []
    for name, code, shape, begin, end in raw:
        if code not in _FROM_CODE:
            raise ValueError(f"{path}: tensor {shown(name)} has dtype {code}, which fastinit does not handle")
        entries.append(HeaderEntry(name, resolve_dtype(_FROM_CODE[code]), shape, begin, end))
    return metadata, entries, data_start


class TensorFile:
    """The tensors of a safetensors file, read through a read-only memory map: ``metadata``,
    ``entries`` (name, dtype code, shape, begin, end) in file order, and ``array(name)``, a
    NumPy view that reads the file only where it is used. The header is checked as
    ``read_raw_header`` checks it; use it as a context manager (it closes the map).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.metadata, self.entries, self._data_start = read_raw_header(self.path)
        self._by_name = {e[0]: e for e in self.entries}
        with os.fdopen(open_regular(self.path), "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def dtype_code(self, name: str) -> str:
        """The safetensors dtype code of the tensor ``name`` ("F32", "BF16", "I64", ...)."""
        return self._by_name[name][1]

    def array(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a read-only array; TypeError for a dtype NumPy cannot hold
        (bfloat16 without ml_dtypes, the float8 codes)."""
        _, code, shape, begin, end = self._by_name[name]
        if code == "BF16":
            try:
                import ml_dtypes
            except ImportError:
                raise TypeError("bfloat16 has no NumPy dtype without the ml_dtypes package "
                                "(pip install ml_dtypes)") from None  # fmt: skip
            dtype = np.dtype(ml_dtypes.bfloat16)
        elif code in _NUMPY_DTYPES:
            dtype = np.dtype(_NUMPY_DTYPES[code])
        else:
            raise TypeError(f"dtype {code} has no NumPy dtype")
        count = (end - begin) // dtype.itemsize
        return np.frombuffer(self._map, dtype, count, self._data_start + begin).reshape(shape)

    def close(self) -> None:
        try:
            self._map.close()
        except BufferError:  # arrays still view the map: it closes when the last one goes
            pass

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
