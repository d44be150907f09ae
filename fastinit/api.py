"""The import path ``fastinit.api``, kept for code written against it.

It re-exports the public samplers (``fastinit.samplers``: reach them as ``fastinit.uniform``,
``fastinit.normal``, ``fastinit.truncated_normal``) and the driver's helpers
(``fastinit.driver`` and ``check_device`` of ``fastinit.cuda_runtime``, not public API).
Nothing inside the package imports this module.
"""

from __future__ import annotations

from .cuda_runtime import check_device
from .driver import (
    MAX_ELEMENTS,
    check_real,
    check_shape,
    deliver,
    index_coordinates,
    normalized_index,
    output_dtype,
    result_shape,
    sample,
    target_device,
)
from .dtypes import round_to_dtype
from .samplers import normal, truncated_normal, uniform

__all__ = [
    "uniform",
    "normal",
    "truncated_normal",
    "sample",
    "deliver",
    "result_shape",
    "normalized_index",
    "index_coordinates",
    "round_to_dtype",
    "output_dtype",
    "check_device",
    "target_device",
    "check_shape",
    "check_real",
    "MAX_ELEMENTS",
]
