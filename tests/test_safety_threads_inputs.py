"""Issue #14 items 6 and 18: concurrent callers under every Numba threading layer, and inputs
that must be refused with a one-line error naming the argument.

The thread tests run in fresh processes because the threading layer is chosen once per process
(at the first parallel launch) and the ``workqueue`` layer aborts the whole process, rather than
raising, when two threads launch parallel kernels at the same time.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastinit
from fastinit.array import FastArray
from fastinit.dtypes import resolve_dtype

REPO = pathlib.Path(__file__).resolve().parents[1]

# Several Python threads call every kind of parallel launch at once (the fill kernels' run and
# strided forms, the low-precision conversion, a custom scheme's element-wise kernel, a Dask
# array on the threaded scheduler); every result must equal the single-threaded call's bytes.
CONCURRENT = textwrap.dedent(
    """
    import sys, threading
    import dask
    import numba
    import numpy as np
    import fastinit, fastinit.dask
    from fastinit.backends import cpu

    def halve(w):
        return w * 0.5

    halved = fastinit.custom(halve, draw="normal")

    CALLS = [
        lambda: fastinit.uniform((256, 257), -1.0, 2.0, seed=1, name="u"),
        lambda: fastinit.normal((300, 301), 0.0, 0.5, seed=2, name="n", dtype="bfloat16"),
        lambda: fastinit.normal((64, 65), seed=2, name="n", index=(slice(None, None, 2), 3)),
        lambda: fastinit.truncated_normal((200, 203), 0.0, 1.0, -2.0, 2.0, seed=3, name="t", dtype="float64"),
        lambda: halved((128, 129), seed=4, name="c"),
        lambda: fastinit.orthogonal((64, 32), seed=5, name="o", dtype="float16"),
        lambda: fastinit.dask.normal((256, 256), chunks=(64, 64), seed=6, name="d").compute(scheduler="threads"),
    ]

    def raw(x):
        x = getattr(x, "raw", x)
        return np.ascontiguousarray(x).tobytes()

    expected = [raw(call()) for call in CALLS]  # single-threaded reference (and compilation)
    failures = []

    def worker(k):
        for r in range(12):
            j = (k + r) % len(CALLS)
            if raw(CALLS[j]()) != expected[j]:
                failures.append(j)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(numba.threading_layer(), "serialized", cpu.launches_serialized(), "failures", sorted(set(failures)))
    sys.exit(1 if failures else 0)
    """
)


def _run_concurrent(layer):
    env = dict(os.environ)
    env.pop("NUMBA_THREADING_LAYER", None)
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    return subprocess.run([sys.executable, "-c", CONCURRENT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.mark.parametrize("layer", ["workqueue", None], ids=["workqueue", "default"])
def test_concurrent_threads_are_safe_and_exact(layer):
    done = _run_concurrent(layer)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "failures []" in done.stdout
    if layer is not None:
        assert done.stdout.startswith(layer)
    # concurrency is kept where the layer is thread-safe (omp, tbb)
    serialized = done.stdout.startswith("workqueue")
    assert f"serialized {serialized}" in done.stdout
