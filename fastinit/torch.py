"""torch adapter: ``torch.nn.init`` with fastinit's streams, and whole-model initialization.

Imported on demand (``import fastinit.torch``), never by ``import fastinit``.

In-place functions with torch's signatures and defaults plus keyword ``seed`` and ``name``:
``uniform_, normal_, trunc_normal_, constant_, ones_, zeros_, eye_, dirac_, xavier_uniform_,
xavier_normal_, kaiming_uniform_, kaiming_normal_, orthogonal_, sparse_``. They draw in one of
two ways:

- **Named** (``seed=`` or ``name=`` given): a pure function of (seed, name, index). The tensor
  gets exactly what the functional API returns, e.g. ``fastinit.torch.normal_(t, 0.0, 0.02,
  seed=1, name="w")`` writes ``fastinit.normal(t.shape, 0.0, 0.02, seed=1, name="w")``, whatever
  torch's generator holds. ``seed`` defaults to 0 (``generator.initial_seed()`` when a
  generator is passed); torch's generator is not consumed.
- **Unnamed** (neither given), torch's semantics: a fresh draw at each call, reproducible from
  ``torch.manual_seed(s)``, or from the ``generator=`` passed. The call takes one number from
  that generator (default: torch's default CPU generator, for CPU and CUDA tensors alike),
  ``seed = torch.randint(0, 2**63 - 1, (), generator=generator).item()``, and fills the stream
  of that seed with no name. Meta and zero-element tensors draw nothing, as in torch.

``init_module(module, seed=0)`` fills every parameter of a model in place, each from the stream
of its qualified name, with the distribution the model's own init code gives (its
``reset_parameters`` and, for transformers models, ``_init_weights``, traced by
``fastinit.trace``; or a rule of yours). Works on models built on the ``meta`` device and
materialized with ``module.to_empty(device="cpu")`` or ``device="cuda"``. ``build(factory,
...)`` builds a module with its constructor's init traced; ``trace_module`` returns the plan.

CUDA tensors are filled on their GPU by fastinit's CUDA backend (``pip install
'fastinit[cuda]'``), on torch's current stream, with the same bytes as on the CPU.

DTensors (``torch.distributed.tensor``: FSDP2's ``fully_shard``, tensor parallelism's
``parallelize_module``, ``distribute_tensor``) are filled shard by shard: each rank writes into
its ``to_local()`` exactly the slice of the global tensor it holds (``index=`` of the functional
API, with the global shape for fans), with no communication, so ``full_tensor()`` equals what
one process fills into the unsharded tensor, byte for byte. ``torch.distributed`` is imported
only once a DTensor exists.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch

from . import samplers, schemes
from .schemes import calculate_gain
from .torch_models import (
    InitReport,
    apply_plan,
    build,
    canonical_names,
    fill_traced,
    init_module,
    trace_module,
)
from .torch_tensors import fill, fill_with

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
    "fill",
    "init_module",
    "InitReport",
    "build",
    "trace_module",
    "apply_plan",
    "fill_traced",
    "canonical_names",
]


# ---- in-place functions ------------------------------------------------------------------------


def _stream_seed(seed, name, generator) -> Callable[[], int]:
    """The stream seed of an in-place call, as a function ``fill_with`` calls only when the tensor
    gets values (torch draws nothing for meta and zero-element tensors either).

    Named calls (``seed=`` or ``name=`` given) are pure: ``seed``, else the generator's initial
    seed, else 0. An unnamed call is torch's kind of call: its seed is one draw from
    ``generator`` (default: torch's default CPU generator, whatever the tensor's device, so that
    a CPU and a CUDA tensor get the same values), which advances it as torch's own
    ``nn.init`` would.
    """

    def resolve() -> int:
        if seed is not None:
            return seed
        if name is not None:
            return 0 if generator is None else generator.initial_seed()
        device = "cpu" if generator is None else generator.device
        return int(torch.randint(0, 2**63 - 1, (), generator=generator, dtype=torch.int64, device=device))

    return resolve


def uniform_(tensor, a=0.0, b=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.uniform_``: U(a, b) in place.

    >>> import torch, fastinit.torch
    >>> t = fastinit.torch.uniform_(torch.empty(3, 4), -1.0, 1.0, seed=0, name="w")
    >>> bool(((t >= -1) & (t < 1)).all())
    True
    """
    return fill_with(tensor, samplers.uniform, a, b, seed=_stream_seed(seed, name, generator), name=name)


def normal_(tensor, mean=0.0, std=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.normal_``: N(mean, std**2) in place.

    >>> import torch, fastinit, fastinit.torch
    >>> t = fastinit.torch.normal_(torch.empty(3, 4), 0.0, 0.02, seed=1, name="w")
    >>> t.numpy().tobytes() == fastinit.normal((3, 4), 0.0, 0.02, seed=1, name="w").tobytes()
    True
    """
    return fill_with(tensor, samplers.normal, mean, std, seed=_stream_seed(seed, name, generator), name=name)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.trunc_normal_``: N(mean, std**2) truncated to [a, b] (absolute bounds),
    exact even where torch's is not (tiny std, bounds far in a tail).

    >>> import torch, fastinit.torch
    >>> t = fastinit.torch.trunc_normal_(torch.empty(1000), 0.0, 0.002, -2.0, 2.0, seed=0)
    >>> round(float(t.std()), 4)
    0.002
    """
    return fill_with(
        tensor,
        samplers.truncated_normal,
        mean,
        std,
        a,
        b,
        seed=_stream_seed(seed, name, generator),
        name=name,
    )


def constant_(tensor, val):
    """``torch.nn.init.constant_``.

    >>> import torch, fastinit.torch
    >>> fastinit.torch.constant_(torch.empty(2), 0.5)
    tensor([0.5000, 0.5000])
    """
    return fill_with(tensor, schemes.constant, val)


def ones_(tensor):
    """``torch.nn.init.ones_``.

    >>> import torch, fastinit.torch
    >>> fastinit.torch.ones_(torch.empty(2))
    tensor([1., 1.])
    """
    return fill_with(tensor, schemes.constant, 1.0)


def zeros_(tensor):
    """``torch.nn.init.zeros_``.

    >>> import torch, fastinit.torch
    >>> fastinit.torch.zeros_(torch.empty(2))
    tensor([0., 0.])
    """
    return fill_with(tensor, schemes.constant, 0.0)


def eye_(tensor):
    """``torch.nn.init.eye_`` (2-D).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.eye_(torch.empty(2, 2))
    tensor([[1., 0.],
            [0., 1.]])
    """
    return fill_with(tensor, schemes.eye)


def dirac_(tensor, groups=1):
    """``torch.nn.init.dirac_`` (3-, 4- or 5-D).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.dirac_(torch.empty(2, 2, 3))[:, :, 1]
    tensor([[1., 0.],
            [0., 1.]])
    """
    return fill_with(tensor, schemes.dirac, groups)


def xavier_uniform_(tensor, gain=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.xavier_uniform_``: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.xavier_uniform_(torch.empty(3, 5), seed=0).shape
    torch.Size([3, 5])
    """
    return fill_with(
        tensor, schemes.xavier_uniform, gain, seed=_stream_seed(seed, name, generator), name=name
    )


def xavier_normal_(tensor, gain=1.0, generator=None, *, seed=None, name=None):
    """``torch.nn.init.xavier_normal_``: N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out)).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.xavier_normal_(torch.empty(3, 5), seed=0).shape
    torch.Size([3, 5])
    """
    return fill_with(tensor, schemes.xavier_normal, gain, seed=_stream_seed(seed, name, generator), name=name)


def _kaiming(tensor, scheme, a, mode, nonlinearity, generator, seed, name):
    if isinstance(tensor, torch.Tensor) and 0 in tensor.shape:  # as torch
        # stacklevel 3: the warning points at the user's kaiming_*_ call
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return tensor
    return fill_with(
        tensor, scheme, a, mode, nonlinearity, seed=_stream_seed(seed, name, generator), name=name
    )


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, seed=None,
                     name=None):  # fmt: skip
    """``torch.nn.init.kaiming_uniform_``: U(-b, b), b = sqrt(3) * gain / sqrt(fan).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.kaiming_uniform_(torch.empty(3, 5), mode="fan_in", nonlinearity="relu").shape
    torch.Size([3, 5])
    """
    return _kaiming(tensor, schemes.kaiming_uniform, a, mode, nonlinearity, generator, seed, name)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, seed=None,
                    name=None):  # fmt: skip
    """``torch.nn.init.kaiming_normal_``: N(0, std**2), std = gain / sqrt(fan).

    >>> import torch, fastinit.torch
    >>> fastinit.torch.kaiming_normal_(torch.empty(3, 5), mode="fan_out", nonlinearity="relu").shape
    torch.Size([3, 5])
    """
    return _kaiming(tensor, schemes.kaiming_normal, a, mode, nonlinearity, generator, seed, name)


def orthogonal_(tensor, gain=1, generator=None, *, seed=None, name=None):
    """``torch.nn.init.orthogonal_``: a Haar-distributed (semi-)orthogonal matrix times gain.

    The QR runs in torch (``fastinit.orthogonal(..., qr="torch")``), with the LAPACK torch
    ships (MKL on x86), so Q matches ``fastinit.orthogonal(shape, qr="torch")``.

    >>> import torch, fastinit.torch
    >>> q = fastinit.torch.orthogonal_(torch.empty(4, 4), seed=0)
    >>> bool(torch.allclose(q @ q.T, torch.eye(4), atol=1e-5))
    True
    """
    return fill_with(
        tensor, schemes.orthogonal, gain, qr="torch", seed=_stream_seed(seed, name, generator), name=name
    )


def sparse_(tensor, sparsity, std=0.01, generator=None, *, seed=None, name=None):
    """``torch.nn.init.sparse_``: N(0, std**2) with ceil(sparsity * rows) zeros per column, the
    zero pattern taken from the same stream (torch's comes from ``randperm``).

    >>> import torch, fastinit.torch
    >>> t = fastinit.torch.sparse_(torch.empty(10, 3), 0.2, seed=0)
    >>> (t == 0).sum(dim=0).tolist()
    [2, 2, 2]
    """
    return fill_with(
        tensor, schemes.sparse, sparsity, std, seed=_stream_seed(seed, name, generator), name=name
    )


def _deprecated(function):
    """The alias torch still keeps for ``function`` (``nn.init.normal`` for ``normal_``), with
    torch's FutureWarning."""
    new = function.__name__
    old = new[:-1]

    @functools.wraps(function)
    def alias(*args, **kwargs):
        warnings.warn(
            f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new}`.", FutureWarning, stacklevel=2
        )
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = f"Deprecated alias of ``{new}`` (torch keeps ``nn.init.{old}``, with a FutureWarning)."
    return alias


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
