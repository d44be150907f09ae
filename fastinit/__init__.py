"""fastinit: reproducible, fast neural-network weight initialization.

Element i of every tensor is a pure function of (seed, name, i): the same values on any
thread count, any slice, any machine. See README.md.
"""

import importlib

__version__ = "0.1.0"

# Every public name, with the module that defines it, imported on first use (PEP 562): the
# package itself loads neither NumPy nor Numba, so `fastinit ...` reaches the command line's
# one-line Ctrl-C handler at once instead of ~0.3 s of imports later.
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
    "normal": ".api",
    "truncated_normal": ".api",
    "uniform": ".api",
    "philox4x32": ".rng.philox",
    "register_custom": ".schemes.custom",
}
# submodules that `import fastinit` used to load, still reachable as attributes
_CORE_SUBMODULES = ("api", "array", "backends", "distributions", "dlpack", "dtypes", "rng", "schemes")

__all__ = list(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    elif name in _CORE_SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOMES) | set(_CORE_SUBMODULES))
