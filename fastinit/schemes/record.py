"""The record of one scheme (``Scheme``) and what a scheme predicts for a tensor (``Prediction``).

Every fact fastinit uses about a scheme is a field of its record: the function that draws it,
whether a part of the tensor costs the whole tensor (the checkpoint writer then generates it in
one piece), the matrices a QR factors (``fastinit.dask`` refuses chunks that split one), the
moments and distribution a tensor drawn by it should show (``fastinit inspect``), and how its
parameters are checked and recorded in a config. Each scheme module declares the records of its
schemes beside their functions; ``registry.py`` collects them. A new scheme is one function and
one record, in one file.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..typing import ArrayOut

__all__ = ["Scheme", "Prediction", "zero_mean_prediction", "exact_prediction"]

# the per-call keywords every scheme takes; an Initializer's params are everything else
CALL_KEYWORDS = ("seed", "name", "dtype", "device", "index", "out")


@dataclass
class Prediction:
    """What a scheme predicts for a tensor of a given shape.

    ``kind``: "distribution" (i.i.d. draws from ``dist``, a frozen scipy.stats distribution),
    "orthogonal", "delta_orthogonal", "exact" (constant, zeros, ones, eye, dirac, values: the
    values are known), "sparse" (``dist`` for the non-zero values, ``zero_fraction`` zeros) or
    "unknown" (custom schemes). ``mean`` / ``std`` are the whole tensor's expected mean and std
    (for orthogonal kinds, std is the exact root mean square); None when not predictable.
    ``scheme`` is the config as text, e.g. "normal(std=0.02)". For the orthogonal kinds,
    ``matrices(values)`` gives the (batch, rows, cols) stack of the tensor's matrices that must be
    orthogonal times ``gain`` (every value outside them is zero).
    """

    kind: str
    mean: float | None = None
    std: float | None = None
    dist: Any = None
    low: float | None = None  # support (values must lie in [low, high])
    high: float | None = None
    zero_fraction: float = 0.0
    note: str = ""
    scheme: str = ""
    matrices: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    gain: float | None = None

    @property
    def family(self) -> str:
        """The distribution family the KS test uses ("normal", "truncated normal", "uniform"),
        or "n/a"."""
        if self.dist is None:
            return "n/a"
        return {"norm": "normal", "truncnorm": "truncated normal", "uniform": "uniform"}[self.dist.dist.name]


def exact_prediction(value: float) -> Prediction:
    """Every value equals ``value``."""
    value = float(value)
    return Prediction("exact", value, 0.0, low=value, high=value)


def zero_mean_prediction(distribution: str, std: float, truncated_std: float) -> Prediction:
    """A zero-mean variance-scaling draw with this std: "normal" / "untruncated_normal",
    "uniform", or "truncated_normal" (at +-2 sigma of the underlying normal, whose std is
    ``truncated_std`` of the underlying sigma: JAX's correction, rescaled so the std is ``std``)."""
    from scipy import stats

    if std == 0.0:
        return Prediction("exact", 0.0, 0.0, low=0.0, high=0.0, note="std 0: all zeros")
    if distribution in ("normal", "untruncated_normal"):
        return Prediction("distribution", 0.0, std, stats.norm(0.0, std))
    if distribution == "uniform":
        bound = math.sqrt(3.0) * std
        return Prediction("distribution", 0.0, std, stats.uniform(-bound, 2 * bound), -bound, bound)
    sigma = std / truncated_std
    return Prediction("distribution", 0.0, std, stats.truncnorm(-2.0, 2.0, 0.0, sigma), -2 * sigma, 2 * sigma)


@functools.cache
def _signature(function: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(function)


def _as_given(params: dict[str, Any]) -> dict[str, Any]:
    return params


def _always(params: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Scheme:
    """One scheme's facts. ``name``, ``function``, ``whole_tensor`` and ``predict`` have no
    default: a record without them cannot be made.

    - ``function(shape, **params, seed=, name=, dtype=, device=, index=, out=)`` draws it.
    - ``whole_tensor``: any part of the tensor costs the whole tensor (a QR, a ranking of whole
      columns), so the checkpoint writer and verifier generate it in one piece.
    - ``predict(arguments)``: the prediction for the function's bound arguments (``shape`` a
      tuple of ints, defaults applied; see ``arguments``).
    - ``factored_axes(arguments)``: the axes of the matrices a QR factors; a chunk that splits
      one would factor the whole matrix again, so ``fastinit.dask`` refuses it. None: any chunking.
    - ``constant_value(params)``: the value every element gets, or None (not a constant scheme).
    - ``check(params)``: the params made valid for a config, before the signature binds them
      (raises TypeError / ValueError); ``encode(params)``: the params as a config records them (JSON);
      ``resolved(params)``: False when the params name something this process cannot call.
    """

    name: str
    function: Callable[..., ArrayOut]
    whole_tensor: bool
    predict: Callable[[dict[str, Any]], Prediction]
    factored_axes: Callable[[dict[str, Any]], range] | None = None
    constant_value: Callable[[Mapping[str, Any]], Any] | None = None
    check: Callable[[dict[str, Any]], dict[str, Any]] = _as_given
    encode: Callable[[dict[str, Any]], dict[str, Any]] = _as_given
    resolved: Callable[[Mapping[str, Any]], bool] = _always

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` checked against the function's signature and ``check``: the params an
        ``Initializer`` holds. Raises TypeError / ValueError naming the scheme."""
        params = self.check(params)
        for key in params:
            if key in CALL_KEYWORDS:
                raise TypeError(f"{key} is given when the initializer is called, not to {self.name}")
        try:
            _signature(self.function).bind(None, **params)
        except TypeError as error:
            raise TypeError(f"{self.name}: {error}") from None
        return params

    def arguments(
        self, shape: tuple[int, ...], params: Mapping[str, Any], args: tuple[Any, ...] = ()
    ) -> dict[str, Any]:
        """The function's arguments for ``shape``, ``args`` and ``params``, defaults applied."""
        bound = _signature(self.function).bind(tuple(int(d) for d in shape), *args, **params)
        bound.apply_defaults()
        return dict(bound.arguments)
