"""The records of the plain samplers as schemes: ``uniform``, ``normal`` and ``truncated_normal``
(their functions are the public samplers of ``fastinit.samplers``)."""

from __future__ import annotations

import math
from typing import Any

from ..samplers import normal, truncated_normal, uniform
from .record import Prediction, Scheme, exact_prediction

__all__ = ["RECORDS"]


def _predict_uniform(a: dict[str, Any]) -> Prediction:
    from scipy import stats

    low, high = float(a["low"]), float(a["high"])
    if low == high:
        return exact_prediction(low)
    return Prediction("distribution", (low + high) / 2, (high - low) / math.sqrt(12), stats.uniform(low, high - low),
                      low, high)  # fmt: skip


def _predict_normal(a: dict[str, Any]) -> Prediction:
    from scipy import stats

    mean, std = float(a["mean"]), float(a["std"])
    return Prediction("distribution", mean, std, stats.norm(mean, std)) if std > 0 else exact_prediction(mean)


def _predict_truncated_normal(a: dict[str, Any]) -> Prediction:
    from scipy import stats

    mean, std = float(a["mean"]), float(a["std"])
    if a.get("lower") is not None or a.get("upper") is not None:  # bounds in units of std around the mean
        lo = mean + std * (-2.0 if a.get("lower") is None else float(a["lower"]))
        hi = mean + std * (2.0 if a.get("upper") is None else float(a["upper"]))
    else:
        lo, hi = float(a["a"]), float(a["b"])
    if std == 0:
        return exact_prediction(min(max(mean, lo), hi))
    dist = stats.truncnorm((lo - mean) / std, (hi - mean) / std, mean, std)
    return Prediction("distribution", float(dist.mean()), float(dist.std()), dist, lo, hi)


RECORDS = (
    Scheme("uniform", uniform, whole_tensor=False, predict=_predict_uniform),
    Scheme("normal", normal, whole_tensor=False, predict=_predict_normal),
    Scheme("truncated_normal", truncated_normal, whole_tensor=False, predict=_predict_truncated_normal),
)
