"""Distribution overhead: the Dask path with 2 worker processes vs one process, same bytes.

- checkpoint: TinyLlama-1.1B shapes in bfloat16 (2.2 GB, 500 MB shards so there are 5 files
  to spread), ``fastinit.checkpoint.write_checkpoint`` in one process (2 Numba threads) vs
  ``fastinit.dask.write_checkpoint`` on a ``LocalCluster`` of 2 worker processes with 1 thread
  each (one shard file per task);
- zarr: a 16384 x 16384 float32 normal (1 GiB, 8 chunks of 4096 x 8192) written with
  ``to_zarr`` by the same cluster vs Dask's threaded scheduler (2 threads) in this process.

Both sides run in alternating rounds (best of each kept), so they see the same machine state;
the cluster's start-up is timed separately. The files' sha256 are compared, so a figure is
only recorded for identical bytes.

    python -m pytest benchmarks/test_dask.py -o addopts="" -s
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time

import numpy as np
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import fastinit.dask as fdask  # noqa: E402
from fastinit import checkpoint as ck  # noqa: E402

BENCH_DIR = os.environ.get("FASTINIT_BENCH_DIR") or None
ROUNDS = int(os.environ.get("FASTINIT_BENCH_DASK_ROUNDS", 3))


def _sha256_tree(directory: str) -> dict[str, str]:
    digests = {}
    for root, _, files in os.walk(directory):
        for name in sorted(files):
            path = os.path.join(root, name)
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 24), b""):
                    h.update(block)
            digests[os.path.relpath(path, directory)] = h.hexdigest()
    return digests


@pytest.fixture(scope="module")
def cluster():
    started = time.perf_counter()
    # 2 processes x 1 thread, each worker's Numba on 1 thread: the same 2 cores as one process
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"NUMBA_NUM_THREADS": "1"}) as lc, distributed.Client(lc) as client:  # fmt: skip
        client.run(lambda: __import__("fastinit.checkpoint"))  # import (and load kernels) once per worker
        startup = time.perf_counter() - started
        print(f"\nLocalCluster(2 processes x 1 thread) start-up and imports: {startup:.1f} s")
        yield client


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="fastinit-bench-dask-", dir=BENCH_DIR)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_checkpoint_two_worker_processes_vs_one_process(record, cluster, workdir):
    m = ck.manifest_from_config(ck.preset_config("tinyllama-1.1b"), dtype="bfloat16")
    one, two = os.path.join(workdir, "one"), os.path.join(workdir, "two")

    def single():
        shutil.rmtree(one, ignore_errors=True)
        ck.write_checkpoint(m, one, seed=0, max_shard_size="500MB")

    def on_cluster():
        shutil.rmtree(two, ignore_errors=True)
        fdask.write_checkpoint(m, two, client=cluster, seed=0, max_shard_size="500MB")

    single()  # warm-up (kernels, page cache)
    on_cluster()
    assert _sha256_tree(one) == _sha256_tree(two)
    row = record("dask: checkpoint TinyLlama bf16 (2.2 GB, 5 shards), floor: one process",
                 "2 worker processes", on_cluster, m.numel, 2, rounds=ROUNDS, fill=single, warmup=False)  # fmt: skip
    assert _sha256_tree(one) == _sha256_tree(two)
    t_two = row.seconds
    t_one = t_two * row.floor_ratio
    print(f"\ncheckpoint: one process {t_one:.2f} s, 2 worker processes {t_two:.2f} s "
          f"({m.nbytes / t_two / 1e9:.2f} GB/s): {t_two / t_one:.2f} x; sha256 identical")  # fmt: skip


def test_zarr_two_worker_processes_vs_one_process(record, cluster, workdir):
    pytest.importorskip("zarr")
    shape, chunks = (16384, 16384), (4096, 8192)
    one, two = os.path.join(workdir, "one.zarr"), os.path.join(workdir, "two.zarr")

    def write(path, **compute):
        shutil.rmtree(path, ignore_errors=True)
        x = fdask.normal(shape, 0.0, 0.02, chunks=chunks, seed=0, name="w")
        x.to_zarr(path, compute=False).compute(**compute)

    def single():
        write(one, scheduler="threads", num_workers=2)

    def on_cluster():
        write(two)  # the cluster's client is the default scheduler while it is open

    single()
    on_cluster()
    row = record("dask: to_zarr normal 16384 x 16384 float32 (1 GiB, 8 chunks), floor: one process",
                 "2 worker processes", on_cluster, int(np.prod(shape)), 4, rounds=ROUNDS, fill=single,
                 warmup=False)  # fmt: skip
    t_two = row.seconds
    t_one = t_two * row.floor_ratio
    import zarr

    a, b = zarr.open_array(one, mode="r"), zarr.open_array(two, mode="r")
    assert np.array_equal(a[:], b[:])
    nbytes = np.prod(shape) * 4
    print(f"\nzarr: one process {t_one:.2f} s, 2 worker processes {t_two:.2f} s "
          f"({nbytes / t_two / 1e9:.2f} GB/s): {t_two / t_one:.2f} x; values identical")  # fmt: skip
