"""The scheme registry: initializers by name, with configs that round-trip through JSON.

``RECORDS`` holds one ``Scheme`` record per scheme (record.py: its function, whether it needs the
whole tensor, its predicted moments, how its parameters are checked and recorded), collected from
the modules that define the schemes; ``Initializer`` and every module that needs a fact about a
scheme (the checkpoint writer, ``fastinit.dask``, ``fastinit inspect``) ask the record.

    init = fastinit.get_initializer("kaiming_uniform", a=math.sqrt(5))
    w = init((256, 128), seed=0, name="fc.weight")
    config = init.to_config()   # {"scheme": "kaiming_uniform", "a": 2.23606797749979}
    fastinit.Initializer.from_config(config) == init   # True

A checkpoint header records ``to_config()`` per tensor, so anyone can regenerate or verify it.
"""

from __future__ import annotations

import json
from typing import Any

from ..typing import ArrayOut, DeviceLike, DTypeLike, IndexLike, SeedLike, ShapeLike
from .custom_scheme import RECORDS as _CUSTOM
from .deterministic import RECORDS as _DETERMINISTIC
from .orthogonal import RECORDS as _ORTHOGONAL
from .record import CALL_KEYWORDS, Prediction, Scheme
from .samplers import RECORDS as _SAMPLERS
from .sparse import RECORDS as _SPARSE
from .variance_scaling import RECORDS as _VARIANCE_SCALING

__all__ = ["Initializer", "get_initializer", "list_initializers", "record_of", "RECORDS", "SCHEMES", "ALIASES",
           "CALL_KEYWORDS"]  # fmt: skip

_ALL = (*_SAMPLERS, *_VARIANCE_SCALING, *_ORTHOGONAL, *_DETERMINISTIC, *_SPARSE, *_CUSTOM)
# name -> the scheme's record (record.py): every fact about a scheme, declared beside its function
RECORDS: dict[str, Scheme] = {record.name: record for record in _ALL}
if len(RECORDS) != len(_ALL):
    raise RuntimeError("two scheme records share a name")
# name -> the scheme's function (a view of RECORDS)
SCHEMES = {name: record.function for name, record in RECORDS.items()}
ALIASES = {
    "glorot_uniform": "xavier_uniform",
    "glorot_normal": "xavier_normal",
    "he_uniform": "kaiming_uniform",
    "he_normal": "kaiming_normal",
}


def _canonical(scheme: object) -> str:
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a str, got {type(scheme).__name__}")
    scheme = ALIASES.get(scheme, scheme)
    if scheme not in RECORDS:
        known = ", ".join(sorted(set(RECORDS) | set(ALIASES)))
        raise ValueError(f"unknown scheme {scheme!r}; known schemes: {known}")
    return scheme


def record_of(scheme: object) -> Scheme | None:
    """The record of ``scheme``: an ``Initializer``, a scheme name or alias, or a scheme's
    function (``fastinit.orthogonal``); None for anything else (e.g. a plain callable).

    >>> import fastinit
    >>> record_of(fastinit.orthogonal).whole_tensor, record_of("he_normal").name
    (True, 'kaiming_normal')
    """
    if isinstance(scheme, Initializer):
        return RECORDS[scheme.scheme]
    if isinstance(scheme, str):
        return RECORDS.get(ALIASES.get(scheme, scheme))
    return next((record for record in RECORDS.values() if record.function is scheme), None)


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
        self.scheme = scheme
        self.params = RECORDS[scheme].bind(params)

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
        return self.record.function(shape, **self.params, seed=seed, name=name, dtype=dtype, device=device,
                                    index=index, out=out)  # fmt: skip

    @property
    def record(self) -> Scheme:
        """The scheme's record (record.py): its function, whether it needs the whole tensor, ..."""
        return RECORDS[self.scheme]

    def predict(self, shape: ShapeLike) -> Prediction:
        """What a tensor of ``shape`` drawn by this initializer should look like (its record's
        prediction; ``fastinit.inspection.predict`` adds the config text and zeroed rows).

        >>> p = Initializer("normal", std=0.02).predict((256, 128))
        >>> p.kind, p.mean, p.std, p.family
        ('distribution', 0.0, 0.02, 'normal')
        """
        record = self.record
        return record.predict(record.arguments(tuple(shape), self.params))

    @property
    def constant_value(self) -> Any:
        """The value every element gets for ``zeros`` / ``ones`` / ``constant``; None for the
        other schemes.

        >>> Initializer("ones").constant_value, Initializer("constant", value=0.5).constant_value
        (1, 0.5)
        >>> Initializer("normal").constant_value is None
        True
        """
        value = self.record.constant_value
        return None if value is None else value(self.params)

    @property
    def resolved(self) -> bool:
        """False for a custom initializer whose function is only a name read from a config (not
        registered in this process): it records and compares, but cannot generate."""
        return self.record.resolved(self.params)

    def to_config(self) -> dict[str, Any]:
        """A JSON-serializable dict: {"scheme": name, **params}."""
        config = {"scheme": self.scheme, **self.record.encode(dict(self.params))}
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
    return sorted(set(RECORDS) | set(ALIASES))
