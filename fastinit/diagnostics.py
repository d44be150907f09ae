"""Signal propagation through depth: the textbook check of an initialization scheme.

``propagate(scheme, nonlinearity)`` pushes a random input (``batch`` x ``width``, N(0, 1))
through ``depth`` dense layers ``h_l = f(h_{l-1} W_l^T)`` (square ``width`` x ``width`` weights
drawn by fastinit from ``scheme``, no biases) and reports the standard deviation of the
activations after every layer; with ``backward=True`` it also backpropagates an upstream
gradient ``G`` (N(0, 1): the loss is ``sum(h_depth * G)``) and reports the std of the gradient
with respect to every layer's activations and weights. NumPy only, in float64 (values beyond
~1e308 overflow to inf and are reported as such).

The lessons, in numbers (``fastinit inspect --propagate`` prints and plots them):

- ``zeros``: every activation and every gradient below the top is exactly 0.
- ``constant``: every unit of a layer computes the same value (``unit_spread`` is 0): the
  symmetry is never broken, whatever the scale.
- ``too_small`` (normal, std 0.01): the signal shrinks by ``0.01 * sqrt(width * E[f'^2])`` per
  layer and vanishes; ``too_large`` (std 1) explodes (relu, linear) or saturates tanh (almost
  every unit pinned at +-1, ``saturation`` near 1).
- Xavier/Glorot (gain 1) keeps tanh and linear layers in range; Kaiming/He (fan_in, torch's
  gain for the nonlinearity) keeps relu at a constant scale through any depth; LeCun keeps
  linear / selu layers; orthogonal (gain for the nonlinearity) preserves norms exactly for
  linear layers.

>>> r = propagate("kaiming_normal", "relu", depth=10, width=128, batch=64, seed=0)
>>> 0.5 < float(r.activation_std[10] / r.activation_std[1]) < 2.0
True
>>> float(propagate("zeros", "tanh", depth=3, width=16, batch=8).activation_std[3])
0.0
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import samplers
from .schemes import Initializer, calculate_gain, get_initializer
from .schemes.orthogonal import single_blas_thread

__all__ = [
    "PROPAGATION_PRESETS",
    "DEFAULT_SCHEMES",
    "NONLINEARITIES",
    "Propagation",
    "propagate",
    "propagate_all",
    "check_size",
    "propagation_table",
    "plot_propagation",
]

LEAKY_SLOPE = 0.01
CONSTANT_VALUE = 0.01  # the "constant" scheme's value (any value shows the symmetry problem)
MAX_DEPTH = 10_000  # (a Python loop per layer: deeper runs take hours and show nothing new)
MAX_VALUES = 2**28  # float64 weights and activations held at once: 2 GiB


def _gain(nonlinearity: str) -> float:
    return calculate_gain(nonlinearity, LEAKY_SLOPE if nonlinearity == "leaky_relu" else None)


# name -> (label, initializer for a nonlinearity)
PROPAGATION_PRESETS = {
    "zeros": ("zeros", lambda nl: get_initializer("zeros")),
    "constant": (f"constant {CONSTANT_VALUE}", lambda nl: get_initializer("constant", value=CONSTANT_VALUE)),
    "too_small": ("too small: N(0, 0.01^2)", lambda nl: get_initializer("normal", std=0.01)),
    "too_large": ("too large: N(0, 1)", lambda nl: get_initializer("normal", std=1.0)),
    "xavier_normal": ("Xavier normal", lambda nl: get_initializer("xavier_normal")),
    "xavier_uniform": ("Xavier uniform", lambda nl: get_initializer("xavier_uniform")),
    "kaiming_normal": (
        "Kaiming normal",
        lambda nl: get_initializer("kaiming_normal", nonlinearity=_kaiming(nl)[0], a=_kaiming(nl)[1]),
    ),  # fmt: skip
    "kaiming_uniform": (
        "Kaiming uniform",
        lambda nl: get_initializer("kaiming_uniform", nonlinearity=_kaiming(nl)[0], a=_kaiming(nl)[1]),
    ),  # fmt: skip
    "lecun_normal": ("LeCun normal", lambda nl: get_initializer("lecun_normal")),
    "lecun_uniform": ("LeCun uniform", lambda nl: get_initializer("lecun_uniform")),
    "orthogonal": ("orthogonal", lambda nl: get_initializer("orthogonal", gain=_gain(nl))),
}
DEFAULT_SCHEMES = ("zeros", "constant", "too_small", "too_large", "xavier_normal", "kaiming_normal", "lecun_normal",
                   "orthogonal")  # fmt: skip


def _kaiming(nonlinearity: str):
    """(nonlinearity, a) for kaiming_*: torch's gain for the nonlinearity."""
    if nonlinearity == "leaky_relu":
        return "leaky_relu", LEAKY_SLOPE
    return nonlinearity, 0.0


def _expit(z):
    from scipy.special import expit

    return expit(z)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
# name -> (f(z), f'(z) given z and h = f(z))
NONLINEARITIES = {
    "linear": (lambda z: z, lambda z, h: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, h: (z > 0).astype(z.dtype)),
    "leaky_relu": (
        lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
        lambda z, h: np.where(z > 0, 1.0, LEAKY_SLOPE),
    ),
    "tanh": (np.tanh, lambda z, h: 1.0 - h * h),
    "sigmoid": (_expit, lambda z, h: h * (1.0 - h)),
    "selu": (
        lambda z: _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0.0))),
        lambda z, h: np.where(z > 0, _SELU_SCALE, h + _SELU_SCALE * _SELU_ALPHA),
    ),
}


_BOUNDED = {"tanh": 1.0, "sigmoid": 0.25}  # saturating nonlinearities: the largest derivative


@dataclass
class Propagation:
    """What ``propagate`` measured. Index l of the arrays is layer l (0: the input / its gradient).

    ``activation_std[l]``: std of h_l over batch and units. ``unit_spread[l]``: the mean over
    the batch of the std across units (0: every unit of the layer computes the same value).
    ``saturation[l]``: the fraction of units of layer l whose derivative is below 1 % of its
    largest value (tanh, sigmoid: pinned at their limits; always 0 for the other nonlinearities).
    ``gradient_std[l]``: std of dL/dh_l (``gradient_std[depth]`` is the upstream gradient's);
    None without ``backward``.
    """

    scheme: str
    label: str
    init: dict
    nonlinearity: str
    depth: int
    width: int
    batch: int
    seed: int
    activation_std: np.ndarray
    unit_spread: np.ndarray
    saturation: np.ndarray
    gradient_std: np.ndarray | None = None

    def to_json(self) -> dict:
        return {
            "scheme": self.scheme,
            "label": self.label,
            "init": self.init,
            "nonlinearity": self.nonlinearity,
            "depth": self.depth,
            "width": self.width,
            "batch": self.batch,
            "seed": self.seed,
            "activation_std": self.activation_std.tolist(),
            "unit_spread": self.unit_spread.tolist(),
            "saturation": self.saturation.tolist(),
            "gradient_std": None if self.gradient_std is None else self.gradient_std.tolist(),
            "verdict": self.verdict,
        }

    @property
    def activation_change(self) -> float:
        """activation std at the top / after the first layer (1: the scale is kept)."""
        return _ratio(self.activation_std[self.depth], self.activation_std[1])

    @property
    def gradient_change(self) -> float | None:
        """gradient std at the input / at the top (1: gradients keep their scale going down)."""
        if self.gradient_std is None:
            return None
        return _ratio(self.gradient_std[0], self.gradient_std[self.depth])

    @property
    def symmetric(self) -> bool:
        """Every unit of the top layer computes the same value (to 1e-9 of the activation std)."""
        top = self.activation_std[self.depth]
        return bool(top > 0 and self.unit_spread[self.depth] <= 1e-9 * top)

    @property
    def verdict(self) -> str:
        """ "zero", or the fate of the activations ("kept": within 10x from layer 1 to the top,
        "vanish", "explode"), then the gradients' when it is not "kept", "saturated" when most
        units of the top layer are, and "symmetric" when every unit computes the same value."""
        if self.activation_std[self.depth] == 0:
            return "zero"
        words = [f"activations {_fate(self.activation_change)}"]
        g = self.gradient_change
        if g is not None and _fate(g) != "kept":
            words.append(f"gradients {_fate(g)}")
        if self.saturation[self.depth] > 0.5:
            words.append(f"saturated ({self.saturation[self.depth]:.0%} of units)")
        if self.symmetric:
            words.append("symmetric (every unit equal)")
        return ", ".join(words)


def _fate(ratio: float) -> str:
    if not math.isfinite(ratio) or ratio > 10:
        return "explode"
    if ratio < 0.1:
        return "vanish"
    return "kept"


def _ratio(a: float, b: float) -> float:
    if b == 0:
        return 0.0 if a == 0 else math.inf
    return float(a / b)


def _std(x: np.ndarray) -> float:
    """std of all values, scaled first so squares of huge values do not overflow."""
    m = float(np.max(np.abs(x))) if x.size else 0.0
    if m == 0 or not math.isfinite(m):
        return m if not math.isfinite(m) else 0.0
    return m * float(np.std(x / m))


def _unit_spread(h: np.ndarray) -> float:
    m = float(np.max(np.abs(h))) if h.size else 0.0
    if m == 0 or not math.isfinite(m):
        return m if not math.isfinite(m) else 0.0
    return m * float(np.mean(np.std(h / m, axis=1)))


def _initializer(scheme, nonlinearity: str) -> tuple[str, str, Initializer]:
    if isinstance(scheme, str):
        if scheme in PROPAGATION_PRESETS:
            label, make = PROPAGATION_PRESETS[scheme]
            return scheme, label, make(nonlinearity)
        try:
            init = get_initializer(scheme)
        except ValueError:
            raise ValueError(
                f"scheme={scheme!r} is not one of {', '.join(PROPAGATION_PRESETS)} nor a registry scheme"
            ) from None
        return scheme, scheme, init
    if isinstance(scheme, dict):
        scheme = Initializer.from_config(scheme)
    if isinstance(scheme, Initializer):
        text = repr(scheme)
        return text, text, scheme
    raise TypeError(f"scheme must be a name, an Initializer or a config dict, got {type(scheme).__name__}")


def _positive_int(value, argname: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argname}={value!r} must be an int >= 1")
    return value


def check_size(depth: int, width: int, batch: int) -> None:
    """ValueError unless a run of this size fits ``MAX_DEPTH`` and ``MAX_VALUES`` (checked before
    anything is allocated: a huge width would otherwise end in MemoryError or the OOM killer)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"depth={depth} must be <= {MAX_DEPTH}")
    values = depth * width * (width + 2 * batch) + 2 * batch * width
    if values > MAX_VALUES:
        raise ValueError(
            f"depth={depth}, width={width}, batch={batch} hold {values:,} float64 values at once, "
            f"more than {MAX_VALUES:,}: use a smaller width, depth or batch"
        )


def propagate(scheme="kaiming_normal", nonlinearity: str = "relu", *, depth: int = 50, width: int = 256,
              batch: int = 128, seed: int = 0, backward: bool = True) -> Propagation:  # fmt: skip
    """Push N(0, 1) input through ``depth`` dense layers initialized by ``scheme`` (module docstring).

    ``scheme``: a name from ``PROPAGATION_PRESETS`` (Kaiming and orthogonal use torch's gain for
    ``nonlinearity``; Xavier and LeCun have no gain), any registry scheme name, an
    ``Initializer`` or its config. ``nonlinearity``: one of ``NONLINEARITIES``. Layer l's weight is
    drawn from the stream (``seed``, ``"layers.{l}.weight"``), in float64, torch layout (out, in).

    >>> r = propagate("too_small", "relu", depth=20, width=64, batch=32)
    >>> r.verdict, r.activation_change < 1e-10
    ('activations vanish, gradients vanish', True)
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity={nonlinearity!r} must be one of {', '.join(NONLINEARITIES)}")
    depth = _positive_int(depth, "depth")
    width = _positive_int(width, "width")
    batch = _positive_int(batch, "batch")
    check_size(depth, width, batch)
    name, label, init = _initializer(scheme, nonlinearity)
    f, df = NONLINEARITIES[nonlinearity]
    h = np.asarray(samplers.normal((batch, width), seed=seed, name="diagnostics.input", dtype="float64"))
    # All weights first, and the matmuls on one BLAS thread: alternating fastinit's parallel fills
    # with multithreaded BLAS makes each wait for the other's spinning threads (2-10x slower).
    weights = [np.asarray(init((width, width), seed=seed, name=f"layers.{layer}.weight", dtype="float64"))
               for layer in range(1, depth + 1)]  # fmt: skip
    g = np.asarray(
        samplers.normal((batch, width), seed=seed, name="diagnostics.upstream_gradient", dtype="float64")
    )
    pre, acts = [], [h]  # kept for the backward pass
    act_std, spread, saturation = [_std(h)], [_unit_spread(h)], [0.0]
    bounded = nonlinearity in _BOUNDED
    grad_std = None
    with np.errstate(over="ignore", invalid="ignore", under="ignore"), single_blas_thread():
        for w in weights:
            z = h @ w.T
            h = f(z)
            if backward:
                pre.append(z)
                acts.append(h)
            act_std.append(_std(h))
            spread.append(_unit_spread(h))
            saturation.append(float(np.mean(df(z, h) < 0.01 * _BOUNDED[nonlinearity])) if bounded else 0.0)
        if backward:
            grads = [_std(g)]
            for layer in range(depth, 0, -1):
                g = (g * df(pre[layer - 1], acts[layer])) @ weights[layer - 1]
                grads.append(_std(g))
            grad_std = np.array(grads[::-1])
    return Propagation(name, label, init.to_config(), nonlinearity, depth, width, batch, seed, np.array(act_std),
                       np.array(spread), np.array(saturation), grad_std)  # fmt: skip


def propagate_all(schemes: Sequence = DEFAULT_SCHEMES, nonlinearities: Sequence[str] = ("relu", "tanh"),
                  **kwargs) -> list[Propagation]:  # fmt: skip
    """``propagate`` for every (nonlinearity, scheme) pair, nonlinearity-major.

    >>> [r.verdict for r in propagate_all(["zeros"], ["relu", "tanh"], depth=2, width=8, batch=4)]
    ['zero', 'zero']
    """
    for nl in nonlinearities:
        if nl not in NONLINEARITIES:
            raise ValueError(f"nonlinearity={nl!r} must be one of {', '.join(NONLINEARITIES)}")
    return [propagate(s, nl, **kwargs) for nl in nonlinearities for s in schemes]


def _layers_shown(depth: int) -> list[int]:
    return sorted({0, 1, max(1, depth // 2), depth})


def propagation_table(results: Sequence[Propagation]) -> str:
    """The table ``fastinit inspect --propagate`` prints."""
    if not results:
        return "(nothing propagated)"
    depth = results[0].depth
    shown = _layers_shown(depth)
    head = ["nonlinearity", "scheme"] + [f"act std L{i}" for i in shown] + [f"act L{depth}/L1"]
    backward = results[0].gradient_std is not None
    if backward:
        head += [f"grad std L{depth}", "grad std L0", f"grad L0/L{depth}"]
    head.append("verdict")
    rows = []
    for r in results:
        row = [r.nonlinearity, r.label] + [_g(r.activation_std[i]) for i in shown] + [_g(r.activation_change)]
        if backward:
            row += [_g(r.gradient_std[depth]), _g(r.gradient_std[0]), _g(r.gradient_change)]
        row.append(r.verdict)
        rows.append(row)
    widths = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) if i < 2 or i == len(row) - 1 else str(c).rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=True))).rstrip() for row in [head] + rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    r = results[0]
    lines += [
        "",
        f"{r.depth} dense layers of width {r.width}, batch {r.batch}, no biases, seed {r.seed}, float64; "
        "input and upstream gradient N(0, 1).",
        "Ln: after layer n (L0: the input). Kaiming and orthogonal use torch's gain for the nonlinearity. "
        "verdict: kept = within 10x from layer 1 to the top (gradients: from the top to the input), vanish / explode "
        "beyond; symmetric: every unit of a layer computes the same value.",
    ]
    return "\n".join(lines)


def _g(v) -> str:
    return f"{v:.3g}"


def plot_propagation(results: Sequence[Propagation], path, *, ylim=(1e-10, 1e10)) -> dict:
    """One figure: a column per nonlinearity, activation std per layer (and, with gradients, a
    second row with the gradient std), a line per scheme, log-scale y clipped to ``ylim``; each
    legend entry gives the value at the end of the line (lines leaving the plot, zeros).

    Returns the y values drawn, {(nonlinearity, scheme, "activations" | "gradients"): array}
    (0 and inf are drawn as gaps: NaN)."""
    from matplotlib.figure import Figure  # the Agg canvas, without pyplot's global state

    nls = list(dict.fromkeys(r.nonlinearity for r in results))
    backward = all(r.gradient_std is not None for r in results)
    rows = 2 if backward else 1
    drawn = {}
    fig = Figure(figsize=(5.6 * len(nls), 4.2 * rows))
    axes = fig.subplots(rows, len(nls), squeeze=False)
    for j, nl in enumerate(nls):
        for k, r in enumerate(x for x in results if x.nonlinearity == nl):
            layers = np.arange(r.depth + 1)
            series = [(0, r.activation_std, r.depth)] + ([(1, r.gradient_std, 0)] if backward else [])
            for i, values, end in series:
                shown = np.where((values > 0) & np.isfinite(values), values, np.nan)
                drawn[(nl, r.scheme, "gradients" if i else "activations")] = shown
                label = f"{r.label}: {_g(values[end])} at layer {end}" + (" (not on a log scale)" if values[end] == 0
                                                                          else "")  # fmt: skip
                axes[i][j].plot(layers, shown, label=label, color=f"C{k % 10}", lw=1.6)
        axes[0][j].set_title(f"{nl}: activations through {results[0].depth} layers of width {results[0].width}",
                             fontsize=10)  # fmt: skip
        axes[0][j].set_ylabel("activation std")
        if backward:
            axes[1][j].set_title(f"{nl}: gradients, backward from layer {results[0].depth}", fontsize=10)
            axes[1][j].set_ylabel("gradient std (dL/dh)")
        for i in range(rows):
            ax = axes[i][j]
            ax.set_yscale("log")
            ax.set_ylim(*ylim)
            ax.set_xlabel("layer")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=6.5, loc="best")
    fig.suptitle("Signal propagation through depth (fastinit.diagnostics.propagate; lines leaving the plot "
                 "vanish or explode)", fontsize=11)  # fmt: skip
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=110)
    return drawn
