"""``fastinit inspect``: parameter statistics of a checkpoint, checked against the scheme each
tensor records.

A fastinit checkpoint records, per tensor, the initializer config it was drawn from (header
``__metadata__["fastinit.tensors"]``). ``predict(init, shape)`` turns that config into what the
values should look like: the distribution (a frozen ``scipy.stats`` normal, truncated normal or
uniform), its mean and std, its support; or, for schemes that are no i.i.d. distribution, the
structure to check instead (orthogonal: ``Q^T Q = gain^2 I``; constant / eye / dirac / values: the
exact values; sparse: the number of zeros per column, a normal elsewhere).

``inspect_path(path)`` reads a ``.safetensors`` file, a checkpoint directory (or its
``model.safetensors.index.json``) or a manifest (a JSON manifest or a Hugging Face
``config.json``: predictions only, there are no values). Values are read through a read-only
memory map (``checkpoint.safetensors_format.TensorFile``; bfloat16 through ml_dtypes) in pieces of at most
``chunk`` elements, so memory stays small whatever the tensor size:

- mean, std (population, ddof=0), min and max over every finite value, in one streaming pass
  (per-piece moments merged with Chan et al.'s formula, in float64);
- a deterministic subsample for the KS test: every k-th value in C order, k chosen so at most
  ``max_samples`` (default 10**5) values are kept.

Flags (any flag makes ``fastinit inspect`` exit with status 1):

``nan/inf``
    the tensor holds NaN or infinite values (statistics are over the finite ones).
``constant``
    every value of a floating-point tensor is equal (and it has more than one), unless the
    recorded scheme is a constant (zeros, ones, constant), which predicts exactly that (a
    different value is flagged ``deviates``). A file that records no scheme (a checkpoint
    transformers saved) is judged by the model's own init, traced from the ``config.json``
    beside it (``_traced_constants``): a norm weight of ones is not flagged; without a
    config.json every all-constant tensor is.
``deviates``
    the values do not follow the recorded scheme. For a distribution: the KS test of the
    subsample against it has p < ``alpha`` (default 1e-6), or the mean or the std is off by
    more than the z-score whose two-sided normal p-value is ``alpha`` (|z| > 4.89 for 1e-6),
    with standard errors ``std / sqrt(n)`` for the mean and ``std * sqrt((kurtosis - 1) / (4 n))``
    for the std (kurtosis of the predicted distribution), or a value lies outside the support,
    whose bounds are rounded to nearest in the tensor's dtype (a draw rounded to bfloat16 can
    land on the rounded bound).
    For orthogonal, constant, eye, dirac, sparse: the structural check fails (tolerances in
    ``_orthogonality_tolerance``). With thousands of tensors, alpha = 1e-6 keeps the chance of
    a false flag on a correct checkpoint below 0.1 % per thousand tensors per test.

Files are data: a custom scheme's function is never imported (its tensors get no prediction);
only regular files inside a checkpoint directory are read, each header checked against its
file's size before any value is read (``checkpoint.verify`` and ``checkpoint.files``); a record
that is not valid for its tensor gets no prediction, with the reason.

Rows a checkpoint zeroed after drawing (``zero_rows``, an embedding's padding row) are
checked to be zero and left out of the tests (not out of the displayed statistics).

>>> import tempfile, fastinit.checkpoint as ck
>>> m = ck.manifest_from_json([{"name": "w", "shape": [256, 128], "init": {"scheme": "normal", "std": 0.02}}])
>>> d = tempfile.mkdtemp(); _ = ck.write_checkpoint(m, d, seed=0)
>>> report = inspect_path(d)
>>> t = report.tensors[0]
>>> t.name, round(t.std, 3), t.predicted.std, t.flags
('w', 0.02, 0.02, [])
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .checkpoint import CheckpointError, checkpoint_files, manifest_from_config, manifest_from_json
from .checkpoint.files import read_regular
from .checkpoint.safetensors_format import TensorFile, read_raw_header
from .checkpoint.writer import INDEX_NAME
from .dtypes import round_to_dtype
from .schemes import Initializer
from .schemes.record import Prediction
from .terminal import printable

__all__ = [
    "ALPHA",
    "MAX_SAMPLES",
    "InspectError",
    "Prediction",
    "TensorReport",
    "InspectReport",
    "predict",
    "inspect_path",
    "plot_histograms",
]

ALPHA = 1e-6  # p-value below which a test flags a tensor (see the module docstring)
MAX_SAMPLES = 100_000  # values kept per tensor for the KS test and the histograms
CHUNK = 1 << 22  # values read at a time
GRAM_LIMIT = 1 << 24  # orthogonal tensors up to this many values get the Q^T Q check
MAX_MANIFEST_BYTES = 100_000_000
CONSTANT = "constant ("  # how the constant flag begins
FLOAT_DTYPES = ("float64", "float32", "float16", "bfloat16")
CELL_LIMIT = 160  # characters of a table cell (a tensor name or scheme read from a file may be any length)


class InspectError(CheckpointError):
    """A path that cannot be inspected (missing, not safetensors, not a manifest): one line."""


# ---- predictions from a recorded scheme ---------------------------------------------------------


def _scheme_text(config: dict) -> str:
    params = ", ".join(f"{k}={_short(v)}" for k, v in config.items() if k != "scheme")
    return f"{config['scheme']}({params})"


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, str):
        return v
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def predict(init, shape, zero_rows: Sequence[int] = ()) -> Prediction:
    """What ``init`` (an Initializer or its config dict) predicts for a tensor of ``shape``.

    ``zero_rows``: rows zeroed after drawing (their share is in ``mean`` / ``std``, and they are
    left out of ``dist``).

    >>> p = predict({"scheme": "kaiming_uniform", "nonlinearity": "relu"}, (256, 512))
    >>> p.family, round(p.std, 6), round(p.high, 6)   # sqrt(2 / 512), sqrt(3) * std
    ('uniform', 0.0625, 0.108253)
    >>> predict({"scheme": "orthogonal", "gain": 2.0}, (64, 16)).std   # gain / sqrt(max(rows, cols))
    0.25
    """
    if not isinstance(init, Initializer):
        init = Initializer.from_config(init)
    shape = tuple(int(d) for d in shape)
    text = _scheme_text(init.to_config())
    if math.prod(shape) == 0:
        return Prediction("unknown", scheme=text, note="empty tensor")
    p = dataclasses.replace(init.predict(shape), scheme=text)
    if zero_rows and p.mean is not None and len(shape) >= 1 and shape[0]:
        keep = 1 - len(set(zero_rows)) / shape[0]
        mean, var = keep * p.mean, keep * (p.std**2 + p.mean**2)
        p.mean, p.std = mean, math.sqrt(max(var - mean * mean, 0.0))
        p.note = (
            p.note + "; " if p.note else ""
        ) + f"{len(set(zero_rows))} zeroed row(s) included in mean/std"
    return p


def _safe_predict(config, shape, zero_rows) -> Prediction:
    """predict(), or an "unknown" prediction saying why not. A custom scheme's function is never
    imported (a file's header must not make the inspector import modules it names: a config
    names a function, which resolves only to one registered in this process)."""
    if not isinstance(config, dict) or "scheme" not in config:
        return Prediction("unknown", scheme=str(config), note="no scheme in the recorded config")
    try:
        init = Initializer.from_config(config)
        if shape and init.resolved:  # the parameters are valid for this shape: a call that selects no element
            init(shape, index=(slice(0, 0),))
        return predict(init, shape, zero_rows)
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError, RecursionError) as error:
        return Prediction("unknown", scheme=_scheme_label(config), note=f"cannot predict: {error}")


def _scheme_label(config: dict) -> str:
    try:
        return _scheme_text(config)
    except (TypeError, ValueError, RecursionError):
        return "unreadable config"


def _recorded(record, shape) -> tuple[object, tuple[int, ...], str | None]:
    """(init config, zero rows, why the record is unusable or None) of a file's record."""
    if not isinstance(record, dict):
        return record, (), None
    rows = record.get("zero_rows", [])
    limit = shape[0] if shape else 1
    if not isinstance(rows, list) or not all(isinstance(r, int) and not isinstance(r, bool) and 0 <= r < limit
                                             for r in rows):  # fmt: skip
        return record.get("init"), (), f"zero_rows must be row numbers in [0, {limit})"
    return record.get("init"), tuple(sorted(set(rows))), None


# ---- reading values ---------------------------------------------------------------------------


def _pieces(shape, chunk: int):
    """(flat start, index tuple) covering ``shape`` in C order, each at most ~chunk values (a
    single row of the last dimension may be cut), each a contiguous flat range."""
    if not shape:
        yield 0, ()
        return
    if 0 in shape:
        return
    inner = math.prod(shape[1:])
    if len(shape) == 1 or inner <= chunk:
        step = chunk if len(shape) == 1 else max(1, chunk // inner)
        for r0 in range(0, shape[0], step):
            yield r0 * inner, (slice(r0, min(shape[0], r0 + step)),)
        return
    for r in range(shape[0]):
        for start, sub in _pieces(shape[1:], chunk):
            yield r * inner + start, (slice(r, r + 1),) + sub


class _Moments:
    """Streaming count, mean, M2 (sum of squared deviations), min, max of finite values, and
    the NaN / Inf counts; pieces merged with Chan, Golub & LeVeque's pairwise formula."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.min, self.max = math.inf, -math.inf
        self.nan = self.inf = 0

    def add(self, x: np.ndarray) -> None:
        finite = np.isfinite(x)
        if not finite.all():
            self.nan += int(np.isnan(x).sum())
            self.inf += int(np.isinf(x).sum())
            x = x[finite]
        n = x.size
        if n == 0:
            return
        mean = float(x.mean())
        d = x - mean
        m2 = float(np.dot(d, d))
        self.min, self.max = min(self.min, float(x.min())), max(self.max, float(x.max()))
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else math.nan


# ---- reports ----------------------------------------------------------------------------------


@dataclass
class TensorReport:
    """One tensor's statistics, prediction, test results and flags."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    file: str = ""
    init: dict | None = None  # the recorded config, None when the file records none
    predicted: Prediction | None = None
    numel: int = 0
    mean: float | None = None  # None: no values (a manifest) or no finite values
    std: float | None = None
    min: float | None = None
    max: float | None = None
    nan: int = 0
    inf: int = 0
    ks_pvalue: float | None = None
    ks_samples: int = 0
    z_mean: float | None = None
    z_std: float | None = None
    checks: list[str] = field(default_factory=list)  # what was checked, in words
    flags: list[str] = field(default_factory=list)
    sample: np.ndarray | None = field(default=None, repr=False)  # the KS subsample (for plots)

    def to_json(self) -> dict:
        p = self.predicted
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "file": self.file,
            "init": self.init,
            "numel": self.numel,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "nan": self.nan,
            "inf": self.inf,
            "predicted": None
            if p is None
            else {
                "kind": p.kind,
                "family": p.family,
                "mean": p.mean,
                "std": p.std,
                "low": p.low,
                "high": p.high,
                "note": p.note,
            },  # fmt: skip
            "ks_pvalue": self.ks_pvalue,
            "ks_samples": self.ks_samples,
            "z_mean": self.z_mean,
            "z_std": self.z_std,
            "checks": self.checks,
            "flags": self.flags,
        }


@dataclass
class InspectReport:
    """Every inspected tensor, and how they were tested."""

    source: str
    kind: str  # "checkpoint" (values read) or "manifest" (predictions only)
    tensors: list[TensorReport]
    files: list[str] = field(default_factory=list)
    alpha: float = ALPHA
    max_samples: int = MAX_SAMPLES

    @property
    def flagged(self) -> list[TensorReport]:
        return [t for t in self.tensors if t.flags]

    def to_json(self) -> dict:
        return {"source": self.source, "kind": self.kind, "files": self.files, "alpha": self.alpha,
                "max_samples": self.max_samples, "tensors": [t.to_json() for t in self.tensors]}  # fmt: skip

    def table(self) -> str:
        """The table ``fastinit inspect`` prints, with a legend of the flags and thresholds."""
        if self.kind == "manifest":
            head = [
                "name",
                "shape",
                "dtype",
                "scheme",
                "pred mean",
                "pred std",
                "pred min",
                "pred max",
                "KS against",
            ]
            rows = []
            for t in self.tensors:
                p = t.predicted
                rows.append([t.name, _shape_text(t.shape), t.dtype, p.scheme, _num(p.mean), _num(p.std),
                             _num(p.low), _num(p.high), p.family])  # fmt: skip
            lines = _format(head, rows)
            lines.append(f"\n{len(self.tensors)} tensors (a manifest: predictions only, no values)")
            return "\n".join(lines)
        head = ["name", "shape", "dtype", "mean", "std", "min", "max", "pred std", "KS p", "scheme", "flags"]
        rows = []
        for t in self.tensors:
            p = t.predicted
            ks = "n/a" if t.ks_pvalue is None else f"{t.ks_pvalue:.2g}"
            rows.append([t.name, _shape_text(t.shape), t.dtype, _num(t.mean), _num(t.std), _num(t.min), _num(t.max),
                         _num(None if p is None else p.std), ks, "-" if p is None else p.scheme,
                         ", ".join(t.flags) or "ok"])  # fmt: skip
        z = _z_threshold(self.alpha)
        lines = _format(head, rows)
        lines += [
            "",
            f"{len(self.tensors)} tensors, {sum(t.numel for t in self.tensors):,} values in {len(self.files)} "
            f"file(s); {len(self.flagged)} flagged",
            f"flags: nan/inf; constant (every value equal, and no scheme predicts it); deviates: KS p < "
            f"{self.alpha:g} (on <= {self.max_samples:,} values, every k-th), |z| > {z:.2f} for mean or std "
            f"(two-sided p {self.alpha:g}), values outside the support (in the tensor's dtype), or a failed "
            "structural check (orthogonal, exact values, sparse zeros, zeroed rows).",
        ]
        return "\n".join(lines)


def _shape_text(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _num(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _format(head, rows) -> list[str]:
    rows = [[printable(c, CELL_LIMIT) for c in r] for r in rows]  # (names and schemes come from the file)
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def _z_threshold(alpha: float) -> float:
    from scipy import stats

    return float(stats.norm.isf(alpha / 2))


# ---- the checks -------------------------------------------------------------------------------


def _orthogonality_tolerance(dtype: str) -> float:
    """Largest |Q^T Q / gain^2 - I| accepted: 8 units in the last place of the dtype (float32
    and float64 values come from a float32 / float64 QR, whose error is far smaller), and never
    below 1e-4 (rounding of float32 values of a large QR)."""
    eps = {"float64": 2.0**-52, "float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}.get(
        dtype, 2.0**-23
    )
    return max(8 * eps, 1e-4)


def _gram_deviation(q: np.ndarray, gain: float) -> float:
    """max |Q^T Q - gain^2 I| / gain^2 over a stack of (rows, cols) matrices (the smaller side)."""
    q = q.astype(np.float64)
    if q.shape[-2] < q.shape[-1]:
        q = np.swapaxes(q, -1, -2)
    gram = np.swapaxes(q, -1, -2) @ q
    g2 = gain * gain
    eye = np.eye(gram.shape[-1])
    return float(np.abs(gram / g2 - eye).max()) if g2 > 0 else float(np.abs(gram).max())


def _structure_checks(t: TensorReport, values: np.ndarray) -> None:
    """The orthogonal / delta-orthogonal checks on the whole tensor (at most GRAM_LIMIT values)."""
    p = t.predicted
    tol = _orthogonality_tolerance(t.dtype)
    m = p.matrices(values)
    if np.count_nonzero(values) != np.count_nonzero(m):
        t.flags.append("deviates (non-zero values outside the orthogonal matrices)")
    gain = p.gain
    dev = _gram_deviation(m, gain)
    t.checks.append(f"max |Q^T Q / gain^2 - I| = {dev:.2g} (tolerance {tol:.2g})")
    if not dev <= tol:
        t.flags.append(f"deviates (not orthogonal: {dev:.2g} > {tol:.2g})")


def _in_dtype(bound: float, dtype: str) -> float:
    """A support bound rounded to nearest in the tensor's dtype: a draw from [low, high] rounded to
    that dtype lies in [round(low), round(high)], and can sit on either (uniform values rounded
    to bfloat16 land on -1/64 for a float64 bound of -0.015624999999999998)."""
    return round_to_dtype(bound, dtype) if dtype in FLOAT_DTYPES else bound


def _dtype_text(value: float, dtype: str) -> str:
    """The shortest text that reads back as ``value`` in ``dtype`` ("-0.05" for float32's
    -0.05000000074505806)."""
    if dtype == "bfloat16":
        import ml_dtypes

        return str(ml_dtypes.bfloat16(value))
    kind = {"float32": np.float32, "float16": np.float16}.get(dtype)
    return str(kind(value)) if kind is not None else repr(float(value))


def _test_distribution(t: TensorReport, m: _Moments, n_zero: int, alpha: float) -> None:
    """z-tests of mean and std of the drawn values, support, KS of the subsample."""
    from scipy import stats

    p = t.predicted
    dist = p.dist
    n = m.n - n_zero  # the drawn values (zeroed rows and, for sparse, the zeros left out)
    if n <= 1 or dist is None:
        return
    # moments of the drawn part: the n_zero zeros merged into (n, mean, M2) give what m holds
    mean = m.mean * m.n / n
    m2 = m.m2 - n * n_zero / m.n * mean * mean
    std = math.sqrt(max(m2, 0.0) / n)
    mu, sigma = float(dist.mean()), float(dist.std())
    kurtosis = float(dist.stats(moments="k")) + 3.0
    z = _z_threshold(alpha)
    t.z_mean = (mean - mu) / (sigma / math.sqrt(n))
    t.z_std = (std - sigma) / (sigma * math.sqrt(max(kurtosis - 1.0, 1e-12) / (4 * n)))
    t.checks.append(f"z(mean) = {t.z_mean:+.2f}, z(std) = {t.z_std:+.2f} over {n:,} values (|z| <= {z:.2f})")
    if abs(t.z_mean) > z:
        t.flags.append(f"deviates (mean z={t.z_mean:+.1f})")
    if abs(t.z_std) > z:
        t.flags.append(f"deviates (std z={t.z_std:+.1f})")
    low, high = (_in_dtype(bound, t.dtype) for bound in dist.support())
    if m.n and (m.min < low or m.max > high):
        t.flags.append(
            f"deviates (values outside [{_dtype_text(low, t.dtype)}, {_dtype_text(high, t.dtype)}])"
        )
    if t.sample is not None and t.sample.size:
        sample = t.sample[t.sample != 0] if p.kind == "sparse" else t.sample
        sample = sample[np.isfinite(sample)]
        if sample.size:
            t.ks_pvalue = float(stats.kstest(sample, dist.cdf).pvalue)
            t.ks_samples = int(sample.size)
            t.checks.append(f"KS against {p.family}: p = {t.ks_pvalue:.3g} on {sample.size:,} values")
            if t.ks_pvalue < alpha:
                t.flags.append(f"deviates (KS p={t.ks_pvalue:.1g})")


def _inspect_tensor(
    f, name: str, file: str, record: dict | None, *, chunk: int, max_samples: int, alpha: float
):
    code = f.dtype_code(name)
    values = f.array(name)
    shape = tuple(int(d) for d in values.shape)
    dtype = _DTYPE_NAMES.get(code, code.lower())
    t = TensorReport(name, shape, dtype, file, numel=math.prod(shape))
    zero_rows: tuple[int, ...] = ()
    if record is not None:
        init, zero_rows, problem = _recorded(record, shape)
        t.init = init if isinstance(init, dict) else None
        t.predicted = (_safe_predict(init, shape, zero_rows) if problem is None else
                       Prediction("unknown", scheme="unreadable record", note=problem))  # fmt: skip
    if t.numel == 0:
        return t
    if dtype == "bfloat16":  # safetensors' numpy reader names the dtype; ml_dtypes defines it
        try:
            import ml_dtypes  # noqa: F401
        except ImportError:
            raise InspectError(f"{file}: tensor {name} is bfloat16, which NumPy reads only with the ml_dtypes "
                               "package: pip install 'fastinit[bfloat16]'") from None  # fmt: skip
    numeric = dtype in FLOAT_DTYPES or re.fullmatch(r"u?int\d+|bool", dtype)
    if not numeric:
        t.checks.append(f"dtype {dtype}: no statistics")
        return t
    p = t.predicted
    if p is not None and p.kind == "unknown":
        t.checks.append(p.note)
    exact = None
    if p is not None and p.kind == "exact" and t.init is not None:
        exact = Initializer.from_config(t.init)
    row_len = math.prod(shape[1:]) if shape else 1
    stride = max(1, -(-t.numel // max_samples))
    moments, samples, mismatched, zeros = _Moments(), [], 0, 0
    zero_set = np.array(zero_rows, np.int64)
    for start, index in _pieces(shape, chunk):
        piece = values[index] if index else values
        x = np.asarray(piece).astype(np.float64).ravel()
        moments.add(x)
        if p is not None and p.kind == "sparse":
            zeros += int((x == 0).sum())
        first = (-start) % stride
        picked = np.arange(start + first, start + x.size, stride)
        if zero_set.size:
            picked = picked[~np.isin(picked // row_len, zero_set)]
        samples.append(x[picked - start])
        if exact is not None:
            expected = np.asarray(exact(shape, dtype=dtype, index=index or None)).astype(np.float64).ravel()
            mismatched += int(np.count_nonzero(expected != x))
    t.sample = np.concatenate(samples) if samples else np.empty(0)
    if moments.n:
        t.mean, t.std, t.min, t.max = moments.mean, moments.std, moments.min, moments.max
    t.nan, t.inf = moments.nan, moments.inf
    if t.nan or t.inf:
        t.flags.append(f"nan/inf ({t.nan} NaN, {t.inf} Inf)")
    constant_ok = p is not None and p.kind == "exact" and p.std == 0
    floating = dtype in FLOAT_DTYPES  # an all-ones int mask is no problem
    if floating and t.numel > 1 and moments.n == t.numel and moments.min == moments.max and not constant_ok:
        t.flags.append(f"{CONSTANT}every value {moments.min:.4g})")
    if p is None:
        return t
    n_zero = 0
    if zero_rows:
        rows = np.asarray(values[slice(zero_rows[0], zero_rows[-1] + 1)]).reshape(-1, row_len)
        bad = [r for r in zero_rows if np.any(rows[r - zero_rows[0]] != 0)]
        t.checks.append(f"zeroed rows {list(zero_rows)}: " + ("not zero: " + str(bad) if bad else "zero"))
        if bad:
            t.flags.append(f"deviates (zeroed rows not zero: {bad[:5]})")
        n_zero = len(zero_rows) * row_len
    if p.kind == "exact" and exact is not None:
        t.checks.append(f"{mismatched:,} of {t.numel:,} values differ from {p.scheme}")
        if mismatched:
            t.flags.append(f"deviates ({mismatched:,} values differ from {p.scheme})")
    elif p.kind == "distribution":
        _test_distribution(t, moments, n_zero, alpha)
    elif p.kind == "sparse":
        expected_zeros = round(p.zero_fraction * shape[0]) * row_len
        t.checks.append(f"{zeros:,} zeros, {expected_zeros:,} expected")
        if zeros != expected_zeros:
            t.flags.append(f"deviates ({zeros:,} zeros, the scheme gives {expected_zeros:,})")
        if p.dist is not None:
            _test_distribution(t, moments, zeros, alpha)
    elif p.kind in ("orthogonal", "delta_orthogonal"):
        rms = math.sqrt(moments.m2 / moments.n + moments.mean**2) if moments.n else math.nan
        tol = _orthogonality_tolerance(dtype)
        t.checks.append(f"root mean square {rms:.6g}, predicted {p.std:.6g}")
        if t.numel <= GRAM_LIMIT:
            _structure_checks(t, np.asarray(values).astype(np.float64))
        elif not abs(rms - p.std) <= tol * max(p.std, 1e-300):
            t.flags.append(f"deviates (root mean square {rms:.4g}, the scheme gives {p.std:.4g})")
    return t


_DTYPE_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
                "I32": "int32", "I16": "int16", "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16",
                "U8": "uint8", "BOOL": "bool"}  # fmt: skip


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _selected(name: str, select: Sequence[str] | None) -> bool:
    return not select or any(fnmatch.fnmatchcase(name, pattern) for pattern in select)


def _manifest_report(path: str, spec, select) -> InspectReport:
    try:
        if isinstance(spec, dict) and "model_type" in spec and "tensors" not in spec:
            manifest = manifest_from_config(spec)
        else:
            manifest = manifest_from_json(spec)
    except CheckpointError as error:
        raise InspectError(f"{path}: {error}") from None
    tensors = []
    for s in manifest.tensors:
        if _selected(s.name, select):
            t = TensorReport(s.name, s.shape, s.dtype.name, init=s.init.to_config(), numel=s.numel)
            t.predicted = _safe_predict(s.init.to_config(), s.shape, s.zero_rows)
            tensors.append(t)
    return InspectReport(path, "manifest", tensors)


def _files(path: str) -> list[str]:
    """The files to read, each checked to be a regular file whose header fits its size."""
    if os.path.isdir(path):
        files = checkpoint_files(path)
    elif os.path.basename(path) == INDEX_NAME or path.endswith(".index.json"):
        files = checkpoint_files(os.path.dirname(path) or ".")
    else:
        files = [path]
    for file in files:
        try:
            read_raw_header(file)
        except CheckpointError:
            raise
        except ValueError as error:
            detail = str(error).removeprefix(f"{file}: ")
            raise InspectError(f"{file}: not a readable safetensors file ({detail})") from None
    return files


def _traced_constants(tensors: list[TensorReport], config_path: str) -> None:
    """Constant tensors a file records no scheme for (a checkpoint transformers saved): the model's
    own init, traced from the config.json beside the files, may predict that constant (norm
    weights of ones, biases of zeros); those are not flagged. Only constants are judged this way:
    a trained checkpoint's other tensors are expected to have left their init."""
    if not os.path.isfile(config_path):
        return
    try:
        config = json.loads(read_regular(config_path, MAX_MANIFEST_BYTES).decode("utf-8"))
        if not isinstance(config, dict) or "model_type" not in config:
            raise CheckpointError("no model_type")
        traced = {s.name: s for s in manifest_from_config(config, dtype="float32").tensors}
    except Exception as error:  # advisory: whatever the config or transformers raise, say it and go on
        reason = " ".join(str(error).split())[:200]
        for t in tensors:
            t.checks.append(f"config.json: no prediction ({reason})")
        return
    for t in tensors:
        spec = traced.get(t.name)
        if spec is None or spec.shape != t.shape:
            t.checks.append("config.json: the traced model has no tensor of this name and shape")
            continue
        p = _safe_predict(spec.init.to_config(), spec.shape, spec.zero_rows)
        if p.kind == "exact" and p.std == 0 and t.min == t.max == _in_dtype(p.mean, t.dtype):
            t.flags = [f for f in t.flags if not f.startswith(CONSTANT)]
            t.predicted = dataclasses.replace(p, scheme=f"{p.scheme} (config.json)")
            t.checks.append(f"every value {t.min:.4g}, as {p.scheme} traced from config.json predicts")
        else:
            t.checks.append(f"config.json: {p.scheme} traced, which does not predict every value {t.min:.4g}")


def inspect_path(path, *, select: Sequence[str] | None = None, alpha: float = ALPHA, max_samples: int = MAX_SAMPLES,
                 chunk: int = CHUNK, progress=None) -> InspectReport:  # fmt: skip
    """Inspect a safetensors file, a checkpoint directory or index, or a manifest (module docstring).

    ``select``: fnmatch patterns; only tensors whose name matches one are inspected.
    ``progress``: called with the bytes of each piece read (e.g. a ``fastinit._progress.Progress``).
    Raises InspectError (a ValueError) for a path that cannot be inspected.
    """
    path = os.fspath(path)
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r} must be a float in (0, 1)")
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ValueError(f"max_samples={max_samples!r} must be an int >= 1")
    if not os.path.exists(path):
        raise InspectError(f"{path}: no such file or directory")
    if not os.path.isdir(path) and path.endswith(".json") and not path.endswith(".index.json"):
        try:
            spec = json.loads(read_regular(path, MAX_MANIFEST_BYTES).decode("utf-8"))
        except CheckpointError as error:
            raise InspectError(str(error)) from None
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise InspectError(f"{path}: not a readable JSON manifest (not JSON)") from None
        return _manifest_report(path, spec, select)
    try:
        files = _files(path)
    except CheckpointError as error:
        raise InspectError(str(error)) from None
    tensors = []
    for file in files:
        try:
            handle = TensorFile(file)
        except CheckpointError as error:
            raise InspectError(str(error)) from None
        except (ValueError, OSError):
            raise InspectError(f"{file}: not a readable safetensors file") from None
        with handle as f:
            try:
                records = json.loads(f.metadata.get("fastinit.tensors", "{}"))
            except (ValueError, RecursionError):
                records = {}
            if not isinstance(records, dict):
                records = {}
            for name in sorted((e[0] for e in f.entries), key=_natural_key):
                if not _selected(name, select):
                    continue
                try:
                    t = _inspect_tensor(f, name, os.path.basename(file), records.get(name), chunk=chunk,
                                        max_samples=max_samples, alpha=alpha)  # fmt: skip
                except TypeError as error:  # e.g. bfloat16 without ml_dtypes
                    raise InspectError(f"{file}: tensor {name}: cannot read ({error})") from None
                tensors.append(t)
                if progress is not None:
                    progress(t.numel * max(1, _ITEMSIZE.get(t.dtype, 4)))
    tensors.sort(key=lambda t: _natural_key(t.name))
    unrecorded = [t for t in tensors if t.predicted is None and any(f.startswith(CONSTANT) for f in t.flags)]
    if unrecorded:
        _traced_constants(unrecorded, os.path.join(os.path.dirname(files[0]), "config.json"))
    return InspectReport(
        path, "checkpoint", tensors, [os.path.basename(f) for f in files], alpha, max_samples
    )


_ITEMSIZE = {"float64": 8, "int64": 8, "uint64": 8, "float32": 4, "int32": 4, "uint32": 4, "float16": 2,
             "bfloat16": 2, "int16": 2, "uint16": 2}  # fmt: skip


# ---- plots ------------------------------------------------------------------------------------


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".png"


def plot_histograms(report: InspectReport, directory) -> list[str]:
    """One PNG per inspected tensor with values: a histogram of its subsample (density) and the
    recorded scheme's density drawn over it. Returns the paths written."""
    from matplotlib.figure import Figure  # the Agg canvas, without pyplot's global state

    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    written = []
    for t in report.tensors:
        if t.sample is None or t.sample.size == 0:
            continue
        x = t.sample[np.isfinite(t.sample)]
        p = t.predicted
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.subplots()
        label = f"values ({x.size:,} of {t.numel:,})"
        if x.size and x.min() == x.max():
            ax.hist(x, bins=1, range=(x.min() - 0.5, x.max() + 0.5), density=True, color="C0", alpha=0.6,
                    label=label)  # fmt: skip
        elif x.size:
            ax.hist(x, bins=min(100, max(10, int(np.sqrt(x.size)))), density=True, color="C0", alpha=0.6,
                    label=label)  # fmt: skip
        if p is not None and p.dist is not None:
            lo, hi = (float(x.min()), float(x.max())) if x.size else p.dist.support()
            lo, hi = min(lo, p.dist.ppf(1e-4)), max(hi, p.dist.ppf(1 - 1e-4))
            grid = np.linspace(lo, hi, 801)
            scale = 1.0 - p.zero_fraction if p.kind == "sparse" else 1.0
            ax.plot(grid, scale * p.dist.pdf(grid), color="C3", lw=1.8,
                    label=f"{p.scheme}: {p.family} density" + (" (non-zero part)" if scale < 1 else ""))  # fmt: skip
        elif p is not None and p.std and p.kind in ("orthogonal", "delta_orthogonal"):
            from scipy import stats

            grid = np.linspace(float(x.min()), float(x.max()), 801)
            ax.plot(grid, stats.norm(0.0, p.std).pdf(grid), "--", color="C3", lw=1.5,
                    label=f"{p.scheme}: normal with the predicted std (approximation)")  # fmt: skip
        elif p is not None and p.kind == "exact" and p.std == 0:
            ax.axvline(p.mean, color="C3", lw=1.8, label=f"{p.scheme}: every value {p.mean:.4g}")
        ax.set_xlabel("value")
        ax.set_ylabel("density")
        flags = "; ".join(t.flags) if t.flags else "no flags"
        ax.set_title(f"{t.name} {_shape_text(t.shape)} {t.dtype}\n{flags}", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out = os.path.join(directory, _file_name(t.name))
        fig.savefig(out, dpi=100)
        written.append(out)
    return written
