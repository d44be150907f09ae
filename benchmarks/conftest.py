"""The benchmark suite's driver: every figure is timed by ``fastinit.benchmark``.

Run:  python -m pytest benchmarks/ -o addopts="" [-k normal] [-s]
      (FASTINIT_BENCH_REPORT=FILE also writes the tables to FILE)
Size: FASTINIT_BENCH_N (default 2**26 values).

There is one timing engine, ``fastinit.benchmark`` (what ``fastinit bench`` runs):
``test_suite.py`` calls its ``run`` for the samplers against the fill ceiling and the peers,
and the ``record`` fixture below times everything else with its ``time_interleaved``: the
operation and, where it has one, its floor (a plain fill of the same buffer, the writer writing
constant bytes, one process instead of two) in alternating rounds, medians over rounds. These
machines are shared and noisy: read the ratios (``x floor``: floor time / operation time, both
from the same rounds), not the absolute times. At the end one table per group is printed.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass

import pytest

from fastinit import benchmark as bm

N = int(os.environ.get("FASTINIT_BENCH_N", 2**26))


@dataclass
class Row:
    seconds: float  # median per call
    nvalues: int
    itemsize: int
    floor_ratio: float | None  # median over rounds of floor time / this time


GROUPS: dict[str, dict[str, Row]] = {}
SUITE: list[bm.BenchResult] = []  # test_suite.py's runs


@pytest.fixture(scope="session")
def n():
    return N


@pytest.fixture(scope="session")
def suite_results():
    """Where test_suite.py leaves each ``fastinit.benchmark.run`` result for the summary."""
    return SUITE


@pytest.fixture
def record():
    """record(group, label, fn, nvalues, itemsize, rounds=5, fill=None, warmup=True): time fn
    (and, interleaved with it, its floor ``fill``) with ``fastinit.benchmark.time_interleaved``;
    returns the Row. ``warmup=False`` for operations of many seconds (no untimed first call)."""

    def run(group, label, fn, nvalues, itemsize, rounds=5, fill=None, warmup=True) -> Row:
        ops = {"op": fn} if fill is None else {"op": fn, "floor": fill}
        times, _, _ = bm.time_interleaved(ops, rounds, warmup=warmup)
        ratio = None
        if fill is not None:
            ratio = statistics.median(f / t for f, t in zip(times["floor"], times["op"], strict=True))
        row = Row(statistics.median(times["op"]), nvalues, itemsize, ratio)
        GROUPS.setdefault(group, {})[label] = row
        return row

    return run


def _group_table(group: str, rows: dict[str, Row]) -> list[str]:
    head = ["operation", "seconds", "M values/s", "GB/s", "x floor"]
    body = [
        [label, f"{r.seconds:.4g}", f"{r.nvalues / r.seconds / 1e6:,.0f}", f"{r.nvalues * r.itemsize / r.seconds / 1e9:.2f}",
         "-" if r.floor_ratio is None else f"{r.floor_ratio:.3g}"]
        for label, r in sorted(rows.items(), key=lambda kv: kv[1].seconds)
    ]  # fmt: skip
    lines = [f"[{group}]"] + ["  " + line for line in bm.format_rows(head, body)]
    ours = {k: r for k, r in rows.items() if k.startswith("fastinit")}
    for label, mine in ours.items():
        for other, r in rows.items():
            if not other.startswith("fastinit"):
                lines.append(f"  {label}: {r.seconds / mine.seconds:.2f} x the speed of {other}")
    return lines


def _suite_tables() -> list[str]:
    """test_suite.py's results, one ``fastinit bench`` table per device and size."""
    merged: dict[tuple, bm.BenchResult] = {}
    for result in SUITE:
        key = (result.device, result.size)
        if key not in merged:
            merged[key] = bm.BenchResult(result.device, result.size, result.rounds, result.peers, result.machine, [],
                                         result.date)  # fmt: skip
        merged[key].cases.extend(result.cases)
    return [line for result in merged.values() for line in [result.table(), ""]]


def pytest_terminal_summary(terminalreporter):
    if not GROUPS and not SUITE:
        return
    machine = bm.machine_info("cpu")
    lines = [
        f"machine: {machine['cpu']}, {machine['cores']} cores, numba threads {machine['numba_threads']}",
        "",
    ]
    lines += _suite_tables()
    for group, rows in GROUPS.items():
        lines += _group_table(group, rows) + [""]
    terminalreporter.section("fastinit benchmarks (medians of interleaved rounds)")
    for line in lines:
        terminalreporter.write_line(line)
    report = os.environ.get("FASTINIT_BENCH_REPORT")
    if report:
        with open(report, "w") as f:
            f.write("\n".join(lines) + "\n")
