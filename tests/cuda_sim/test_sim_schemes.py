"""Every scheme on device="cuda" under the simulator: the CPU's bytes (orthogonal: the CPU's
values to float32 rounding), new arrays and out=, with index= and 16-bit dtypes."""

import importlib
import math

import numpy as np
import pytest

import fastinit
from fastinit.schemes import registry

# (fastinit.schemes.orthogonal is the function; the module by its name)
orthogonal_module = importlib.import_module("fastinit.schemes.orthogonal")


@fastinit.custom(draw="normal", mean=0.0, std=1.0)
def clipped(w):
    return min(max(w, -1.5), 1.5)


# name -> (parameters, shape); every registry entry has a row (checked below)
EXAMPLES = {
    "uniform": (dict(low=-0.5, high=0.25), (6, 35)),
    "normal": (dict(mean=1.0, std=0.5), (6, 35)),
    "truncated_normal": (dict(std=0.02, a=-0.04, b=0.04), (6, 35)),
    "variance_scaling": (dict(scale=2.0, mode="fan_avg", distribution="truncated_normal"), (3, 40, 5)),
    "xavier_uniform": (dict(gain=1.5), (20, 9)),
    "xavier_normal": ({}, (20, 9)),
    "kaiming_uniform": (dict(a=math.sqrt(5)), (8, 4, 3)),
    "kaiming_normal": (dict(mode="fan_out", nonlinearity="relu"), (8, 4, 3)),
    "lecun_uniform": ({}, (20, 9)),
    "lecun_normal": ({}, (20, 9)),
    "glorot_uniform": ({}, (20, 9)),
    "glorot_normal": ({}, (20, 9)),
    "he_uniform": ({}, (20, 9)),
    "he_normal": ({}, (20, 9)),
    "constant": (dict(value=0.1), (6, 7)),
    "zeros": ({}, (6, 7)),
    "ones": ({}, (6, 7)),
    "eye": ({}, (5, 7)),
    "dirac": (dict(groups=2), (4, 2, 3, 3)),
    "sparse": (dict(sparsity=0.3, std=0.1), (12, 5)),
    "delta_orthogonal": ({}, (3, 3, 4, 6)),
    "values": (dict(data=fastinit.schemes.encode_values(np.arange(42.0) / 5 - 3)), (6, 7)),
}
GPU_QR_SCHEMES = {"orthogonal"}  # factored on the device: tested with a stand-in QR below
KEY = dict(seed=3, name="blocks.1.weight")
INDEX = (slice(None, None, -1), slice(1, None, 2))


def test_every_registry_entry_has_an_example():
    names = set(fastinit.list_initializers()) - {"custom"}  # custom: a factory, tested below
    assert names - GPU_QR_SCHEMES == set(EXAMPLES)
    assert set(registry.SCHEMES) - {"custom"} <= names


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_scheme_matches_cpu(name, dtype, host_bytes):
    params, shape = EXAMPLES[name]
    init = fastinit.get_initializer(name, **params)
    expected = init(shape, dtype=dtype, **KEY)
    got = init(shape, dtype=dtype, device="cuda", **KEY)
    assert got.device == "cuda:0" and host_bytes(got) == expected.tobytes()
    index = INDEX if len(shape) == 2 else (1, Ellipsis, slice(None, None, 2))
    got = init(shape, dtype=dtype, device="cuda", index=index, **KEY)
    assert host_bytes(got) == init(shape, dtype=dtype, index=index, **KEY).tobytes()


@pytest.mark.parametrize("name", ["kaiming_uniform", "sparse", "eye", "dirac", "delta_orthogonal"])
def test_scheme_into_out(cuda, name):
    params, shape = EXAMPLES[name]
    init = fastinit.get_initializer(name, **params)
    base = cuda.device_array(shape[::-1], np.float16)
    out = base.T if len(shape) == 2 else base.transpose(tuple(range(len(shape) - 1, -1, -1)))
    assert init(shape, out=out, **KEY) is out
    expected = np.asarray(init(shape, dtype="float16", **KEY))
    assert np.array_equal(out.copy_to_host(), expected)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_custom_scheme(dtype, host_bytes):
    got = clipped((9, 13), device="cuda", dtype=dtype, **KEY)
    assert host_bytes(got) == clipped((9, 13), dtype=dtype, **KEY).tobytes()
    got = clipped((9, 13), device="cuda", index=INDEX, **KEY)
    assert host_bytes(got) == clipped((9, 13), index=INDEX, **KEY).tobytes()


def test_bad_device_fails_before_host_work(monkeypatch):
    from fastinit import samplers

    def host_work(*args, **kwargs):
        raise AssertionError("drew on the host before checking the device")

    monkeypatch.setattr(samplers, "normal", host_work)
    for call in (
        lambda: clipped((3, 3), device="cuda:2"),
        lambda: fastinit.sparse((4, 3), 0.5, device="cuda:2"),
        lambda: fastinit.delta_orthogonal((3, 4, 4), device="cuda:2"),
    ):
        with pytest.raises(ValueError, match="no CUDA device 2"):
            call()


# ---- orthogonal: the GPU path with a NumPy stand-in for cuSOLVER -----------------------------


class NumpyQR:
    """The device-side operations of orthogonal (orthogonal.GPU_QR's interface) on simulated
    device arrays, with NumPy's LAPACK QR standing in for cuSOLVER. Records what it did."""

    calls: list = []

    def __init__(self, index):
        from numba import cuda

        assert index == 0
        self.cuda = cuda

    def _wrap(self, host):
        return self.cuda.to_device(np.ascontiguousarray(host))

    def empty(self, shape, dtype):
        NumpyQR.calls.append(("empty", shape, np.dtype(dtype).name))
        return self.cuda.device_array(shape, dtype)

    def haar(self, a):
        host = a.copy_to_host()
        NumpyQR.calls.append(("haar", host.shape))
        q, r = np.linalg.qr(host)
        return self._wrap(q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :])

    def transpose(self, a):
        return self._wrap(np.swapaxes(a.copy_to_host(), -1, -2))

    def moveaxis(self, a, source, destination):
        return self._wrap(np.moveaxis(a.copy_to_host(), source, destination))

    def select(self, a, selection):
        return self._wrap(a.copy_to_host()[selection])


@pytest.fixture
def numpy_qr(monkeypatch):
    NumpyQR.calls = []
    monkeypatch.setitem(orthogonal_module.GPU_QR, "numpy", NumpyQR)
    return NumpyQR


def test_orthogonal_without_a_cuda_qr_says_what_to_install():
    # this environment has torch without CUDA and no CuPy
    with pytest.raises(ImportError, match="CuPy is not installed and torch .* cannot use CUDA here"):
        fastinit.orthogonal((4, 4), device="cuda")
    with pytest.raises(ImportError, match=r"orthogonal\(qr='torch'\) on a GPU needs torch with CUDA"):
        fastinit.orthogonal((4, 4), device="cuda", qr="torch")
    with pytest.raises(ImportError, match=r"orthogonal\(qr='cupy'\) needs CuPy: pip install cupy-cuda13x"):
        fastinit.orthogonal((4, 4), device="cuda", qr="cupy")
    with pytest.raises(ValueError, match="qr='scipy' must be one of 'torch', 'cupy'"):
        fastinit.orthogonal((4, 4), device="cuda", qr="scipy")


ORTHOGONAL_CASES = [
    # (shape, keywords)
    ((6, 4), {}),
    ((4, 9), dict(gain=2.0)),
    ((3, 2, 5), dict(column_axis=1)),
    ((2, 3, 5, 4), dict(batch_dims=2, index=(1, slice(None), slice(None, None, -1)))),
    ((5, 5), dict(index=(slice(1, 4), 2))),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(ORTHOGONAL_CASES)))
def test_orthogonal_on_the_device_agrees_with_the_cpu(numpy_qr, case, dtype):
    shape, kwargs = ORTHOGONAL_CASES[case]
    got = fastinit.orthogonal(shape, qr="numpy", device="cuda", dtype=dtype, **KEY, **kwargs)
    expected = np.asarray(fastinit.orthogonal(shape, dtype=dtype, **KEY, **kwargs))
    assert got.device == "cuda:0" and got.shape == expected.shape
    np.testing.assert_allclose(
        got.copy_to_host(), expected, rtol=0, atol=1e-5 if dtype == "float32" else 1e-12
    )
    assert [c[0] for c in numpy_qr.calls] == ["empty", "haar"]


def test_orthogonal_gaussian_is_drawn_on_the_device_with_the_cpu_bits(numpy_qr, monkeypatch):
    seen = []
    haar = NumpyQR.haar

    def keep(self, a):
        seen.append(a.copy_to_host())
        return haar(self, a)

    monkeypatch.setattr(NumpyQR, "haar", keep)
    fastinit.orthogonal((2, 7, 3), batch_dims=1, qr="numpy", device="cuda", **KEY)
    expected = np.asarray(fastinit.normal(2 * 7 * 3, **KEY)).reshape(2, 7, 3)
    assert seen[0].tobytes() == expected.tobytes()


def test_orthogonal_16_bit_rounds_on_the_device_once(numpy_qr, host_bytes):
    wide = fastinit.orthogonal((8, 5), qr="numpy", device="cuda", **KEY).copy_to_host()
    for dtype in ("bfloat16", "float16"):
        narrow = fastinit.orthogonal((8, 5), qr="numpy", device="cuda", dtype=dtype, **KEY)
        assert host_bytes(narrow) == wide.astype(fastinit.resolve_dtype(dtype).numpy_dtype()).tobytes()


def test_orthogonal_into_out(numpy_qr, cuda):
    base = cuda.device_array((5, 8), np.float32)
    out = base.T
    assert fastinit.orthogonal((8, 5), qr="numpy", out=out, **KEY) is out
    q = base.copy_to_host().T.astype(np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-5)
    np.testing.assert_allclose(q, np.asarray(fastinit.orthogonal((8, 5), **KEY)), atol=1e-5)
    empty = cuda.device_array((0, 3), np.float32)
    fastinit.orthogonal((0, 3), qr="numpy", out=empty)
