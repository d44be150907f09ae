"""device="cuda" where the CUDA backend cannot run: a clear error saying what is missing, never
a silent CPU fallback; and ``import fastinit`` / CPU work never import numba.cuda."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastinit

HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None


def _gpu_available() -> bool:
    if not HAVE_NUMBA_CUDA:
        return False
    from numba import cuda

    return bool(cuda.is_available())


class FakeCudaMemory:
    """An object that says it is CUDA memory (its pointer is never touched here)."""

    __cuda_array_interface__ = {
        "shape": (4,),
        "typestr": "<f4",
        "data": (0xDEAD0000, False),
        "strides": None,
        "version": 3,
        "stream": None,
    }


CALLS = [
    ("uniform", lambda **k: fastinit.uniform((2, 3), **k)),
    ("truncated_normal", lambda **k: fastinit.truncated_normal((2, 3), 0.0, 1.0, -1.0, 1.0, **k)),
    ("xavier_uniform", lambda **k: fastinit.xavier_uniform((2, 3), **k)),
    ("orthogonal", lambda **k: fastinit.orthogonal((3, 3), **k)),
    ("eye", lambda **k: fastinit.eye((2, 3), **k)),
    ("sparse", lambda **k: fastinit.sparse((4, 3), 0.5, **k)),
    ("FastArray.empty", lambda **k: fastinit.FastArray.empty((2, 3), "float32", **k)),
]


@pytest.mark.skipif(not HAVE_NUMBA_CUDA, reason="numba-cuda is not installed (the next test covers that)")
@pytest.mark.parametrize("name, call", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_no_gpu_is_an_error_saying_so(name, call, device):
    if _gpu_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(
        ValueError, match=rf"device='{device}': no CUDA GPU is available: numba-cuda is installed"
    ):
        call(device=device)


@pytest.mark.parametrize("name, call", CALLS, ids=[c[0] for c in CALLS])
def test_without_numba_cuda_the_error_names_the_package(monkeypatch, name, call):
    monkeypatch.setitem(sys.modules, "numba_cuda", None)  # find_spec then reports it missing
    with pytest.raises(
        ValueError, match=r"device='cuda': fastinit's CUDA backend needs the numba-cuda package"
    ):
        call(device="cuda")
    with pytest.raises(ValueError, match=r"pip install 'fastinit\[cuda\]'"):
        call(device="cuda:1")


def test_cuda_out_without_numba_cuda_is_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba_cuda", None)
    with pytest.raises(ValueError, match="numba-cuda package"):
        fastinit.normal(4, out=FakeCudaMemory())


@pytest.mark.skipif(not HAVE_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_cuda_out_without_a_gpu_is_an_error():
    if _gpu_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="out is CUDA memory: no CUDA GPU is available"):
        fastinit.normal(4, out=FakeCudaMemory())
    host = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        fastinit.normal(3, device="cuda", out=host)
    assert not host.any()


def test_fastinit_never_imports_numba_cuda_for_cpu_work():
    code = """
import json, sys
import numpy as np
import fastinit, fastinit.api, fastinit.array, fastinit.dlpack
fastinit.normal((10, 3), seed=0, device="cpu")
fastinit.uniform(5, out=np.zeros(5, np.float32))
fastinit.orthogonal((4, 4))
fastinit.sparse((6, 3), 0.5)
fastinit.eye((3, 3), dtype="bfloat16")
fastinit.xavier_uniform((4, 4), index=(slice(None, None, -1), 1))
x = fastinit.FastArray.empty(3, "float16")
x.__dlpack__(); x.copy_to_host(); x.to_host(); repr(x)
fastinit.dlpack.device_of(np.zeros(2))
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("numba.cuda", "numba_cuda", "fastinit.backends.cuda", "cupy")))))
"""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_device_of_tells_cuda_memory_by_type_alone():
    from fastinit.dlpack import device_of

    assert device_of(FakeCudaMemory()) == ("cuda", None)
    assert device_of(np.zeros(3)) is None
    assert device_of(fastinit.uniform(3)) is None
    assert device_of(memoryview(bytearray(8))) is None


def test_stream_handles_of_numba_streams_do_not_warn():
    """__cuda_array_interface__'s stream of a Numba stream: int(stream) on Numba's default stream
    returns an enum member (a DeprecationWarning, an error in this suite), so the handle is read
    instead. Numba's Stream objects are made here without a GPU."""
    if not HAVE_NUMBA_CUDA:
        pytest.skip("numba-cuda is not installed")
    import warnings

    from cuda.bindings import driver as cudrv
    from numba.cuda.cudadrv.driver import Stream

    from fastinit.cuda_runtime import stream_handle

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handles = [stream_handle(Stream(cudrv.CUstream(h))) for h in (0, 1, 2, 0x7F00DEAD0000)]
    assert handles == [1, 1, 2, 0x7F00DEAD0000]


def test_numpy_row_stack_restored_for_numba_cuda(monkeypatch):
    """NumPy 2.5 removed np.row_stack, which numba-cuda 0.30 overloads when it compiles its
    first kernel (an AttributeError on every CUDA call there): loading the CUDA runtime puts
    the alias back when it is missing, and leaves an existing one alone."""
    from fastinit import cuda_runtime

    monkeypatch.delattr(np, "row_stack", raising=False)
    cuda_runtime._restore_numpy_aliases_numba_cuda_uses()
    assert np.row_stack is np.vstack
    sentinel = object()
    monkeypatch.setattr(np, "row_stack", sentinel)
    cuda_runtime._restore_numpy_aliases_numba_cuda_uses()
    assert np.row_stack is sentinel
