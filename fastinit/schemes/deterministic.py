"""Schemes with no randomness: constant, zeros, ones, eye, dirac.

Each takes the common keywords (``dtype``, ``device``, ``index``, ``out``; ``seed`` and ``name``
are validated as the samplers validate them, then ignored, so every scheme has one calling
convention and a bad seed fails the same way whichever scheme a config names) and honours
``index=`` by computing only the selected elements.
"""

from __future__ import annotations

import math

import numpy as np

from .. import api
from ..distributions import UNIFORM
from ..rng.streams import check_name, check_seed

__all__ = ["constant", "zeros", "ones", "eye", "dirac"]


def constant(shape, value, *, seed=0, name=None, dtype=None, device="cpu", index=None, out=None):
    """Every element equal to ``value`` (rounded to dtype), as ``torch.nn.init.constant_``.

    >>> import fastinit, numpy as np
    >>> np.asarray(fastinit.constant((2, 3), 0.5))
    array([[0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5]], dtype=float32)
    """
    check_seed(seed)
    check_name(name)
    value = api.check_real(value, "value", allow_inf=True)
    dt = api.output_dtype(dtype, out)
    v = api.round_to_dtype(value, dt)
    if math.isinf(v) and not math.isinf(value):  # as torch's fill_, never a silent overflow
        raise ValueError(f"value={value!r} is beyond the largest finite {dt.name}; pass inf to fill with inf")
    # u * (+-0) + v: the scale's sign keeps v = -0.0 negative (+0 + -0 would give +0)
    params = np.array([v, math.copysign(0.0, v), v, v, 0.0, 0.0, 0.0, 0.0])
    return api.sample(
        shape, UNIFORM, params, seed=0, name=None, dtype=dt, device=device, index=index, out=out
    )


def zeros(shape, *, seed=0, name=None, dtype=None, device="cpu", index=None, out=None):
    """All zeros.

    >>> import fastinit
    >>> fastinit.zeros(3).raw
    array([0., 0., 0.], dtype=float32)
    """
    return constant(shape, 0.0, seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)


def ones(shape, *, seed=0, name=None, dtype=None, device="cpu", index=None, out=None):
    """All ones.

    >>> import fastinit
    >>> fastinit.ones(3).raw
    array([1., 1., 1.], dtype=float32)
    """
    return constant(shape, 1.0, seed=seed, name=name, dtype=dtype, device=device, index=index, out=out)


def _deliver_mask(shape, mask_fn, dtype, device, index, out):
    coords = api.index_coordinates(shape, index)
    grids = np.ix_(*coords) if coords else ()
    dt = api.output_dtype(dtype, out)
    values = np.broadcast_to(mask_fn(*grids), tuple(len(c) for c in coords)).astype(
        np.float64 if dt.compute == 64 else np.float32
    )
    return api.deliver(values.reshape(api.result_shape(shape, index)), shape, dtype=dt, device=device, index=index,
                       out=out)  # fmt: skip


def eye(shape, *, seed=0, name=None, dtype=None, device="cpu", index=None, out=None):
    """The identity matrix (2-D only), as ``torch.nn.init.eye_``.

    >>> import fastinit
    >>> fastinit.eye((2, 3)).raw
    array([[1., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    """
    check_seed(seed)
    check_name(name)
    shape = api.check_shape(shape)
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _deliver_mask(shape, lambda r, c: r == c, dtype, device, index, out)


def dirac(shape, groups=1, *, seed=0, name=None, dtype=None, device="cpu", index=None, out=None):
    """Dirac delta kernel (3-, 4- or 5-D), as ``torch.nn.init.dirac_``: a convolution with it
    preserves the identity of as many input channels as possible, per group.

    >>> import fastinit, numpy as np
    >>> w = np.asarray(fastinit.dirac((4, 2, 3)))
    >>> w[:, :, 1]
    array([[1., 0.],
           [0., 1.],
           [0., 0.],
           [0., 0.]], dtype=float32)
    """
    check_seed(seed)
    check_name(name)
    shape = api.check_shape(shape)
    if len(shape) not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups={groups!r} must be an int >= 1")
    if shape[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    per_group = shape[0] // groups
    min_dim = min(per_group, shape[1])
    centres = [k // 2 for k in shape[2:]]

    def mask(out_ch, in_ch, *spatial):
        hit = (out_ch % per_group == in_ch) & (in_ch < min_dim)
        for s, c in zip(spatial, centres, strict=True):
            hit = hit & (s == c)
        return hit

    return _deliver_mask(shape, mask, dtype, device, index, out)
