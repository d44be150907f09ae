"""Custom element-wise schemes: your scalar function applied to the stream's draws.

    @fastinit.custom(draw="uniform", low=-10.0, high=10.0)
    def gapped_uniform(w):
        # the textbook exercise: w ~ U(-10, 10), zeroed where |w| < 5
        return w if abs(w) >= 5.0 else 0.0

    w = gapped_uniform((256, 256), seed=0, name="fc.weight")

fastinit draws each element from ``draw`` ("uniform", "normal" or "truncated_normal", with its
parameters) exactly as that sampler would, then applies the function, compiled by Numba, to
every element in parallel, in the compute precision (float32, or float64 for float64 outputs),
and rounds once to the output dtype. Element i still depends only on (seed, name, i), so
``index=``, ``out=`` and thread counts behave as for the samplers. The function must be a
scalar function Numba can compile (``@numba.njit`` semantics: no Python objects).
"""

from __future__ import annotations

import importlib
import math
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from .. import api
from ..backends import cpu
from ..typing import Draw

if TYPE_CHECKING:  # (registry imports this module)
    from .registry import Initializer

__all__ = ["custom", "DRAWS", "REGISTERED", "register_custom", "registered_function", "function_path",
           "allow_import"]  # fmt: skip

DRAWS = {"uniform": api.uniform, "normal": api.normal, "truncated_normal": api.truncated_normal}
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


def allow_import(module_name: str) -> int:
    """Import ``module_name`` (a name the user typed, e.g. ``verify --allow-import``, never one
    read from a file) and register its module-level functions; the number registered."""
    if not isinstance(module_name, str) or not all(p.isidentifier() for p in module_name.split(".")):
        raise ValueError(f"--allow-import {module_name!r}: not a module name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"--allow-import {module_name}: cannot import it ({error})") from None
    count = 0
    for value in list(vars(module).values()):
        fn = getattr(value, "py_func", value)
        if isinstance(fn, types.FunctionType) and fn.__module__ == module_name:
            register_custom(value)
            count += 1
    return count


def apply_custom(fn, shape, *, draw="uniform", draw_params=None, seed=0, name=None, dtype=None, device="cpu",
                 index=None, out=None):  # fmt: skip
    """Draw, apply fn element-wise, deliver (the body of a custom initializer)."""
    if draw not in DRAWS:
        raise ValueError(f"draw={draw!r} must be one of {', '.join(DRAWS)}")
    if isinstance(fn, str):
        raise ValueError(f"the custom function {fn!r} is not registered in this process: import the module "
                         "that defines it (fastinit.custom registers it), call fastinit.register_custom(fn), "
                         "or pass --allow-import MODULE on the command line")  # fmt: skip
    if not callable(fn):
        raise TypeError(f"the custom scheme's function must be callable, got {type(fn).__name__}")
    dt = api.output_dtype(dtype, out)
    compute = "float64" if dt.compute == 64 else "float32"
    api.target_device(device, out)  # a bad device fails before any work
    # the function is compiled for the CPU: draw and apply there, then deliver to the device
    base = DRAWS[draw](shape, **(draw_params or {}), seed=seed, name=name, dtype=compute, index=index)
    values = base.raw
    if values.size:
        cpu.elementwise_kernel(fn)(values.reshape(-1))
        _check_representable(fn, values, dt)
    return api.deliver(np.asarray(values), shape, dtype=dt, device=device, index=index, out=out)


def _check_representable(fn, values: np.ndarray, dt) -> None:
    """Refuse results the output dtype cannot hold (they would be delivered as inf) and NaN."""
    largest = float(np.max(np.abs(values)))  # (NaN propagates)
    if math.isnan(largest) or math.isinf(api.round_to_dtype(largest, dt)):
        name = getattr(getattr(fn, "py_func", fn), "__qualname__", type(fn).__name__)
        what = "NaN" if math.isnan(largest) else f"{largest:g}, beyond the largest finite {dt.name}"
        raise ValueError(f"custom function {name!r} returned {what}")


@overload
def custom(fn: Callable[..., Any], *, draw: Draw = "uniform", **draw_params: Any) -> Initializer: ...
@overload
def custom(
    fn: None = None, *, draw: Draw = "uniform", **draw_params: Any
) -> Callable[[Callable[..., Any]], Initializer]: ...
def custom(
    fn: Callable[..., Any] | None = None, *, draw: Draw = "uniform", **draw_params: Any
) -> Initializer | Callable[[Callable[..., Any]], Initializer]:
    """Make an initializer from a scalar function applied to draws of ``draw``.

    Usable as a decorator (``@fastinit.custom(draw="normal", std=0.02)``) or a call
    (``fastinit.custom(fn, draw="uniform", low=-1, high=1)``). Returns an ``Initializer``
    (see registry.py): call it with ``(shape, *, seed, name, dtype, device, index, out)``;
    ``to_config()`` records the function as 'module:qualname', and the function is registered
    so that a config naming it resolves in this process (a config never imports a module:
    elsewhere, import the defining module first, or ``fastinit verify --allow-import MODULE``).

    >>> import fastinit, numpy as np
    >>> @fastinit.custom(draw="uniform", low=-10.0, high=10.0)
    ... def gapped(w):
    ...     return w if abs(w) >= 5.0 else 0.0
    >>> x = np.asarray(gapped((1000,), seed=0, name="w"))
    >>> bool(np.all((np.abs(x) >= 5) | (x == 0)))
    True
    """
    from .registry import Initializer

    if draw not in DRAWS:
        raise ValueError(f"draw={draw!r} must be one of {', '.join(DRAWS)}")

    def make(function: Callable[..., Any]) -> Initializer:
        if not callable(function):
            raise TypeError(f"custom() needs a function, got {type(function).__name__}")
        return Initializer("custom", function=function, draw=draw, draw_params=dict(draw_params))

    return make if fn is None else make(fn)
