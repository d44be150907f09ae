"""``FillPlan``: which flat indices of a tensor go to which elements of an output, the contract
every backend consumes (``api.py`` builds it from shape, ``index=`` and ``out=``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FillPlan"]


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
