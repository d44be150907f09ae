"""fastinit.torch's in-place functions on CUDA tensors, under the simulator.

The torch here is a CPU build, so it cannot make CUDA tensors. A tensor subclass that reports
device cuda:0 stands in for one: fastinit recognises torch tensors by their module and device,
reads data_ptr / shape / stride / dtype and torch's current stream, exactly as for a real CUDA
tensor, and the simulator's "device memory" is host memory, so the kernels write the
tensor's own storage. What this checks is the dispatch (which backend, which memory, which
stream); real CUDA tensors are tested by tests/test_cuda_gpu.py on a GPU.
"""

import importlib
import math
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastinit  # noqa: E402
import fastinit.torch as ftorch  # noqa: E402
from fastinit.backends import cuda as backend  # noqa: E402

orthogonal_module = importlib.import_module("fastinit.schemes.orthogonal")


class SimulatedCudaTensor(torch.Tensor):
    @property
    def device(self):
        return torch.device("cuda", 0)

    @property
    def is_cuda(self):
        return True


SimulatedCudaTensor.__module__ = "torch.simulated"  # fastinit tells torch tensors by module


def cuda_tensor(*shape, dtype=torch.float32):
    return torch.full(shape, 7.0, dtype=dtype).as_subclass(SimulatedCudaTensor)


def storage_bytes(t) -> bytes:
    plain = t.as_subclass(torch.Tensor).contiguous()
    return plain.view(torch.int16 if plain.element_size() == 2 else plain.dtype).numpy().tobytes()


@pytest.fixture(autouse=True)
def torch_stream(monkeypatch):
    """torch's current stream (0: the default stream) and the fills launched, with their stream."""
    state = types.SimpleNamespace(handle=0, launches=[])
    monkeypatch.setattr(
        torch.cuda, "current_stream", lambda device=None: types.SimpleNamespace(cuda_stream=state.handle)
    )
    from numba import cuda

    monkeypatch.setattr(cuda, "external_stream", lambda ptr: ("external", ptr))
    fill, scatter = backend.fill, backend.scatter

    def recording_fill(*args, stream=None, **kwargs):
        state.launches.append(("fill", stream))
        return (
            fill(*args, stream=stream, **kwargs) if not isinstance(stream, tuple) else fill(*args, **kwargs)
        )

    def recording_scatter(*args, stream=None, **kwargs):
        state.launches.append(("scatter", stream))
        return (
            scatter(*args, stream=stream, **kwargs)
            if not isinstance(stream, tuple)
            else scatter(*args, **kwargs)
        )

    monkeypatch.setattr(backend.launch, "fill", recording_fill)
    monkeypatch.setattr(backend.launch, "scatter", recording_scatter)
    return state


KEY = dict(seed=5, name="encoder.fc.weight")

INPLACE = [
    # (id, call, the functional equivalent)
    (
        "uniform_",
        lambda t: ftorch.uniform_(t, -0.5, 0.5, **KEY),
        lambda s, d: fastinit.uniform(s, -0.5, 0.5, dtype=d, **KEY),
    ),
    (
        "normal_",
        lambda t: ftorch.normal_(t, 0.0, 0.02, **KEY),
        lambda s, d: fastinit.normal(s, 0.0, 0.02, dtype=d, **KEY),
    ),
    (
        "trunc_normal_",
        lambda t: ftorch.trunc_normal_(t, 0.0, 0.02, -0.04, 0.04, **KEY),
        lambda s, d: fastinit.truncated_normal(s, 0.0, 0.02, -0.04, 0.04, dtype=d, **KEY),
    ),
    ("constant_", lambda t: ftorch.constant_(t, 0.3), lambda s, d: fastinit.constant(s, 0.3, dtype=d)),
    ("zeros_", ftorch.zeros_, lambda s, d: fastinit.zeros(s, dtype=d)),
    ("eye_", ftorch.eye_, lambda s, d: fastinit.eye(s, dtype=d)),
    (
        "xavier_uniform_",
        lambda t: ftorch.xavier_uniform_(t, **KEY),
        lambda s, d: fastinit.xavier_uniform(s, dtype=d, **KEY),
    ),
    (
        "xavier_normal_",
        lambda t: ftorch.xavier_normal_(t, **KEY),
        lambda s, d: fastinit.xavier_normal(s, dtype=d, **KEY),
    ),
    (
        "kaiming_uniform_",
        lambda t: ftorch.kaiming_uniform_(t, a=math.sqrt(5), **KEY),
        lambda s, d: fastinit.kaiming_uniform(s, a=math.sqrt(5), dtype=d, **KEY),
    ),
    (
        "kaiming_normal_",
        lambda t: ftorch.kaiming_normal_(t, mode="fan_out", **KEY),
        lambda s, d: fastinit.kaiming_normal(s, mode="fan_out", dtype=d, **KEY),
    ),
    (
        "sparse_",
        lambda t: ftorch.sparse_(t, 0.25, **KEY),
        lambda s, d: fastinit.sparse(s, 0.25, dtype=d, **KEY),
    ),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("case", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_functions_fill_cuda_tensors_on_the_gpu(torch_stream, case, dtype):
    _, call, functional = case
    t = cuda_tensor(9, 20, dtype=dtype)
    assert call(t) is t
    assert torch_stream.launches and all(kind in ("fill", "scatter") for kind, _ in torch_stream.launches)
    expected = functional((9, 20), str(dtype).removeprefix("torch."))
    assert storage_bytes(t) == expected.tobytes()


def test_transposed_cuda_tensor():
    base = cuda_tensor(20, 9, dtype=torch.bfloat16)
    ftorch.normal_(base.T, 0.0, 0.02, **KEY)
    expected = fastinit.normal((9, 20), 0.0, 0.02, dtype="bfloat16", **KEY)
    assert storage_bytes(base.T) == expected.tobytes()


def test_work_runs_on_torchs_current_stream(torch_stream):
    t = cuda_tensor(4, 8)
    ftorch.normal_(t, **KEY)
    assert torch_stream.launches[-1][1] is not None and not isinstance(torch_stream.launches[-1][1], tuple)
    torch_stream.handle = 0xBEEF
    ftorch.normal_(t, **KEY)
    assert torch_stream.launches[-1] == ("fill", ("external", 0xBEEF))


def test_orthogonal_uses_the_gpu_qr(monkeypatch):
    used = []

    class NumpyQR:
        def __init__(self, index):
            from numba import cuda

            used.append(index)
            self.cuda = cuda

        def empty(self, shape, dtype):
            return self.cuda.device_array(shape, dtype)

        def haar(self, a):
            q, r = np.linalg.qr(a.copy_to_host())
            return self.cuda.to_device(q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :])

        def transpose(self, a):
            return self.cuda.to_device(np.ascontiguousarray(np.swapaxes(a.copy_to_host(), -1, -2)))

        def select(self, a, selection):
            return self.cuda.to_device(np.ascontiguousarray(a.copy_to_host()[selection]))

    monkeypatch.setitem(orthogonal_module.GPU_QR, "torch", NumpyQR)  # orthogonal_ asks for torch's QR
    t = cuda_tensor(6, 10)
    ftorch.orthogonal_(t, gain=2.0, **KEY)
    assert used == [0]
    q = t.as_subclass(torch.Tensor).double()
    torch.testing.assert_close(q @ q.T, 4 * torch.eye(6, dtype=torch.float64), atol=1e-5, rtol=0)
    cpu = torch.from_dlpack(fastinit.orthogonal((6, 10), 2.0, qr="torch", **KEY))
    torch.testing.assert_close(t.as_subclass(torch.Tensor), cpu, atol=1e-5, rtol=0)


def test_meta_tensors_are_left_alone(torch_stream):
    t = torch.empty(3, 4, device="meta")
    assert ftorch.normal_(t) is t and torch_stream.launches == []
