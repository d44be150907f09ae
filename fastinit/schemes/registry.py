"""The scheme registry: initializers by name, with configs that round-trip through JSON.

    init = fastinit.get_initializer("kaiming_uniform", a=math.sqrt(5))
    w = init((256, 128), seed=0, name="fc.weight")
    config = init.to_config()   # {"scheme": "kaiming_uniform", "a": 2.23606797749979}
    fastinit.Initializer.from_config(config) == init   # True

A checkpoint header records ``to_config()`` per tensor, so anyone can regenerate or verify it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from typing import Any

from .. import api
from ..typing import ArrayOut, DeviceLike, DTypeLike, IndexLike, SeedLike, ShapeLike
from . import variance_scaling as vs
from .custom import apply_custom, function_path, register_custom, registered_function
from .deterministic import constant, dirac, eye, ones, values, zeros
from .orthogonal import delta_orthogonal, orthogonal
from .sparse import sparse

__all__ = ["Initializer", "get_initializer", "list_initializers", "SCHEMES", "ALIASES"]

SCHEMES = {
    "uniform": api.uniform,
    "normal": api.normal,
    "truncated_normal": api.truncated_normal,
    "variance_scaling": vs.variance_scaling,
    "xavier_uniform": vs.xavier_uniform,
    "xavier_normal": vs.xavier_normal,
    "kaiming_uniform": vs.kaiming_uniform,
    "kaiming_normal": vs.kaiming_normal,
    "lecun_uniform": vs.lecun_uniform,
    "lecun_normal": vs.lecun_normal,
    "orthogonal": orthogonal,
    "delta_orthogonal": delta_orthogonal,
    "constant": constant,
    "zeros": zeros,
    "ones": ones,
    "eye": eye,
    "dirac": dirac,
    "sparse": sparse,
    "values": values,
    "custom": apply_custom,
}
ALIASES = {
    "glorot_uniform": "xavier_uniform",
    "glorot_normal": "xavier_normal",
    "he_uniform": "kaiming_uniform",
    "he_normal": "kaiming_normal",
}
# the per-call keywords every scheme takes; an Initializer's params are everything else
CALL_KEYWORDS = ("seed", "name", "dtype", "device", "index", "out")


@functools.cache
def _signature(scheme: str) -> inspect.Signature:
    return inspect.signature(SCHEMES[scheme])


def _canonical(scheme) -> str:
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a str, got {type(scheme).__name__}")
    scheme = ALIASES.get(scheme, scheme)
    if scheme not in SCHEMES:
        known = ", ".join(sorted(set(SCHEMES) | set(ALIASES)))
        raise ValueError(f"unknown scheme {scheme!r}; known schemes: {known}")
    return scheme


def _resolve_function(path: str):
    """The registered function a config names, or the name itself (an unresolved custom
    initializer: it records and compares, and raises when called). Never imports."""
    module, _, qualname = path.partition(":")
    if not module or not qualname:
        raise ValueError(f"function={path!r} must be 'module:qualname'")
    function = registered_function(path)
    return path if function is None else function


def _check_custom_params(params: dict) -> None:
    from .custom import DRAWS

    unexpected = set(params) - {"function", "draw", "draw_params"}
    if unexpected:
        raise TypeError(f"custom: unexpected parameter(s) {', '.join(sorted(unexpected))} "
                        "(a custom initializer takes function, draw, draw_params)")  # fmt: skip
    function = params.get("function")
    if not (callable(function) or isinstance(function, str)):
        raise TypeError("a custom initializer needs function= (a callable or 'module:qualname')")
    if params.get("draw") not in DRAWS:
        raise ValueError(f"custom: draw={params.get('draw')!r} must be one of {', '.join(DRAWS)}")
    draw_params = params.setdefault("draw_params", {})
    if not isinstance(draw_params, dict):
        raise TypeError(f"custom: draw_params must be a dict, got {type(draw_params).__name__}")
    inspect.signature(DRAWS[params["draw"]]).bind(None, **draw_params)


def _recorded_path(function) -> str:
    return function if isinstance(function, str) else function_path(function)


class Initializer:
    """A scheme with its parameters bound; call it with a shape and the per-call keywords.

    >>> import fastinit
    >>> init = fastinit.get_initializer("he_normal", nonlinearity="relu")
    >>> init.to_config()
    {'scheme': 'kaiming_normal', 'nonlinearity': 'relu'}
    >>> init((64, 32), seed=0, name="w").shape
    (64, 32)
    """

    __slots__ = ("scheme", "params")

    def __init__(self, scheme: str, **params: Any) -> None:
        scheme = _canonical(scheme)
        if scheme == "custom":
            _check_custom_params(params)
            function = params["function"]
            if isinstance(function, str):
                params["function"] = _resolve_function(function)
            else:
                if isinstance(function, Initializer):  # a function decorated with @fastinit.custom
                    params["function"] = function = function.params["function"]
                with contextlib.suppress(ValueError):  # a lambda can be used, not recorded
                    register_custom(function)
        else:
            signature = _signature(scheme)
            for key in params:
                if key in CALL_KEYWORDS:
                    raise TypeError(f"{key} is given when the initializer is called, not to {scheme}")
            try:
                signature.bind(None, **params)
            except TypeError as error:
                raise TypeError(f"{scheme}: {error}") from None
        self.scheme = scheme
        self.params = params

    def __call__(
        self,
        shape: ShapeLike,
        *,
        seed: SeedLike = 0,
        name: str | None = None,
        dtype: DTypeLike | None = None,
        device: DeviceLike = "cpu",
        index: IndexLike | None = None,
        out: ArrayOut | None = None,
    ) -> ArrayOut:
        common = dict(seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)
        if self.scheme == "custom":
            p = self.params
            return apply_custom(p["function"], shape, draw=p["draw"], draw_params=p["draw_params"], **common)
        return SCHEMES[self.scheme](shape, **self.params, **common)

    @property
    def constant_value(self) -> Any:
        """The value every element gets for ``zeros`` / ``ones`` / ``constant``; None for the
        other schemes.

        >>> Initializer("ones").constant_value, Initializer("constant", value=0.5).constant_value
        (1, 0.5)
        >>> Initializer("normal").constant_value is None
        True
        """
        if self.scheme == "constant":
            return self.params.get("value")
        return {"zeros": 0, "ones": 1}.get(self.scheme)

    @property
    def resolved(self) -> bool:
        """False for a custom initializer whose function is only a name read from a config (not
        registered in this process): it records and compares, but cannot generate."""
        return not (self.scheme == "custom" and isinstance(self.params["function"], str))

    def to_config(self) -> dict[str, Any]:
        """A JSON-serializable dict: {"scheme": name, **params}."""
        params = dict(self.params)
        if self.scheme == "custom":
            params["function"] = _recorded_path(params["function"])
        config = {"scheme": self.scheme, **params}
        json.dumps(config)  # raises TypeError for parameters JSON cannot hold
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any] | str) -> Initializer:
        """Rebuild an initializer from ``to_config()``'s dict (or its JSON text)."""
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except (ValueError, RecursionError):
                raise ValueError("an initializer config given as text must be valid JSON") from None
        if not isinstance(config, dict) or "scheme" not in config:
            raise ValueError(f"an initializer config is a dict with a 'scheme' key, got {config!r}")
        # JSON has no tuples: sequences (in_axis, out_axis, batch_axis) come back as lists
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k != "scheme"}
        return cls(config["scheme"], **params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Initializer) and (self.scheme, self.params) == (other.scheme, other.params)

    def __hash__(self) -> int:
        return hash((self.scheme, json.dumps(self.to_config(), sort_keys=True)))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Initializer({self.scheme!r}{', ' if args else ''}{args})"


def get_initializer(scheme: str, **params: Any) -> Initializer:
    """The initializer ``scheme`` (a name or alias from ``list_initializers()``) with ``params``.

    >>> import fastinit
    >>> fastinit.get_initializer("glorot_uniform", gain=2.0)
    Initializer('xavier_uniform', gain=2.0)
    """
    return Initializer(scheme, **params)


def list_initializers() -> list[str]:
    """Every scheme name and alias the registry knows.

    >>> "kaiming_uniform" in list_initializers() and "he_uniform" in list_initializers()
    True
    """
    return sorted(set(SCHEMES) | set(ALIASES))
