"""``out=`` never writes outside the object's memory, never writes what the object does not
show, and tells autograd that it wrote (issue #14, items 1-3), plus a fuzzer of ``out=``
layouts: every call either fills exactly the elements the view names, leaving every other
byte of the buffer as it was, or raises a TypeError / ValueError naming ``out``.

Writes that crashed the process before their fix run in a subprocess, so that a regression
fails one test instead of killing pytest; every buffer written sits inside a larger one whose
other bytes (the guard) are checked afterwards.
"""

from __future__ import annotations

import array
import ctypes
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastinit
from fastinit import dlpack
from fastinit.dtypes import DTYPES

torch = pytest.importorskip("torch")
import fastinit.torch as ftorch  # noqa: E402

GUARD = 0x5A  # the byte every guard region holds


def guarded(n_bytes: int, offset: int = 64):
    """A byte buffer of n_bytes with 64 guard bytes on each side: (base, the middle part)."""
    base = np.full(n_bytes + 128, GUARD, np.uint8)
    return base, base[offset : offset + n_bytes]


def run_isolated(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (a crash there fails the test, not pytest)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, env=env
    )


# ---- item 1: ndarray subclasses and other objects whose flat view is not what it claims ---------


def test_np_matrix_out_stays_inside_its_memory():
    # Before the fix the matrix's reshape(-1) stayed 2-D and the kernel wrote far past the end.
    result = run_isolated(
        """
        import numpy as np, fastinit
        base = np.full(12 * 4 + 128, 0x5A, np.uint8)
        m = np.asmatrix(base[64 : 64 + 48].view(np.float32).reshape(3, 4))
        fastinit.uniform((3, 4), seed=3, name="m", out=m)
        want = fastinit.uniform((3, 4), seed=3, name="m").raw
        assert type(m) is np.matrix
        assert np.asarray(m).tobytes() == want.tobytes(), "values"
        assert (base[:64] == 0x5A).all() and (base[64 + 48 :] == 0x5A).all(), "guard"
        print("ok")
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "ok"


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
def test_np_matrix_out_of_the_wrong_shape_is_refused():
    m = np.asmatrix(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="out has shape"):
        fastinit.uniform((4,), out=m)
    assert not m.any()


class LyingStrides(np.ndarray):
    """An ndarray subclass whose ``strides`` property does not describe its memory."""

    @property
    def strides(self):
        return (self.itemsize,) * self.ndim


def test_a_subclass_cannot_lie_about_its_layout():
    base = np.zeros(8, np.float32)
    out = base[::2].view(LyingStrides)  # real stride 8 bytes, claims 4
    fastinit.uniform((4,), seed=1, name="lie", out=out)
    want = fastinit.uniform((4,), seed=1, name="lie").raw
    assert base[::2].tobytes() == want.tobytes()
    assert not base[1::2].any()


def test_masked_arrays_are_refused():
    data = np.zeros(4, np.float32)
    out = np.ma.masked_array(data, mask=[0, 1, 0, 0])
    with pytest.raises(ValueError, match="^out is a masked array"):
        fastinit.uniform((4,), out=out)
    assert not data.any()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: np.zeros(4, np.float32).view(np.recarray), id="recarray"),
        pytest.param(lambda: np.lib.stride_tricks.as_strided(np.zeros(8, np.float32), (4,), (8,)), id="as_strided"),
        pytest.param(lambda: np.frombuffer(bytearray(17), np.float32, count=4, offset=1), id="unaligned"),
        pytest.param(lambda: (ctypes.c_float * 4)(), id="ctypes"),
        pytest.param(lambda: array.array("f", [0.0] * 4), id="array.array"),
        pytest.param(lambda: memoryview(bytearray(32)).cast("f")[::2], id="memoryview-step"),
    ],
)
def test_other_writable_outputs_get_the_right_values(make):
    out = make()
    fastinit.uniform((4,), seed=2, name="o", out=out)
    assert np.asarray(out).tobytes() == fastinit.uniform((4,), seed=2, name="o").raw.tobytes()


def test_memmap_out(tmp_path):
    out = np.memmap(tmp_path / "m.bin", dtype=np.float32, mode="w+", shape=(2, 3))
    fastinit.normal((2, 3), seed=4, name="mm", out=out)
    out.flush()
    got = np.fromfile(tmp_path / "m.bin", np.float32).reshape(2, 3)
    assert got.tobytes() == fastinit.normal((2, 3), seed=4, name="mm").raw.tobytes()


class Producer:
    """A CPU DLPack producer whose capsules describe whatever it is told."""

    def __init__(self, owner, pointer, shape, strides):
        self.args = (owner, pointer, shape, strides)

    def __dlpack__(self, **kwargs):
        owner, pointer, shape, strides = self.args
        return dlpack.make_capsule(owner, pointer, shape, strides, DTYPES["float32"], versioned=True)

    def __dlpack_device__(self):
        return (1, 0)


def test_a_producer_with_negative_dimensions_is_refused():
    a = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="^out has a negative dimension"):
        fastinit.uniform((2, 3), out=Producer(a, a.ctypes.data, (-2, -3), (3, 1)))
    assert not a.any()


# ---- item 2: torch's lazy negation / conjugation bits -------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: torch.zeros(4, dtype=torch.complex64).conj().imag, id="conj-imag"),
        pytest.param(lambda: torch._neg_view(torch.zeros(4)), id="neg_view"),
    ],
)
def test_negated_views_are_refused(make):
    out = make()
    assert out.is_neg()
    with pytest.raises(TypeError, match="^out has torch's lazy negation bit"):
        fastinit.uniform((4,), out=out)
    with pytest.raises(TypeError, match="^tensor has torch's lazy negation bit"):
        ftorch.uniform_(out)
    assert not out.any()


def test_conjugated_views_are_refused():
    out = torch.zeros(4, dtype=torch.complex64).conj()
    with pytest.raises(TypeError, match="^out has torch's lazy conjugation bit"):
        fastinit.uniform((4,), out=out)


# ---- item 3: the autograd version counter ------------------------------------------------------

IN_PLACE = {
    "uniform_": (ftorch.uniform_, (4, 3)),
    "normal_": (ftorch.normal_, (4, 3)),
    "trunc_normal_": (ftorch.trunc_normal_, (4, 3)),
    "constant_": (lambda t: ftorch.constant_(t, 0.5), (4, 3)),
    "ones_": (ftorch.ones_, (4, 3)),
    "zeros_": (ftorch.zeros_, (4, 3)),
    "eye_": (ftorch.eye_, (4, 3)),
    "dirac_": (ftorch.dirac_, (2, 2, 3)),
    "xavier_uniform_": (ftorch.xavier_uniform_, (4, 3)),
    "xavier_normal_": (ftorch.xavier_normal_, (4, 3)),
    "kaiming_uniform_": (ftorch.kaiming_uniform_, (4, 3)),
    "kaiming_normal_": (ftorch.kaiming_normal_, (4, 3)),
    "orthogonal_": (ftorch.orthogonal_, (4, 3)),
    "sparse_": (lambda t: ftorch.sparse_(t, 0.5), (4, 3)),
}


@pytest.mark.parametrize("fn", IN_PLACE)
def test_in_place_fills_are_seen_by_autograd(fn):
    fill, shape = IN_PLACE[fn]
    w = torch.ones(shape, requires_grad=True)
    saved = torch.full(shape, 2.0)
    y = (w * saved).sum()  # autograd saves `saved` for the backward
    version = saved._version
    fill(saved)
    assert saved._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_out_tensor_and_its_views_see_the_write():
    t = torch.zeros(4, 6)
    view = t[:, ::2]
    version = t._version
    fastinit.uniform((4, 3), out=view)
    assert t._version > version and view._version == t._version
    fastinit.orthogonal((4, 3), out=view)  # the host-computed (deliver) path
    assert t._version > version + 1


def test_fills_in_inference_mode_work():
    with torch.inference_mode():
        t = torch.zeros(3)
        ftorch.normal_(t, seed=1)
    assert t.numpy().tobytes() == fastinit.normal((3,), seed=1).raw.tobytes()


def test_cuda_out_bumps_the_version_under_the_simulator():
    pytest.importorskip("numba")
    result = run_isolated(
        """
        import os
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        import types, torch, fastinit, fastinit.torch as ftorch

        class SimulatedCudaTensor(torch.Tensor):
            device = property(lambda self: torch.device("cuda", 0))
            is_cuda = property(lambda self: True)

        SimulatedCudaTensor.__module__ = "torch.simulated"
        torch.cuda.current_stream = lambda device=None: types.SimpleNamespace(cuda_stream=0)
        for fill in (lambda t: fastinit.uniform((2, 3), out=t), ftorch.normal_, ftorch.eye_):
            t = torch.zeros(2, 3).as_subclass(SimulatedCudaTensor)
            before = t._version
            fill(t)
            assert t._version > before, fill
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("pointer", [4097, 4098])
def test_a_cuda_out_at_a_misaligned_address_is_refused(pointer):
    # A GPU store to an address that is not a multiple of the itemsize faults (and poisons the
    # CUDA context), so the description is refused before any kernel sees it.
    class Fake:
        __cuda_array_interface__ = {"shape": (4,), "typestr": "<f4", "data": (pointer, False), "version": 3}

    with pytest.raises(ValueError, match="^out is at address .* not a multiple of its itemsize 4"):
        dlpack.device_view(Fake())
