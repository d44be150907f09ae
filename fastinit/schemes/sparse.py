"""Sparse initialization (Martens 2010, "Deep learning via Hessian-free optimization"), as
``torch.nn.init.sparse_``: N(0, std**2) values with exactly ceil(sparsity * rows) zeros per
column.

Unlike torch (whose zero pattern comes from ``torch.randperm`` and ignores the generator), the
pattern here comes from the tensor's own stream: substream 1 of (seed, name) gives every
element a 53-bit uniform key, and in each column the rows with the smallest keys (ties broken
by row) are zeroed. Values come from substream 0, so the non-zero values equal
``fastinit.normal(shape, 0, std, seed=seed, name=name)`` at the same positions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import driver, samplers
from ..distributions import UNIFORM
from ..typing import ArrayOut, DeviceLike, DTypeLike, IndexLike, RealLike, SeedLike, ShapeLike
from .record import Prediction, Scheme

__all__ = ["sparse", "RECORDS"]

_UNIT_INTERVAL = np.array([0.0, 1.0, 0.0, np.nextafter(1.0, 0.0), 0.0, 0.0, 0.0, 0.0])


def sparse(
    shape: ShapeLike,
    sparsity: RealLike,
    std: RealLike = 0.01,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """2-D tensor, N(0, std**2), with ceil(sparsity * rows) zeros in every column.

    >>> import fastinit, numpy as np
    >>> w = np.asarray(fastinit.sparse((10, 4), 0.25, seed=0, name="w"))
    >>> (w == 0).sum(axis=0).tolist()
    [3, 3, 3, 3]
    """
    shape = driver.check_shape(shape)
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    sparsity = driver.check_real(sparsity, "sparsity")
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity={sparsity} must be in [0, 1]")
    std = driver.check_real(std, "std")
    if std < 0:
        raise ValueError(f"std={std} must be >= 0")
    driver.target_device(device, out)  # a bad device fails before the host work
    dt = driver.output_dtype(dtype, out)
    compute = "float64" if dt.compute == 64 else "float32"
    if 0 in shape or 0 in driver.result_shape(shape, index):  # nothing to factor / rank
        return samplers.normal(shape, 0.0, 0.0, dtype=dt, device=device, index=index, out=out)
    rows, cols = driver.normalized_index(shape, index)
    # Ranking needs whole columns: generate every row of the indexed columns, then select rows.
    columns = (slice(None), cols)
    values = np.asarray(samplers.normal(shape, 0.0, std, seed=seed, name=name, dtype=compute, index=columns))
    num_zeros = math.ceil(sparsity * shape[0])
    if num_zeros and values.size:
        keys = np.asarray(driver.sample(shape, UNIFORM, _UNIT_INTERVAL, seed=seed, name=name, dtype="float64",
                                     index=columns, substream=1))  # fmt: skip
        keys = keys.reshape(shape[0], -1)
        zero_rows = np.argsort(keys, axis=0, kind="stable")[:num_zeros]
        values = values.reshape(shape[0], -1).copy()
        np.put_along_axis(values, zero_rows, 0, axis=0)
    selected = values.reshape(shape[0], -1)[rows]
    return driver.deliver(selected.reshape(driver.result_shape(shape, index)), shape, dtype=dt, device=device,
                       index=index, out=out)  # fmt: skip


def _predict_sparse(a: dict[str, Any]) -> Prediction:
    from scipy import stats

    rows = a["shape"][0]
    frac, std = math.ceil(float(a["sparsity"]) * rows) / rows, float(a["std"])
    return Prediction("sparse", 0.0, std * math.sqrt(1 - frac), stats.norm(0.0, std) if std > 0 else None,
                      zero_fraction=frac, note="KS on the non-zero values; checks the zeros per column")  # fmt: skip


# the zeros of a column come from ranking the whole column: any part costs whole columns
RECORDS = (Scheme("sparse", sparse, whole_tensor=True, predict=_predict_sparse),)
