"""Shared fixtures for the benchmarks, and the ratio table printed after a run.

Run:  python -m pytest benchmarks/ --benchmark-only [-k normal] [--benchmark-json=FILE]
      (FASTINIT_BENCH_REPORT=FILE also writes the ratio table to FILE)
Size: FASTINIT_BENCH_N (default 2**26 float32 values = 256 MiB).

Every benchmark records its best time under a (group, label) key; at the end the summary
prints, per group, M values/s, GB/s, the fraction of the plain fill of the same buffer
(timed in the same run) and the speed-up over each peer. These machines are shared and
noisy: read the ratios, not the absolute times.
"""

from __future__ import annotations

import os
import platform
import time

import numba
import numpy as np
import pytest

N = int(os.environ.get("FASTINIT_BENCH_N", 2**26))
RESULTS: dict[tuple[str, str], tuple[float, int, int]] = {}
# (group, label) -> fill time / op time, from alternating rounds of the two (see record)
INTERLEAVED: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="session")
def n():
    return N


@pytest.fixture(scope="session")
def touched_f32(n):
    buf = np.empty(n, np.float32)
    buf.fill(0.0)
    return buf


@pytest.fixture(scope="session")
def touched_u16(n):
    buf = np.empty(n, np.uint16)
    buf.fill(0)
    return buf


@pytest.fixture
def record(benchmark):
    """record(group, label, fn, nvalues, itemsize, fill=None): benchmark fn, keep its best time.

    With ``fill`` (the plain fill of the same buffer), also time fn and fill in alternating
    rounds and keep best(fill) / best(fn): both see the same machine state, so this ratio is
    much steadier than one taken from two separate benchmarks on a shared machine.
    """

    def run(group, label, fn, nvalues, itemsize, rounds=5, fill=None, warmup=True):
        if warmup:
            fn()  # warm up: compile / load kernels, fault pages in
        benchmark.group = group
        benchmark.name = label
        benchmark.extra_info.update(label=label, nvalues=nvalues, itemsize=itemsize)
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
        RESULTS[(group, label)] = (benchmark.stats.stats.min, nvalues, itemsize)
        if fill is not None:
            t_fn, t_fill = float("inf"), float("inf")
            for _ in range(rounds):
                t_fn = min(t_fn, _timed(fn))
                t_fill = min(t_fill, _timed(fill))
            INTERLEAVED[(group, label)] = t_fill / t_fn
            benchmark.extra_info["fill_ratio_interleaved"] = t_fill / t_fn

    return run


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    lines = _ratio_table()
    terminalreporter.section("fastinit ratios (best of rounds)")
    for line in lines:
        terminalreporter.write_line(line)
    report = os.environ.get("FASTINIT_BENCH_REPORT")
    if report:
        with open(report, "w") as f:
            f.write("\n".join(lines) + "\n")


def _ratio_table() -> list[str]:
    out = [f"machine: {_cpu_name()}, {os.cpu_count()} cores, numba threads {numba.get_num_threads()}"]
    groups = sorted({g for g, _ in RESULTS})
    for group in groups:
        rows = {label: v for (g, label), v in RESULTS.items() if g == group}
        fill = rows.get("plain fill (numpy .fill)")
        ours = {k: v for k, v in rows.items() if k.startswith("fastinit")}
        out.append(f"\n[{group}]")
        out.append(
            f"  {'operation':42s} {'M values/s':>11s} {'GB/s':>7s} {'x fill':>7s} {'x fill (interleaved)':>21s}"
        )
        for label, (t, nv, size) in sorted(rows.items(), key=lambda kv: kv[1][0]):
            frac = f"{fill[0] / t:7.2f}" if fill else "      -"
            inter = INTERLEAVED.get((group, label))
            inter = f"{inter:21.2f}" if inter is not None else " " * 21
            out.append(f"  {label:42s} {nv / t / 1e6:11.0f} {nv * size / t / 1e9:7.2f} {frac} {inter}")
        for ours_label, (t_ours, _, _) in ours.items():
            for label, (t, _, _) in rows.items():
                if not label.startswith("fastinit") and "fill" not in label:
                    out.append(f"  {ours_label}: {t / t_ours:.2f} x the speed of {label}")
    return out
