"""The custom scheme's record: a scalar function applied to each element's draw (the
``@fastinit.custom`` decorator, in custom.py, makes its initializers), and the functions a config
may name.

A config records the function as 'module:qualname' and is data: it is never a reason to import a
module. It resolves to a function registered in this process (``register_custom``; the decorator
registers), or stays a name: such an initializer records and compares, and raises when called.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .. import driver, dtypes, samplers
from ..backends import cpu
from ..typing import ArrayOut, DeviceLike, Draw, DTypeLike, IndexLike, SeedLike, ShapeLike
from .record import Prediction, Scheme

__all__ = ["DRAWS", "REGISTERED", "function_path", "register_custom", "registered_function", "custom_scheme",
           "RECORDS"]  # fmt: skip

DRAWS = {
    "uniform": samplers.uniform,
    "normal": samplers.normal,
    "truncated_normal": samplers.truncated_normal,
}
# 'module:qualname' -> function: the only custom functions a config (a file) may name. A config
# is data: it is never a reason to import a module.
REGISTERED: dict[str, Callable[..., Any]] = {}


def function_path(fn: Callable[..., Any]) -> str:
    """'module:qualname' of a module-level function (how a config records it)."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    py_func = getattr(fn, "py_func", None)  # a numba dispatcher
    if py_func is not None:
        module, qualname = py_func.__module__, py_func.__qualname__
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise ValueError(
            f"the custom function {fn!r} cannot be recorded in a config: define it at module level "
            "so it can be named by 'module:qualname'"
        )
    return f"{module}:{qualname}"


def register_custom(fn: Callable[..., Any]) -> str:
    """Let configs name ``fn`` (by its 'module:qualname', returned). ``fastinit.custom`` does this
    for you; call it for a function you use in a checkpoint made elsewhere, before verifying it.

    >>> import fastinit
    >>> def double(w):
    ...     return 2.0 * w
    >>> fastinit.register_custom(double)  # doctest: +ELLIPSIS
    '...:double'
    """
    if not callable(fn):
        raise TypeError(f"register_custom() needs a function, got {type(fn).__name__}")
    path = function_path(fn)
    REGISTERED[path] = fn
    return path


def registered_function(path: str) -> Callable[..., Any] | None:
    """The function registered under ``path``, or None."""
    return REGISTERED.get(path)


def custom_scheme(
    shape: ShapeLike,
    function: Callable[..., Any] | str,
    draw: Draw = "uniform",
    draw_params: Mapping[str, Any] | None = None,
    *,
    seed: SeedLike = 0,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    device: DeviceLike = "cpu",
    index: IndexLike | None = None,
    out: ArrayOut | None = None,
) -> ArrayOut:
    """Draw ``draw`` (with ``draw_params``), apply ``function`` element-wise, deliver: the body of
    a custom initializer (custom.py's module docstring)."""
    fn = function
    if draw not in DRAWS:
        raise ValueError(f"draw={draw!r} must be one of {', '.join(DRAWS)}")
    if isinstance(fn, str):
        raise ValueError(f"the custom function {fn!r} is not registered in this process: import the module "
                         "that defines it (fastinit.custom registers it), call fastinit.register_custom(fn), "
                         "or pass --allow-import MODULE on the command line")  # fmt: skip
    if not callable(fn):
        raise TypeError(f"the custom scheme's function must be callable, got {type(fn).__name__}")
    dt = driver.output_dtype(dtype, out)
    compute = "float64" if dt.compute == 64 else "float32"
    driver.target_device(device, out)  # a bad device fails before any work
    # the function is compiled for the CPU: draw and apply there, then deliver to the device
    base = DRAWS[draw](shape, **(draw_params or {}), seed=seed, name=name, dtype=compute, index=index)
    values = base.raw
    if values.size:
        cpu.elementwise_kernel(fn)(values.reshape(-1))
        _check_representable(fn, values, dt)
    return driver.deliver(np.asarray(values), shape, dtype=dt, device=device, index=index, out=out)


def _check_representable(fn, values: np.ndarray, dt) -> None:
    """Refuse results the output dtype cannot hold (they would be delivered as inf) and NaN."""
    largest = float(np.max(np.abs(values)))  # (NaN propagates)
    if math.isnan(largest) or math.isinf(dtypes.round_to_dtype(largest, dt)):
        name = getattr(getattr(fn, "py_func", fn), "__qualname__", type(fn).__name__)
        what = "NaN" if math.isnan(largest) else f"{largest:g}, beyond the largest finite {dt.name}"
        raise ValueError(f"custom function {name!r} returned {what}")


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    """A custom initializer's params: function (a callable, or a 'module:qualname' resolved to the
    function registered under it, else kept as the name), draw, draw_params (checked against the
    draw's sampler)."""
    unexpected = set(params) - {"function", "draw", "draw_params"}
    if unexpected:
        raise TypeError(f"custom: unexpected parameter(s) {', '.join(sorted(unexpected))} "
                        "(a custom initializer takes function, draw, draw_params)")  # fmt: skip
    function = params.get("function")
    if getattr(function, "scheme", None) == "custom" and hasattr(function, "params"):
        function = function.params["function"]  # an initializer made by @fastinit.custom: its function
    if not (callable(function) or isinstance(function, str)):
        raise TypeError("a custom initializer needs function= (a callable or 'module:qualname')")
    if params.get("draw") not in DRAWS:
        raise ValueError(f"custom: draw={params.get('draw')!r} must be one of {', '.join(DRAWS)}")
    draw_params = params.setdefault("draw_params", {})
    if not isinstance(draw_params, dict):
        raise TypeError(f"custom: draw_params must be a dict, got {type(draw_params).__name__}")
    inspect.signature(DRAWS[params["draw"]]).bind(None, **draw_params)
    if isinstance(function, str):
        module, _, qualname = function.partition(":")
        if not module or not qualname:
            raise ValueError(f"function={function!r} must be 'module:qualname'")
        function = registered_function(function) or function
    else:
        try:  # a lambda can be used, not recorded
            register_custom(function)
        except ValueError:
            pass
    params["function"] = function
    return params


def _encode(params: dict[str, Any]) -> dict[str, Any]:
    function = params["function"]
    return {**params, "function": function if isinstance(function, str) else function_path(function)}


def _predict(a: dict[str, Any]) -> Prediction:
    return Prediction("unknown", note="custom scheme: no prediction")


RECORDS = (
    Scheme(
        "custom",
        custom_scheme,
        whole_tensor=False,
        predict=_predict,
        check=_check_params,
        encode=_encode,
        resolved=lambda params: not isinstance(params["function"], str),
    ),  # fmt: skip
)
