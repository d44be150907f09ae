"""Types of fastinit's public API, for annotations in your own code (as ``numpy.typing``).

    from fastinit.typing import ShapeLike, DTypeLike

    def init_layer(shape: ShapeLike, dtype: DTypeLike = "bfloat16") -> fastinit.FastArray: ...

The aliases say what each argument accepts, as the functions check it at run time:

===============  ==================================================================================
``ShapeLike``    an int, or a sequence of ints (tuple, list, ``torch.Size``, a 1-D integer array)
``DTypeLike``    anything ``fastinit.resolve_dtype`` accepts: "float32", "bf16", NumPy dtypes and
                 scalar types, ``ml_dtypes.bfloat16``, torch and JAX dtypes (``Any``, as in JAX:
                 framework dtype objects have no common type)
``IndexLike``    an int, a slice, ``...``, or a tuple of those (NumPy basic indexing)
``DeviceLike``   "cpu", "cuda" (the current GPU) or "cuda:N"
``RealLike``     a real number: Python int or float, NumPy integer or floating scalar
``SeedLike``     an int in [0, 2**64), Python or NumPy
``AxesLike``     an axis, or a sequence of axes
``StrPath``      a path: str or ``os.PathLike[str]``
``ChunksLike``   the chunks of a dask array (``fastinit.dask``), as ``dask.array`` takes them
``ArrayOut``     what a sampler or scheme returns: a new ``FastArray``, or ``out`` itself (any
                 array type: NumPy, torch, CuPy, ...) when ``out=`` is given
===============  ==================================================================================

and the string choices of the schemes (``Layout``, ``FanMode``, ``Distribution``, ``Nonlinearity``,
``QRBackend``, ``Draw``) as ``Literal`` types.

Every alias is a plain object at run time (``typing.get_type_hints`` resolves the annotations);
this module imports only NumPy and the standard library.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Literal, SupportsIndex, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ArrayOut",
    "AxesLike",
    "ChunksLike",
    "DTypeLike",
    "DeviceLike",
    "Distribution",
    "Draw",
    "FanMode",
    "IndexLike",
    "Layout",
    "Nonlinearity",
    "QRBackend",
    "RealLike",
    "SeedLike",
    "ShapeLike",
    "StrPath",
]

ShapeLike: TypeAlias = SupportsIndex | Sequence[SupportsIndex] | NDArray[np.integer[Any]]
DTypeLike: TypeAlias = Any
IndexLike: TypeAlias = SupportsIndex | slice | EllipsisType | tuple[SupportsIndex | slice | EllipsisType, ...]
DeviceLike: TypeAlias = str
RealLike: TypeAlias = float | np.floating[Any] | np.integer[Any]
SeedLike: TypeAlias = int | np.integer[Any]
AxesLike: TypeAlias = SupportsIndex | Sequence[SupportsIndex]
StrPath: TypeAlias = str | os.PathLike[str]
# what dask.array takes as chunks (fastinit.dask): "auto", a block size per dimension or for all,
# explicit block sizes, or {axis: size}
ChunksLike: TypeAlias = int | str | Sequence[Any] | dict[int, Any]

# the fan convention of a weight's shape (schemes/fans.py)
Layout: TypeAlias = Literal["torch", "jax", "keras"]
FanMode: TypeAlias = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
Distribution: TypeAlias = Literal["truncated_normal", "normal", "untruncated_normal", "uniform"]
# torch.nn.init.calculate_gain's nonlinearities (torch names this type _NonlinearityType)
Nonlinearity: TypeAlias = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]
# orthogonal's QR: "scipy" or "torch" on the CPU, "cupy" or "torch" on a GPU
QRBackend: TypeAlias = Literal["scipy", "torch", "cupy"]
# the draws a custom scheme applies its function to
Draw: TypeAlias = Literal["uniform", "normal", "truncated_normal"]

if TYPE_CHECKING:
    # A type variable with a default (PEP 696): a call without ``out=`` (or with out=None)
    # returns a FastArray, a call with ``out=x`` returns x's type. Only type checkers see the
    # default (typing_extensions is in their bundled stubs; Python has it from 3.13).
    from typing_extensions import TypeVar

    from .array import FastArray

    ArrayOut = TypeVar("ArrayOut", default=FastArray)
else:
    from typing import TypeVar

    ArrayOut = TypeVar("ArrayOut")
