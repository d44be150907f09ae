"""The benchmark engine behind ``fastinit bench`` and ``benchmarks/test_suite.py``.

One table, measured in one run: for every case (a sampler and an output dtype) fastinit fills a
buffer of ``n`` values in place (``out=``), and in the same rounds, interleaved with it, the
machine's ceiling (a plain fill of the same buffer: ``buf.fill(1.0)``, ``tensor.fill_(1.0)`` on
a GPU) and each installed peer produce the same distribution in the same dtype:

==========  ==================================================  ==========================
peer        uniform / normal / truncated normal                 notes
==========  ==================================================  ==========================
numpy       ``Generator(PCG64).random`` / ``standard_normal``   float32 / float64 only,
            (``out=`` the same buffer)                          no truncated normal
torch       ``uniform_`` / ``normal_`` / ``nn.init.trunc_normal_``  on the same buffer
            (CPU generator; CUDA tensors with ``--device cuda``)
jax         ``jax.random.uniform`` / ``normal`` /               jit-compiled, returns a new
            ``truncated_normal`` (``block_until_ready``)         array; float64 needs x64
cupy        ``cupy.random.default_rng().random`` /              ``--device cuda`` only,
            ``standard_normal`` (``out=``)                       float32 / float64
==========  ==================================================  ==========================

How it times (the machines this runs on are shared and noisy):

- every operation is called once before timing (kernels loaded from Numba's cache, JAX's jit
  compiled, pages faulted in); that warm-up is reported but never counted;
- operations too quick for the clock are repeated (``iterations``) so one timing lasts at least
  ``min_time`` seconds, and on a GPU each timing ends with a device synchronization;
- after a JAX call the next operation waits 0.25 s, untimed: XLA's CPU threads keep spinning
  for a while and would slow whatever multithreaded operation comes next (fastinit 3.4x);
- each round times every operation once, in an order rotated from round to round, and the
  figures are medians over rounds: times for M values/s and GB/s, and the per-round ratios for
  the fraction of the fill ceiling and the speed-ups (both operations of a ratio saw the same
  moment of the machine).

>>> from fastinit import benchmark
>>> result = benchmark.run(benchmark.cases(["uniform"], ["float32"]), size=4096, rounds=3, peers=())
>>> row = result.cases[0]
>>> row.case.label, row.n, row.fill_fraction > 0
('uniform float32', 4096, True)
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .cuda_runtime import check_device, device_name, device_ordinal

__all__ = [
    "SAMPLERS",
    "DTYPES",
    "PEERS",
    "PARAMS",
    "QUICK",
    "FULL",
    "Case",
    "CaseResult",
    "BenchResult",
    "cases",
    "backend",
    "run",
    "machine_info",
    "parse_count",
    "format_rows",
    "time_interleaved",
    "physical_memory",
    "MAX_COUNT",
    "MAX_ROUNDS",
    "plot",
]

SAMPLERS = ("uniform", "normal", "truncated_normal")
DTYPES = ("float32", "bfloat16", "float16", "float64")
PEERS = ("numpy", "torch", "jax", "cupy")
# The distributions every implementation draws: the peers' defaults for uniform and normal; for
# the truncated normal the LLM-style std=0.02 cut at +-2 std in absolute units (torch's
# trunc_normal_ convention, where its erfinv path is slow).
PARAMS = {
    "uniform": dict(low=0.0, high=1.0),
    "normal": dict(mean=0.0, std=1.0),
    "truncated_normal": dict(mean=0.0, std=0.02, a=-0.04, b=0.04),
}
# fastinit bench --quick: under a minute on 2 cores, jax's import and jit compiles included
QUICK = dict(size=2**22, rounds=5, dtypes=("float32", "bfloat16"))
# fastinit bench: the figures of benchmarks/RESULTS.md
FULL = dict(size=2**26, rounds=7, dtypes=("float32", "bfloat16", "float64"))
FILL = "fill"
FASTINIT = "fastinit"
# XLA's CPU thread pool keeps spinning after a call: measured on 2 cores, fastinit's 2-thread
# fill right after a jax.random call took 3.4x its time, 1.6x after 50 ms, 1.1x after 200 ms.
# Every JAX call is therefore followed by this untimed pause (no other peer needs one).
JAX_SETTLE = 0.25
# The largest count parse_count accepts: a float64 buffer of it is still addressable (< 2**63 bytes).
MAX_COUNT = 2**60
# The most interleaved rounds `fastinit bench` runs (medians settle within a few dozen).
MAX_ROUNDS = 1000


@dataclass(frozen=True)
class Case:
    """One row of the table: a sampler (see ``PARAMS``) into an output dtype."""

    sampler: str
    dtype: str

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler={self.sampler!r} must be one of {', '.join(SAMPLERS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} must be one of {', '.join(DTYPES)}")

    @property
    def label(self) -> str:
        return f"{self.sampler} {self.dtype}"

    @property
    def itemsize(self) -> int:
        return 8 if self.dtype == "float64" else 4 if self.dtype == "float32" else 2


def cases(samplers: Sequence[str] = SAMPLERS, dtypes: Sequence[str] = FULL["dtypes"]) -> list[Case]:
    """Every (sampler, dtype) pair, dtype-major (the table groups rows by dtype).

    >>> [c.label for c in cases(["normal"], ["float32", "bfloat16"])]
    ['normal float32', 'normal bfloat16']
    """
    return [Case(s, d) for d in dtypes for s in samplers]


# ---- backends: buffers, the fill ceiling, fastinit and the peers ----------------------------------


class _CPU:
    """Buffers are NumPy arrays (bfloat16 as ml_dtypes.bfloat16); torch sees them as tensors."""

    name = "cpu"

    def __init__(self):
        self.device = "cpu"

    def sync(self) -> None:
        pass

    def buffer(self, case: Case, n: int):
        buf = np.empty(n, _numpy_dtype(case.dtype))
        buf.fill(0)  # fault the pages in: every operation then writes touched memory
        return buf

    def fill(self, buf):
        if buf.dtype.itemsize == 2 and buf.dtype != np.float16:  # bfloat16: ml_dtypes' fill is slow
            bits = buf.view(np.uint16)
            return lambda: bits.fill(0x3F80)  # the bits of bfloat16 1.0
        return lambda: buf.fill(1.0)

    def fastinit(self, case: Case, buf):
        import fastinit

        sampler = getattr(fastinit, case.sampler)
        params = PARAMS[case.sampler]
        return lambda: sampler(buf.size, **params, out=buf)

    def peer(self, name: str, case: Case, buf):
        return getattr(self, f"_{name}")(case, buf)

    def _numpy(self, case, buf):
        if case.dtype not in ("float32", "float64") or case.sampler == "truncated_normal":
            return None
        rng = np.random.default_rng(0)
        if case.sampler == "uniform":
            return lambda: rng.random(dtype=buf.dtype, out=buf)
        return lambda: rng.standard_normal(dtype=buf.dtype, out=buf)

    def _torch(self, case, buf):
        import torch

        t = torch.from_numpy(buf.view(np.uint16)).view(torch.bfloat16) if case.dtype == "bfloat16" else (
            torch.from_numpy(buf))  # fmt: skip
        return _torch_op(torch, case, t)

    def _jax(self, case, buf):
        return _jax_op(case, buf.size, "cpu")

    def _cupy(self, case, buf):
        return None


class _CUDA:
    """Buffers are torch CUDA tensors (or CuPy arrays without torch); timings end with a sync."""

    name = "cuda"

    def __init__(self, device: str):
        self.device = check_device(device)  # ValueError when there is no usable GPU
        # JAX would otherwise take 75 % of the GPU's memory at its first call, starving the buffers
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        self.index = device_ordinal(self.device)
        self.torch = _import_or_none("torch")
        if self.torch is not None and not self.torch.cuda.is_available():
            self.torch = None
        self.cupy = _import_or_none("cupy")
        if self.torch is None and self.cupy is None:
            raise ValueError(
                f"device={device!r}: timing on a GPU needs torch (with CUDA) or CuPy to hold the "
                "buffers; install one of them"
            )

    def sync(self) -> None:
        if self.torch is not None:
            self.torch.cuda.synchronize(self.index)
        else:
            self.cupy.cuda.Device(self.index).synchronize()

    def buffer(self, case: Case, n: int):
        try:
            if self.torch is not None:
                buf = self.torch.empty(n, dtype=getattr(self.torch, case.dtype), device=self.device)
            else:
                if case.dtype == "bfloat16":
                    return None  # CuPy has no bfloat16
                with self.cupy.cuda.Device(self.index):
                    buf = self.cupy.empty(n, case.dtype)
        except Exception as error:  # torch's and CuPy's out-of-memory errors are no MemoryError
            if "OutOfMemory" in type(error).__name__:
                raise MemoryError(f"size={n}: a {case.dtype} buffer does not fit in {self.device}") from None
            raise
        buf.fill_(0) if self.torch is not None else buf.fill(0)
        self.sync()
        return buf

    def fill(self, buf):
        return (lambda: buf.fill_(1.0)) if self.torch is not None else (lambda: buf.fill(1.0))

    def fastinit(self, case: Case, buf):
        import fastinit

        sampler = getattr(fastinit, case.sampler)
        params = PARAMS[case.sampler]
        n = buf.numel() if self.torch is not None else buf.size
        return lambda: sampler(n, **params, out=buf)

    def peer(self, name: str, case: Case, buf):
        if name == "numpy":
            return None
        if name == "torch":
            return None if self.torch is None else _torch_op(self.torch, case, buf)
        if name == "jax":
            n = buf.numel() if self.torch is not None else buf.size
            return _jax_op(case, n, "gpu")
        if name == "cupy":
            if (
                self.cupy is None
                or case.dtype not in ("float32", "float64")
                or case.sampler == "truncated_normal"
            ):
                return None
            arr = self.cupy.from_dlpack(buf) if self.torch is not None else buf
            rng = self.cupy.random.default_rng(0)
            if case.sampler == "uniform":
                return lambda: rng.random(dtype=arr.dtype, out=arr)
            return lambda: rng.standard_normal(dtype=arr.dtype, out=arr)
        raise ValueError(f"unknown peer {name!r}")


def _torch_op(torch, case: Case, t):
    if case.sampler == "uniform":
        return t.uniform_
    if case.sampler == "normal":
        return t.normal_
    p = PARAMS["truncated_normal"]
    return lambda: torch.nn.init.trunc_normal_(t, p["mean"], p["std"], p["a"], p["b"])


def _jax_op(case: Case, n: int, platform_name: str):
    jax = _import_or_none("jax")
    if jax is None:
        return None
    import jax.numpy as jnp

    if case.dtype == "float64" and not jax.config.jax_enable_x64:
        return None  # JAX would silently produce float32
    try:
        device = jax.devices(platform_name)[0]
    except RuntimeError:
        return None  # no such platform in this JAX install
    dtype = getattr(jnp, case.dtype)
    if case.sampler == "uniform":
        make = lambda k: jax.random.uniform(k, (n,), dtype)  # noqa: E731
    elif case.sampler == "normal":
        make = lambda k: jax.random.normal(k, (n,), dtype)  # noqa: E731
    else:
        p = PARAMS["truncated_normal"]
        lo, hi = (p["a"] - p["mean"]) / p["std"], (p["b"] - p["mean"]) / p["std"]
        make = lambda k: p["mean"] + p["std"] * jax.random.truncated_normal(k, lo, hi, (n,), dtype)  # noqa: E731
    key = jax.device_put(jax.random.key(0), device)
    fn = jax.jit(make)

    def op():
        fn(key).block_until_ready()

    op.settle = JAX_SETTLE
    return op


def _import_or_none(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def _numpy_dtype(dtype: str):
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def backend(device: str = "cpu"):
    """The object that makes buffers and operations for ``device`` ("cpu", "cuda", "cuda:N").

    Raises ValueError (naming the device) when the device cannot run: no GPU, no CUDA backend.
    """
    if device_name(device) == "cpu":
        return _CPU()
    return _CUDA(device)


def installed_peers(device: str = "cpu") -> tuple[str, ...]:
    """The peers whose package imports here (cupy only on a GPU)."""
    found = []
    for name in PEERS:
        if name == "cupy" and device == "cpu":
            continue
        if name != "numpy" and not _module_exists(name):
            continue
        found.append(name)
    return tuple(found)


def _module_exists(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# ---- timing -----------------------------------------------------------------------------------


@dataclass
class CaseResult:
    """The timings of one case: per operation, the per-call seconds of every round."""

    case: Case
    n: int
    times: dict[str, list[float]]  # "fill", "fastinit", and each peer that ran
    iterations: dict[str, int] = field(default_factory=dict)
    warmup: dict[str, float] = field(default_factory=dict)  # seconds of the untimed first call
    unavailable: list[str] = field(default_factory=list)  # peers with no such operation / dtype

    def seconds(self, op: str = FASTINIT) -> float:
        return statistics.median(self.times[op])

    def mvalues(self, op: str = FASTINIT) -> float:
        """Million values per second (median time)."""
        return self.n / self.seconds(op) / 1e6

    def gbps(self, op: str = FASTINIT) -> float:
        """GB/s written (1 GB = 1e9 bytes, the output dtype's bytes)."""
        return self.n * self.case.itemsize / self.seconds(op) / 1e9

    def ratio(self, slower: str, faster: str = FASTINIT) -> float:
        """Median over rounds of time(slower) / time(faster) taken in the same round."""
        return statistics.median(s / f for s, f in zip(self.times[slower], self.times[faster], strict=True))

    @property
    def fill_fraction(self) -> float:
        """fastinit's speed as a fraction of the plain fill's (1.0 = as fast as writing 1.0s)."""
        return self.ratio(FILL)

    def speedup(self, peer: str) -> float | None:
        """How many times faster fastinit is than ``peer`` (None: the peer did not run)."""
        return self.ratio(peer) if peer in self.times else None


@dataclass
class BenchResult:
    """Everything one ``run`` measured, and the machine it ran on."""

    device: str
    size: int
    rounds: int
    peers: tuple[str, ...]
    machine: dict
    cases: list[CaseResult]
    date: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict:
        """The raw numbers: per case and operation, every round's per-call seconds, and the
        derived medians."""
        rows = []
        for r in self.cases:
            ops = {}
            for op, times in r.times.items():
                ops[op] = {
                    "seconds": times,
                    "iterations": r.iterations.get(op, 1),
                    "warmup_seconds": r.warmup.get(op),
                    "median_seconds": r.seconds(op),
                    "mvalues_per_s": r.mvalues(op),
                    "gb_per_s": r.gbps(op),
                }
            rows.append({
                "sampler": r.case.sampler,
                "dtype": r.case.dtype,
                "params": PARAMS[r.case.sampler],
                "n": r.n,
                "itemsize": r.case.itemsize,
                "operations": ops,
                "fill_fraction": r.fill_fraction,
                "speedup": {p: r.speedup(p) for p in self.peers if p in r.times},
                "unavailable": r.unavailable,
            })  # fmt: skip
        return {
            "fastinit_bench": 1,
            "date": self.date,
            "device": self.device,
            "size": self.size,
            "rounds": self.rounds,
            "peers": list(self.peers),
            "machine": self.machine,
            "seconds": self.seconds,
            "cases": rows,
        }

    def table(self) -> str:
        """The one table ``fastinit bench`` prints (machine first, then a row per case)."""
        m = self.machine
        lines = [
            f"machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), numba threads "
            f"{m['numba_threads']}, GPU: {m['gpu'] or 'none'}",
            f"device {self.device}, n = {_count_text(self.size)} values per call, {self.rounds} interleaved "
            f"rounds, medians; {self.date}",
            "",
        ]
        head = ["operation", "M values/s", "GB/s", "fill GB/s", "x fill"] + [f"vs {p}" for p in self.peers]
        rows = []
        for r in self.cases:
            row = [
                r.case.label,
                _fmt(r.mvalues(), 0),
                _fmt(r.gbps()),
                _fmt(r.gbps(FILL)),
                _fmt(r.fill_fraction),
            ]
            for p in self.peers:
                s = r.speedup(p)
                row.append("-" if s is None else f"{_fmt(s, 1)} x")
            rows.append(row)
        lines += format_rows(head, rows)
        notes = ("x fill: fastinit's speed / a plain fill of the same buffer (the write-bandwidth ceiling). "
                 "vs PEER: how many times faster fastinit is than the peer at the same distribution and dtype "
                 "(-: the peer has no such sampler or dtype). " + _peer_notes(self.peers))  # fmt: skip
        lines += [""] + textwrap.wrap(notes, 100)
        return "\n".join(lines)


def _fmt(v: float, decimals: int = 2) -> str:
    """Fixed decimals, or 2 significant digits for values too small to show that way."""
    if v != 0 and abs(v) < 10.0 ** (1 - decimals):
        return f"{v:.2g}"
    return f"{v:,.{decimals}f}"


def _peer_notes(peers) -> str:
    notes = {
        "numpy": "numpy: Generator(PCG64).random/standard_normal(out=)",
        "torch": "torch: uniform_/normal_/nn.init.trunc_normal_ in place",
        "jax": "jax: jax.random, jit, block_until_ready (allocates its result)",
        "cupy": "cupy: default_rng().random/standard_normal(out=)",
    }
    text = "; ".join(notes[p] for p in peers)
    return (text + "." if text else "No peers timed.") + " truncated normal: std 0.02 cut at +-0.04."


def format_rows(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Aligned text rows under a header (first column left, the others right), as every table
    of ``fastinit bench`` and the benchmark suite prints them.

    >>> print("\\n".join(format_rows(["op", "s"], [["fill", "0.01"], ["fastinit", "0.1"]])))
    op          s
    --------  ----
    fill      0.01
    fastinit   0.1
    """
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    out = []
    for i, row in enumerate([head] + rows):
        cells = [
            str(c).ljust(w) if j == 0 else str(c).rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _count_text(n: int) -> str:
    k = n.bit_length() - 1
    return f"2**{k}" if n == 1 << k else f"{n:,}"


def _time_once(fn: Callable[[], object], iterations: int, sync: Callable[[], None], timer) -> float:
    sync()
    t0 = timer()
    for _ in range(iterations):
        fn()
    sync()
    return (timer() - t0) / iterations


def _iterations(seconds: float, min_time: float) -> int:
    if min_time <= 0:
        return 1
    return max(1, min(10_000, math.ceil(min_time / max(seconds, 1e-7))))


def time_interleaved(ops: dict[str, Callable[[], object]], rounds: int, *, sync=lambda: None,
                     min_time: float = 0.01, timer=time.perf_counter, sleep=time.sleep,
                     warmup: bool = True):  # fmt: skip
    """Time every operation once per round, rotating the order; per-call seconds per round.

    Each operation is called once first (untimed: compile / cache load / page faults); its
    iterations per timing are chosen from that call so one timing lasts at least ``min_time``.
    ``warmup=False`` skips that call (for operations of many seconds, each timed once per round).
    An operation with a ``settle`` attribute (seconds) is followed by that untimed pause, so the
    threads it leaves spinning do not slow the next operation (``sleep`` makes the pause).
    Returns (times {op: [seconds per call, one per round]}, iterations, warm-up seconds).

    >>> calls = []
    >>> times, iters, _ = time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
    ...                                    rounds=2, min_time=0)
    >>> calls, sorted(times), len(times["a"])
    (['a', 'b', 'a', 'b', 'b', 'a'], ['a', 'b'], 2)
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds={rounds!r} must be an int >= 1")
    names = list(ops)
    warmups, iterations = {}, {}
    settle = {name: float(getattr(ops[name], "settle", 0.0)) for name in names}
    for name in names:
        if not warmup:
            warmups[name], iterations[name] = 0.0, 1
            continue
        warmups[name] = _time_once(ops[name], 1, sync, timer)
        iterations[name] = _iterations(warmups[name], min_time)
        if iterations[name] > 1:  # the first call may have been slow (compile, faults): measure again
            iterations[name] = _iterations(_time_once(ops[name], 1, sync, timer), min_time)
        if settle[name]:
            sleep(settle[name])
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(_time_once(ops[name], iterations[name], sync, timer))
            if settle[name]:
                sleep(settle[name])
    return times, iterations, warmups


def run(case_list: Sequence[Case], *, size: int = FULL["size"], rounds: int = FULL["rounds"], device: str = "cpu",
        peers: Sequence[str] | None = None, min_time: float = 0.01, progress=None) -> BenchResult:  # fmt: skip
    """Time fastinit, the fill ceiling and the peers on every case, interleaved (module docstring).

    ``peers``: names from ``PEERS`` (None: every installed one; a peer that is not installed
    raises ImportError naming it). ``progress``: called with a line of text before each case.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size={size!r} must be an int >= 1")
    be = backend(device)
    memory = physical_memory() if be.name == "cpu" else None
    need = size * max((case.itemsize for case in case_list), default=0)
    if memory is not None and need > memory:  # (faulting the pages in would end in the OOM killer)
        raise MemoryError(f"size={size}: a buffer needs {need} bytes, more than this machine has ({memory})")
    peers = installed_peers(be.name) if peers is None else tuple(peers)
    for p in peers:
        if p not in PEERS:
            raise ValueError(f"unknown peer {p!r}; peers: {', '.join(PEERS)}")
        if p != "numpy" and not _module_exists(p):
            raise ImportError(f"peer {p!r} is not installed (pip install {p})")
    started = time.perf_counter()
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    results = []
    for i, case in enumerate(case_list):
        if progress is not None:
            progress(f"[{i + 1}/{len(case_list)}] {case.label}")
        buf = be.buffer(case, size)
        if buf is None:
            continue
        ops = {FILL: be.fill(buf), FASTINIT: be.fastinit(case, buf)}
        unavailable = []
        for p in peers:
            op = be.peer(p, case, buf)
            if op is None:
                unavailable.append(p)
            else:
                ops[p] = op
        times, iterations, warmup = time_interleaved(ops, rounds, sync=be.sync, min_time=min_time)
        results.append(CaseResult(case, size, times, iterations, warmup, unavailable))
        del ops, buf
    return BenchResult(be.device, size, rounds, tuple(peers), machine_info(be.device), results, date,
                       time.perf_counter() - started)  # fmt: skip


# ---- the machine ------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


_SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16", "asimd", "sve")


def _simd() -> list[str]:
    """The vector extensions that decide what the kernels compile to (Numba targets the host)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(
                (line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), []
            )
    except OSError:
        return []
    return [flag for flag in _SIMD_FLAGS if flag in flags]


def _gpus() -> str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ""
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return "; ".join(line.strip() for line in out.splitlines() if line.strip())


def machine_info(device: str = "cpu") -> dict:
    """CPU model, core counts, Numba's thread count, GPUs (nvidia-smi), package versions.

    >>> sorted(machine_info())[:4]
    ['cores', 'cpu', 'device', 'gpu']
    >>> isinstance(machine_info()["simd"], list)
    True
    """
    import numba

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    for name in ("fastinit", "torch", "jax", "cupy"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return {
        "cpu": _cpu_model(),
        "simd": _simd(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "numba_threads": numba.get_num_threads(),
        # a shared machine's figures swing with its load: recorded with them
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "gpu": _gpus(),
        "device": device,
        "platform": platform.platform(),
        "versions": versions,
    }


# ---- command-line helpers ---------------------------------------------------------------------


def parse_count(text) -> int:
    """A positive element count: ``67108864``, ``2**26``, ``64M`` / ``1G`` (binary), ``1e6``.

    >>> parse_count("2**20"), parse_count("4M"), parse_count("1e6"), parse_count(5)
    (1048576, 4194304, 1000000, 5)
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        s = str(text).strip().replace("_", "").replace(",", "")
        try:
            if "**" in s:
                base, _, exp = s.partition("**")
                base, exp = int(base), int(exp)
                # refused below without computing the power: 10**999999999 takes minutes
                value = MAX_COUNT + 1 if abs(base) > 1 and exp * math.log2(abs(base)) > 64 else base**exp
            elif s[-1:].upper() in "KMG" and s[:-1].isdigit():
                value = int(s[:-1]) << {"K": 10, "M": 20, "G": 30}[s[-1].upper()]
            elif "e" in s.lower():
                f = float(s)
                value = int(f) if f == int(f) else -1
            else:
                value = int(s)
        except (ValueError, OverflowError, ZeroDivisionError):
            raise ValueError(f"{text!r} is not a count (use e.g. 67108864, 2**26, 64M or 1e6)") from None
    if value < 1:
        raise ValueError(f"{text!r} must be >= 1")
    if value > MAX_COUNT:
        raise ValueError(f"{text!r} is more than {MAX_COUNT} (2**60)")
    return value


def physical_memory() -> int | None:
    """Bytes of RAM of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def plot(result: BenchResult, path) -> dict[str, list[float]]:
    """A bar chart of M values/s per case: fastinit, the fill ceiling and each peer (log scale).

    Returns the bar heights drawn, {operation: [M values/s per case]} (0: the peer did not run)."""
    from matplotlib.figure import Figure  # the Agg canvas, without pyplot's global state

    labels = [r.case.label for r in result.cases]
    series = [(FASTINIT, "fastinit"), (FILL, "plain fill (ceiling)")] + [(p, p) for p in result.peers]
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    bars = {}
    fig = Figure(figsize=(max(6.0, 1.3 * len(labels) + 2), 4.8))
    ax = fig.subplots()
    for k, (op, name) in enumerate(series):
        values = [r.mvalues(op) if op in r.times else 0.0 for r in result.cases]
        bars[op] = values
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_xlabel("operation (sampler, dtype)")
    ax.set_ylabel("M values / s (higher is better)")
    m = result.machine
    ax.set_title(f"fastinit bench, n = {_count_text(result.size)}, {result.device}: {m['cpu']}, "
                 f"{m['usable_cores']} cores", fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=120)
    return bars


def write_json(result: BenchResult, path) -> None:
    with open(os.fspath(path), "w") as f:
        json.dump(result.to_json(), f, indent=1)
        f.write("\n")
