"""Initialization schemes: fans and gains, variance scaling and its presets, orthogonal,
deterministic schemes (literal ``values`` too: ``encode_values`` makes their data), sparse, custom
element-wise schemes, and the registry."""

# encode_values: a helper, importable here but not in __all__ (where every name is a scheme)
from .custom import custom
from .deterministic import constant, dirac, eye, ones, values, zeros
from .deterministic import encode_values as encode_values
from .fans import calculate_gain, compute_fans
from .orthogonal import delta_orthogonal, orthogonal
from .registry import Initializer, get_initializer, list_initializers
from .sparse import sparse
from .variance_scaling import (
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_uniform,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
)

__all__ = [
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
]
