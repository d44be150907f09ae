"""fastinit.dask: any chunking, scheduler or cluster computes to the single-machine bytes."""

import hashlib
import os

import numpy as np
import pytest

import fastinit
import fastinit.checkpoint as ck

dask = pytest.importorskip("dask")
fd = pytest.importorskip("fastinit.dask")

CASES = [
    ("normal", fastinit.normal, (0.0, 0.02), {}),
    ("uniform", fastinit.uniform, (-1.0, 1.0), {}),
    ("truncated_normal", fastinit.truncated_normal, (0.0, 0.02, -0.04, 0.04), {}),
    ("kaiming_uniform", fastinit.kaiming_uniform, (), {"nonlinearity": "relu"}),
    ("xavier_normal", fastinit.xavier_normal, (), {}),
    ("variance_scaling", fastinit.variance_scaling, (2.0, "fan_avg", "truncated_normal"), {}),
    ("sparse", fastinit.sparse, (0.3,), {}),
    ("dirac", fastinit.dirac, (), {}),
]
CHUNKINGS = [(30, 25), (1, 60), (100, 7), "auto", ((10, 90), (59, 1))]


def _bits(x):
    return np.asarray(x).view(np.uint8).tobytes()


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
@pytest.mark.parametrize("label,fn,args,params", CASES, ids=[c[0] for c in CASES])
def test_any_chunking_computes_the_single_machine_bytes(label, fn, args, params, chunks):
    shape = (100, 60) if label != "dirac" else (100, 60, 3)
    if label == "dirac" and not isinstance(chunks, str):
        chunks = chunks + ((3,),) if isinstance(chunks[0], tuple) else chunks + (3,)
    x = getattr(fd, label)(shape, *args, chunks=chunks, seed=7, name=label, **params)
    expected = fn(shape, *args, seed=7, name=label, **params)
    assert x.shape == shape and x.dtype == np.float32
    assert _bits(x.compute()) == expected.tobytes()


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_dtypes(dtype):
    x = fd.normal((64, 33), 0.0, 1.0, chunks=(20, 11), seed=1, name="d", dtype=dtype)
    assert (
        x.compute().tobytes() == fastinit.normal((64, 33), 0.0, 1.0, seed=1, name="d", dtype=dtype).tobytes()
    )


def test_orthogonal_refuses_chunks_that_split_a_matrix():
    with pytest.raises(ValueError, match="orthogonal needs whole matrices"):
        fd.orthogonal((64, 32), chunks=(16, 32))
    batched = fd.orthogonal((5, 16, 8), batch_dims=1, chunks=(2, 16, 8), seed=3, name="q")
    assert (
        batched.compute().tobytes()
        == fastinit.orthogonal((5, 16, 8), batch_dims=1, seed=3, name="q").tobytes()
    )


def test_delta_orthogonal_refuses_chunks_that_split_its_matrix():
    """Only the spatial dimensions may be chunked: a chunk of the (in, out) matrix would factor
    the whole matrix again (the refusal docs/schemes.md promises)."""
    for chunks in ((3, 3, 8, 32), (3, 3, 16, 16)):
        with pytest.raises(ValueError, match=r"delta_orthogonal needs whole matrices.*first 2 dimension"):
            fd.delta_orthogonal((3, 3, 16, 32), chunks=chunks)
    with pytest.raises(ValueError, match="delta_orthogonal needs whole matrices"):
        fd.array(fastinit.get_initializer("delta_orthogonal"), (3, 16, 32), chunks=(1, 16, 16))
    spatial = fd.delta_orthogonal((3, 3, 16, 32), 1.5, chunks=(1, 2, 16, 32), seed=3, name="k")
    assert (
        spatial.compute().tobytes()
        == fastinit.delta_orthogonal((3, 3, 16, 32), 1.5, seed=3, name="k").tobytes()
    )


def test_every_scheme_that_factors_matrices_says_which_axes():
    """A scheme whose prediction names matrices that must be orthogonal factors them with a QR:
    its record declares those axes, so that Dask refuses chunks that split them."""
    for name, record in fastinit.schemes.registry.RECORDS.items():
        shape = (3, 3, 4, 6)
        try:
            prediction = record.predict(record.arguments(shape, {}))
        except (TypeError, ValueError):
            continue  # (a scheme that needs parameters or another shape factors nothing here)
        if prediction.matrices is not None:
            assert record.factored_axes is not None, name


def test_different_names_differ_and_graph_is_deterministic():
    a = fd.normal((10, 10), chunks=5, seed=0, name="a")
    b = fd.normal((10, 10), chunks=5, seed=0, name="b")
    assert a.name != b.name and a.name == fd.normal((10, 10), chunks=5, seed=0, name="a").name
    assert not np.array_equal(a.compute(), b.compute())


def test_to_zarr_stores_the_same_bytes(tmp_path):
    zarr = pytest.importorskip("zarr")
    x = fd.normal((90, 70), 0.0, 0.02, chunks=(40, 30), seed=2, name="z")
    x.to_zarr(str(tmp_path / "w.zarr"))
    stored = zarr.open(str(tmp_path / "w.zarr"), mode="r")[...]
    assert stored.tobytes() == fastinit.normal((90, 70), 0.0, 0.02, seed=2, name="z").tobytes()


def _digests(directory):
    return {
        name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
        for name in sorted(os.listdir(directory))
    }


@pytest.mark.slow
def test_local_cluster_with_worker_processes(tmp_path):
    distributed = pytest.importorskip("distributed")
    config = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "dtype": "bfloat16"}  # fmt: skip
    manifest = ck.manifest_from_config(config)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        x = fd.kaiming_normal((256, 128), chunks=(64, 64), seed=4, name="k")
        assert (
            client.compute(x).result().tobytes()
            == fastinit.kaiming_normal((256, 128), seed=4, name="k").tobytes()
        )
        fd.write_checkpoint(manifest, tmp_path / "cluster", client=client, seed=9, max_shard_size="30KB")
    ck.write_checkpoint(manifest, tmp_path / "single", seed=9, max_shard_size="30KB")
    cluster_files, single_files = _digests(tmp_path / "cluster"), _digests(tmp_path / "single")
    assert len(single_files) > 3  # several shards, index, config
    assert cluster_files == single_files


def test_checkpoint_with_the_default_scheduler_matches(tmp_path):
    manifest = ck.manifest_from_json([{"name": f"w{i}", "shape": [64, 48], "init": {"scheme": "xavier_uniform"}}
                                      for i in range(5)])  # fmt: skip
    fd.write_checkpoint(manifest, tmp_path / "a", seed=1, max_shard_size="20KB")
    ck.write_checkpoint(manifest, tmp_path / "b", seed=1, max_shard_size="20KB")
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


def test_dask_checkpoint_has_one_owner_and_one_checkpoint(tmp_path):
    """The Dask writer follows the single-process writer's directory rules: another checkpoint in
    the directory is refused unless overwrite=True, and a directory another run holds is refused."""
    from fastinit.checkpoint import CheckpointError
    from fastinit.checkpoint.dirlock import DirectoryLock
    from fastinit.checkpoint.writer import checkpoint_fingerprint

    manifest = ck.manifest_from_json([{"name": f"w{i}", "shape": [40, 30], "init": {"scheme": "normal"}}
                                      for i in range(3)])  # fmt: skip
    ck.write_checkpoint(manifest, tmp_path, seed=1, max_shard_size="6KB")
    with pytest.raises(CheckpointError, match="another checkpoint"):
        fd.write_checkpoint(manifest, tmp_path, seed=2, max_shard_size="6KB")
    fd.write_checkpoint(manifest, tmp_path, seed=2, max_shard_size="6KB", overwrite=True)
    assert ck.verify_checkpoint(tmp_path).passed
    other = tmp_path / "held"
    ck.write_checkpoint(manifest, other, seed=2, max_shard_size="6KB")
    plans = ck.plan_shards(manifest, "6KB", 2)
    lock = DirectoryLock(str(other), (1, 1), checkpoint_fingerprint(manifest, plans)).acquire()
    try:
        with pytest.raises(CheckpointError):
            fd.write_checkpoint(manifest, other, seed=2, max_shard_size="6KB")
    finally:
        lock.release()
    assert not [e for e in os.listdir(other) if e.endswith(".fastinit-partial") or "lock" in e]


def test_an_initializer_of_orthogonal_refuses_chunks_that_split_a_matrix():
    """The refusal is the scheme's fact, not the function's identity: an Initializer gets it too."""
    init = fastinit.get_initializer("orthogonal")
    with pytest.raises(ValueError, match="orthogonal needs whole matrices"):
        fd.array(init, (64, 32), chunks=(16, 32))
    batched = fd.array(fastinit.get_initializer("orthogonal", batch_dims=1), (5, 16, 8), chunks=(2, 16, 8),
                       seed=3, name="q")  # fmt: skip
    assert (
        batched.compute().tobytes()
        == fastinit.orthogonal((5, 16, 8), batch_dims=1, seed=3, name="q").tobytes()
    )
    with pytest.raises(ValueError, match="orthogonal needs whole matrices"):  # batch_dims given positionally
        fd.array(fastinit.orthogonal, (4, 16, 8), 1.0, chunks=(4, 8, 8), batch_dims=1)
