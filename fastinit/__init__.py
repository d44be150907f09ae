"""fastinit: reproducible, fast neural-network weight initialization.

Element i of every tensor is a pure function of (seed, name, i): the same values on any
thread count, any slice, any machine. See README.md.
"""

from .api import normal, truncated_normal, uniform
from .array import FastArray
from .dtypes import DType, resolve_dtype
from .rng.philox import philox4x32
from .rng.streams import STREAM_VERSION, StreamKey, derive_key
from .schemes import *  # noqa: F403
from .schemes import __all__ as _schemes_all
from .schemes.custom import register_custom

__version__ = "0.1.0"

__all__ = _schemes_all + [
    "STREAM_VERSION",
    "DType",
    "FastArray",
    "StreamKey",
    "derive_key",
    "normal",
    "philox4x32",
    "register_custom",
    "resolve_dtype",
    "truncated_normal",
    "uniform",
]
