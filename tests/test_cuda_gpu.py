"""The CUDA backend on a real NVIDIA GPU (marker ``cuda``; skipped without one, see conftest.py).

What the simulator cannot show: the GPU's own arithmetic giving the CPU's bytes at scale,
torch / CuPy / JAX taking the arrays zero-copy, out= on real CUDA tensors on their streams,
cuSOLVER's orthogonal. CI has no GPU; these passed (31 of 31)
on an NVIDIA H200 on 2026-12-04 through benchmarks/gpu_session.sh, before the dense kernels
took several runs and Philox its uint32 form (test_column_shards_... is newer: not yet run).
"""

import math
import pathlib
import re

import numpy as np
import pytest

import fastinit

pytestmark = pytest.mark.cuda

N_IDENTITY = 10**8  # the bit-identity figure
CHUNK = 1 << 24

SAMPLERS = {
    "uniform": lambda n, **k: fastinit.uniform(n, -1.0, 1.0, **k),
    "normal": lambda n, **k: fastinit.normal(n, 0.0, 0.02, **k),
    "truncnorm_central": lambda n, **k: fastinit.truncated_normal(n, 0.0, 0.02, -0.04, 0.04, **k),
    "truncnorm_tails": lambda n, **k: fastinit.truncated_normal(n, 0.0, 1.0, -5.0, 5.0, **k),
    "truncnorm_far": lambda n, **k: fastinit.truncated_normal(n, 0.0, 1.0, 12.0, 14.0, **k),
}


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in units in the last place (same-width float arrays, as integers on one line)."""
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[a.itemsize]
    ia, ib = (x.view(ints).astype(np.int64) for x in (a, b))
    ia = np.where(ia < 0, np.iinfo(ints).min - ia, ia)
    ib = np.where(ib < 0, np.iinfo(ints).min - ib, ib)
    return np.abs(ia - ib)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_bit_identity_with_the_cpu_at_1e8(sampler, dtype):
    n = N_IDENTITY // (4 if dtype == "float64" else 1)
    gpu = SAMPLERS[sampler](n, seed=11, name="identity", dtype=dtype, device="cuda").copy_to_host(raw=True)
    differing, worst = 0, 0
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        cpu = SAMPLERS[sampler](n, seed=11, name="identity", dtype=dtype, index=slice(start, stop)).raw
        bad = gpu[start:stop] != cpu
        if bad.any():
            differing += int(bad.sum())
            worst = max(worst, int(ulp_distance(gpu[start:stop][bad], cpu[bad]).max()))
    assert differing == 0, f"{differing} of {n} elements differ from the CPU, by up to {worst} ulp"


def test_launch_geometry_on_the_gpu():
    from fastinit.backends import cuda as backend

    expected = fastinit.normal(1 << 20, seed=1, name="g", device="cuda").tobytes()
    # (not 1024 threads per block: the kernels use ~100-124 registers per thread, and a block may
    # use 64K, so such a launch fails with CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES; see test_cuda_ptx)
    for geometry in [(1, 32), (7, 96), (1024, 384), (132, 256)]:
        with backend.fixed_geometry(*geometry):
            assert fastinit.normal(1 << 20, seed=1, name="g", device="cuda").tobytes() == expected


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_column_shards_and_runs_near_2_60_on_the_gpu(dtype):
    """Plans of several contiguous runs (a column shard: one run per row) in the dense kernels,
    and single runs whose Philox blocks sit near 2**60, give the CPU's bytes at several
    geometries; out= a column block of a wider array (rows 1000 apart) writes those elements
    only."""
    from fastinit.backends import cuda as backend

    cases = [
        ((3000, 8 * 700), (slice(None), slice(3 * 700, 4 * 700))),  # 700 values a row, mid-tile
        ((4, 2**40), (slice(1, 3), slice(2**20 + 5, 2**20 + 5 + 3000))),
        ((2**62,), (slice(2**62 - 5000, 2**62 - 13),)),
    ]
    for shape, index in cases:
        expected = fastinit.uniform(shape, -1.0, 1.0, index=index, seed=9, dtype=dtype).tobytes()
        for geometry in [None, (3, 64), (1, 32)]:
            with backend.fixed_geometry(*geometry) if geometry else _nothing():
                got = fastinit.uniform(shape, -1.0, 1.0, index=index, seed=9, dtype=dtype, device="cuda")
            assert got.tobytes() == expected, (shape, index, geometry)
    from numba import cuda

    base = cuda.to_device(np.full((3000, 1000), 7, np.float32))
    fastinit.normal((3000, 8 * 700), index=cases[0][1], seed=9, out=base[:, 200:900])
    host = base.copy_to_host()
    assert host[:, 200:900].tobytes() == fastinit.normal((3000, 8 * 700), index=cases[0][1], seed=9).tobytes()
    host[:, 200:900] = 7
    assert (host == 7).all()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---- torch ------------------------------------------------------------------------------------


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_torch_from_dlpack_is_zero_copy(torch, dtype):
    x = fastinit.normal((1000, 77), dtype=dtype, device="cuda", seed=2)
    t = torch.from_dlpack(x)
    assert t.device.type == "cuda" and str(t.dtype) == f"torch.{dtype}"
    assert t.data_ptr() == x.storage.__cuda_array_interface__["data"][0]
    assert t.cpu().view(torch.int16 if dtype in ("float16", "bfloat16") else t.dtype).numpy().tobytes() == (
        fastinit.normal((1000, 77), dtype=dtype, seed=2).tobytes()
    )


def test_torch_consumer_stream_waits_for_the_kernel(torch):
    stream = torch.cuda.Stream()
    x = fastinit.uniform(1 << 24, device="cuda", seed=3)
    with torch.cuda.stream(stream):
        total = torch.from_dlpack(x).double().sum()  # torch passes its current stream to __dlpack__
    stream.synchronize()
    assert math.isclose(total.item(), float(np.asarray(fastinit.uniform(1 << 24, seed=3), np.float64).sum()))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_torch_cuda_out(torch, dtype):
    tdtype = getattr(torch, dtype)
    base = torch.full((300, 200), 7.0, dtype=tdtype, device="cuda")
    out = base.T[::2]  # transposed and strided
    fastinit.truncated_normal(out.shape, 0.0, 0.02, -0.04, 0.04, seed=4, out=out)
    expected = fastinit.truncated_normal(out.shape, 0.0, 0.02, -0.04, 0.04, seed=4, dtype=dtype)
    got = out.contiguous().cpu().view(torch.int16 if dtype != "float32" else tdtype).numpy()
    assert got.tobytes() == expected.tobytes()
    assert (base.T[1::2] == 7).all()


def test_torch_cuda_out_on_a_side_stream(torch):
    stream = torch.cuda.Stream()
    t = torch.empty(1 << 22, device="cuda")
    with torch.cuda.stream(stream):
        fastinit.normal(t.shape, seed=5, out=t)
        copy = t.cpu()  # ordered after the kernel on the same stream
    assert copy.numpy().tobytes() == fastinit.normal(t.shape, seed=5).tobytes()


def test_torch_inplace_functions_and_init_module(torch):
    import fastinit.torch as ftorch

    t = torch.empty(64, 48, device="cuda", dtype=torch.bfloat16)
    ftorch.kaiming_uniform_(t, a=math.sqrt(5), seed=1, name="w")
    assert t.cpu().view(torch.int16).numpy().tobytes() == (
        fastinit.kaiming_uniform((64, 48), a=math.sqrt(5), seed=1, name="w", dtype="bfloat16").tobytes()
    )

    def model():
        return torch.nn.Sequential(
            torch.nn.Linear(32, 64), torch.nn.LayerNorm(64), torch.nn.Embedding(10, 64, padding_idx=0)
        )

    with torch.device("meta"):
        gpu_model, cpu_model = model(), model()
    gpu_model.to_empty(device="cuda")
    cpu_model.to_empty(device="cpu")
    ftorch.init_module(gpu_model, seed=3)
    ftorch.init_module(cpu_model, seed=3)
    for (name, p), (_, q) in zip(gpu_model.named_parameters(), cpu_model.named_parameters(), strict=True):
        assert torch.equal(p.cpu(), q), name


def test_orthogonal_through_torch_cusolver(torch):
    q = fastinit.orthogonal((512, 256), qr="torch", device="cuda", seed=6)
    qt = torch.from_dlpack(q).double()
    torch.testing.assert_close(
        qt.T @ qt, torch.eye(256, dtype=torch.float64, device="cuda"), atol=1e-5, rtol=0
    )
    cpu = torch.from_numpy(np.asarray(fastinit.orthogonal((512, 256), seed=6))).double()
    torch.testing.assert_close(qt.cpu(), cpu, atol=1e-4, rtol=0)


# ---- CuPy and JAX ---------------------------------------------------------------------------


def test_cupy_zero_copy_out_and_orthogonal():
    cupy = pytest.importorskip("cupy")
    x = fastinit.uniform((100, 3), device="cuda", seed=7)
    c = cupy.from_dlpack(x)
    assert c.data.ptr == x.__cuda_array_interface__["data"][0]
    out = cupy.empty((3, 100), cupy.float32).T
    fastinit.uniform((100, 3), seed=7, out=out)
    assert cupy.asnumpy(out).tobytes() == fastinit.uniform((100, 3), seed=7).tobytes()
    q = cupy.from_dlpack(fastinit.orthogonal((64, 64), qr="cupy", device="cuda", seed=8))
    cupy.testing.assert_allclose(q.T @ q, cupy.eye(64), atol=1e-5)


def test_jax_from_dlpack_on_the_gpu():
    jax = pytest.importorskip("jax")
    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("jax has no GPU here")
    import jax.numpy as jnp

    x = fastinit.normal((256, 8), dtype="bfloat16", device="cuda", seed=9)
    j = jnp.from_dlpack(x)
    assert j.dtype == jnp.bfloat16
    assert (
        np.asarray(j).view(np.uint16).tobytes()
        == fastinit.normal((256, 8), dtype="bfloat16", seed=9).tobytes()
    )


# ---- devices and the README -------------------------------------------------------------------


def test_nonexistent_device():
    from numba import cuda

    count = len(cuda.gpus)
    with pytest.raises(ValueError, match=f"there is no CUDA device {count}"):
        fastinit.uniform(3, device=f"cuda:{count}")


def readme_cuda_examples():
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    return [block for block in re.findall(r"```py\n(.*?)```", text, flags=re.S) if "cuda" in block]


@pytest.mark.parametrize("index", range(len(readme_cuda_examples())))
def test_readme_cuda_examples(torch, index):
    code = readme_cuda_examples()[index]
    exec(compile(code, f"README.md CUDA example {index}", "exec"), {"__name__": "__readme__"})
