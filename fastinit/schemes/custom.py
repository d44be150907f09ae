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
import types
from collections.abc import Callable
from typing import Any, overload

from ..typing import Draw
from .custom_scheme import DRAWS, function_path, register_custom, registered_function
from .registry import Initializer

__all__ = ["custom", "DRAWS", "register_custom", "registered_function", "function_path", "allow_import"]


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
    if draw not in DRAWS:
        raise ValueError(f"draw={draw!r} must be one of {', '.join(DRAWS)}")

    def make(function: Callable[..., Any]) -> Initializer:
        if not callable(function):
            raise TypeError(f"custom() needs a function, got {type(function).__name__}")
        return Initializer("custom", function=function, draw=draw, draw_params=dict(draw_params))

    return make if fn is None else make(fn)
