"""Shared fixtures for the benchmarks, and the ratio table printed after a run.

Run:  python -m pytest benchmarks/ --benchmark-only [-k normal] [--benchmark-json=FILE]
Size: FASTINIT_BENCH_N (default 2**26 float32 values = 256 MiB).

Every benchmark records its best time under a (group, label) key; at the end the summary
prints, per group, M values/s, GB/s, the fraction of the plain fill of the same buffer
(timed in the same run) and the speed-up over each peer. These machines are shared and
noisy: read the ratios, not the absolute times.
"""

from __future__ import annotations

import os
import platform

import numba
import numpy as np
import pytest

N = int(os.environ.get("FASTINIT_BENCH_N", 2**26))
RESULTS: dict[tuple[str, str], tuple[float, int, int]] = {}


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
    """record(group, label, fn, nvalues, itemsize): benchmark fn and keep its best time."""

    def run(group, label, fn, nvalues, itemsize, rounds=5):
        fn()  # warm up: compile / load kernels, fault pages in
        benchmark.group = group
        benchmark.name = label
        benchmark.extra_info.update(label=label, nvalues=nvalues, itemsize=itemsize)
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
        RESULTS[(group, label)] = (benchmark.stats.stats.min, nvalues, itemsize)

    return run


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
    tr = terminalreporter
    tr.section("fastinit ratios (best of rounds)")
    tr.write_line(f"machine: {_cpu_name()}, {os.cpu_count()} cores, numba threads {numba.get_num_threads()}")
    groups = sorted({g for g, _ in RESULTS})
    for group in groups:
        rows = {label: v for (g, label), v in RESULTS.items() if g == group}
        fill = rows.get("plain fill (numpy .fill)")
        ours = {k: v for k, v in rows.items() if k.startswith("fastinit")}
        tr.write_line(f"\n[{group}]")
        tr.write_line(f"  {'operation':42s} {'M values/s':>11s} {'GB/s':>7s} {'x fill':>7s}")
        for label, (t, nv, size) in sorted(rows.items(), key=lambda kv: kv[1][0]):
            frac = f"{fill[0] / t:7.2f}" if fill else "      -"
            tr.write_line(f"  {label:42s} {nv / t / 1e6:11.0f} {nv * size / t / 1e9:7.2f} {frac}")
        for ours_label, (t_ours, _, _) in ours.items():
            for label, (t, _, _) in rows.items():
                if not label.startswith("fastinit") and "fill" not in label:
                    tr.write_line(f"  {ours_label} vs {label}: {t / t_ours:.1f} x faster")
