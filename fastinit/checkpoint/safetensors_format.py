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
import struct

from ..dtypes import DType, resolve_dtype

__all__ = ["SAFETENSORS_DTYPES", "build_header", "read_header", "HeaderEntry"]

SAFETENSORS_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16"}
_FROM_CODE = {code: name for name, code in SAFETENSORS_DTYPES.items()}


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


def read_header(path) -> tuple[dict[str, str], list[HeaderEntry], int]:
    """(metadata, entries in file order, start of the data section) of a safetensors file.

    Raises ValueError with the file name when it is not a valid safetensors file.
    """
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) != 8:
            raise ValueError(f"{path}: too short to be a safetensors file")
        (n,) = struct.unpack("<Q", prefix)
        if n > 100_000_000:
            raise ValueError(f"{path}: header length {n} is not plausible: not a safetensors file")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path}: the header is not valid JSON: not a safetensors file") from None
    metadata = header.pop("__metadata__", {}) or {}
    entries = []
    for name, info in header.items():
        code = info.get("dtype")
        if code not in _FROM_CODE:
            raise ValueError(f"{path}: tensor {name} has dtype {code}, which fastinit does not handle")
        begin, end = info["data_offsets"]
        entries.append(HeaderEntry(name, resolve_dtype(_FROM_CODE[code]), tuple(info["shape"]), begin, end))
    entries.sort(key=lambda e: e.begin)
    return metadata, entries, 8 + n
