"""``FillPlan``: which flat indices of a tensor go to which elements of an output, the contract
every backend consumes (``driver.py`` builds it from shape, ``index=`` and ``out=``), and
``flat_storage``: an output in host memory as the flat array and offsets a plan writes to."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["FillPlan", "flat_storage", "offset_range"]


@dataclass(frozen=True)
class FillPlan:
    """Which flat source indices go where: for every multi-index k over ``outer`` x ``n``,

    source flat index  = src_base + sum(k_j * src_strides[j]) + e * src_step
    destination offset = dst_base + sum(k_j * dst_strides[j]) + e * dst_step    (e < n)
    """

    outer: tuple[int, ...]
    src_strides: tuple[int, ...]
    dst_strides: tuple[int, ...]
    src_base: int
    dst_base: int
    n: int
    src_step: int
    dst_step: int

    @property
    def size(self) -> int:
        return math.prod(self.outer) * self.n


def offset_range(shape, strides) -> tuple[int, int]:
    """(low, high) element offsets of a layout relative to element [0, ..., 0]; (0, -1) when
    it has no element.

    >>> offset_range((2, 3), (3, 1)), offset_range((2, 3), (-3, 1)), offset_range((0, 3), (3, 1))
    ((0, 5), (-3, 2), (0, -1))
    """
    if math.prod(shape) == 0:
        return 0, -1
    low = sum((n - 1) * s for n, s in zip(shape, strides, strict=True) if s < 0)
    high = sum((n - 1) * s for n, s in zip(shape, strides, strict=True) if s > 0)
    return low, high


def flat_storage(array: np.ndarray) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """(flat, base, strides) of an output held in host memory: a 1-D array over the memory of
    ``array`` (any strides, negative ones too), the offset of array[0, ..., 0] in it and the
    strides in elements: the destination side of a ``FillPlan``.

    >>> a = np.arange(12.0).reshape(3, 4)[::-1, 1::2]  # negative and non-unit strides
    >>> flat, base, strides = flat_storage(a)
    >>> strides, bool(flat[base] == a[0, 0]), bool(flat[base + strides[0] + strides[1]] == a[1, 1])
    ((-4, 2), True, True)
    """
    array = np.ndarray.view(array, np.ndarray)  # a subclass's reshape may not flatten (np.matrix)
    itemsize = array.itemsize
    if array.size == 0:
        return array.reshape(-1), 0, (0,) * array.ndim
    if array.ndim == 0:  # array[()] would be a copy: view the one element as a 1-D array
        return array.reshape(1), 0, ()
    if array.flags.c_contiguous:
        return array.reshape(-1), 0, tuple(s // itemsize for s in array.strides)
    strides = [s // itemsize for s in array.strides]
    low, high = offset_range(array.shape, strides)
    corner = array[
        tuple(slice(n - 1, n) if s < 0 else slice(0, 1) for n, s in zip(array.shape, strides, strict=False))
    ]
    flat = np.lib.stride_tricks.as_strided(corner, shape=(high - low + 1,), strides=(itemsize,))
    return flat, -low, tuple(strides)
