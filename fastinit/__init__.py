"""fastinit: reproducible, fast neural-network weight initialization.

Element i of every tensor is a pure function of (seed, name, i): the same values on any
thread count, any slice, any machine. See README.md.
"""

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Every public name, with the module that defines it, imported on first use (PEP 562): the
# package itself loads neither NumPy nor Numba, so `fastinit ...` reaches the command line's
# one-line Ctrl-C handler at once instead of ~0.3 s of imports later.
# schemes.__all__ spelled out, since importing it would load NumPy (tests/test_import.py
# checks the two agree)
_SCHEMES = (
    "Initializer",
    "calculate_gain",
    "compute_fans",
    "constant",
    "custom",
    "delta_orthogonal",
    "dirac",
    "eye",
    "get_initializer",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "list_initializers",
    "ones",
    "orthogonal",
    "sparse",
    "values",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
)
_HOMES = {
    **dict.fromkeys(_SCHEMES, ".schemes"),
    "STREAM_VERSION": ".rng.streams",
    "StreamKey": ".rng.streams",
    "derive_key": ".rng.streams",
    "DType": ".dtypes",
    "resolve_dtype": ".dtypes",
    "FastArray": ".array",
    "normal": ".samplers",
    "truncated_normal": ".samplers",
    "uniform": ".samplers",
    "philox4x32": ".rng.philox",
    "register_custom": ".schemes.custom",
}
# submodules that `import fastinit` used to load, still reachable as attributes
_CORE_SUBMODULES = ("api", "array", "backends", "distributions", "dlpack", "dtypes", "rng", "schemes")

__all__ = list(_HOMES)

if TYPE_CHECKING:
    # The same names, imported for type checkers (tests/test_typing.py checks the two lists agree):
    # a module-level __getattr__ would make each of them Any, and an unknown name not an error
    # (`name as name`: an explicit re-export, as __all__ is computed)
    from . import api as api
    from . import array as array
    from . import backends as backends
    from . import distributions as distributions
    from . import dlpack as dlpack
    from . import dtypes as dtypes
    from . import rng as rng
    from . import schemes as schemes
    from .array import FastArray as FastArray
    from .dtypes import DType as DType
    from .dtypes import resolve_dtype as resolve_dtype
    from .rng.philox import philox4x32 as philox4x32
    from .rng.streams import STREAM_VERSION as STREAM_VERSION
    from .rng.streams import StreamKey as StreamKey
    from .rng.streams import derive_key as derive_key
    from .samplers import normal as normal
    from .samplers import truncated_normal as truncated_normal
    from .samplers import uniform as uniform
    from .schemes.custom import custom as custom
    from .schemes.custom import register_custom as register_custom
    from .schemes.deterministic import constant as constant
    from .schemes.deterministic import dirac as dirac
    from .schemes.deterministic import eye as eye
    from .schemes.deterministic import ones as ones
    from .schemes.deterministic import values as values
    from .schemes.deterministic import zeros as zeros
    from .schemes.fans import calculate_gain as calculate_gain
    from .schemes.fans import compute_fans as compute_fans
    from .schemes.orthogonal import delta_orthogonal as delta_orthogonal
    from .schemes.orthogonal import orthogonal as orthogonal
    from .schemes.registry import Initializer as Initializer
    from .schemes.registry import get_initializer as get_initializer
    from .schemes.registry import list_initializers as list_initializers
    from .schemes.sparse import sparse as sparse
    from .schemes.variance_scaling import glorot_normal as glorot_normal
    from .schemes.variance_scaling import glorot_uniform as glorot_uniform
    from .schemes.variance_scaling import he_normal as he_normal
    from .schemes.variance_scaling import he_uniform as he_uniform
    from .schemes.variance_scaling import kaiming_normal as kaiming_normal
    from .schemes.variance_scaling import kaiming_uniform as kaiming_uniform
    from .schemes.variance_scaling import lecun_normal as lecun_normal
    from .schemes.variance_scaling import lecun_uniform as lecun_uniform
    from .schemes.variance_scaling import variance_scaling as variance_scaling
    from .schemes.variance_scaling import xavier_normal as xavier_normal
    from .schemes.variance_scaling import xavier_uniform as xavier_uniform
else:

    def __getattr__(name: str) -> Any:
        if name in _HOMES:
            value = getattr(importlib.import_module(_HOMES[name], __name__), name)
        elif name in _CORE_SUBMODULES:
            value = importlib.import_module(f".{name}", __name__)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES) | set(_CORE_SUBMODULES))
