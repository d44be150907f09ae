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

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastinit
from fastinit import dlpack, driver
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


@pytest.mark.parametrize(
    ("plan", "size", "fits"),
    [
        (dict(outer=(3,), dst_strides=(4,), dst_base=0, n=4, dst_step=1), 12, True),
        (dict(outer=(3,), dst_strides=(4,), dst_base=0, n=4, dst_step=1), 11, False),
        (dict(outer=(3,), dst_strides=(-4,), dst_base=8, n=4, dst_step=1), 12, True),
        (dict(outer=(3,), dst_strides=(-4,), dst_base=7, n=4, dst_step=1), 12, False),
        (dict(outer=(), dst_strides=(), dst_base=3, n=4, dst_step=-1), 4, True),
        (dict(outer=(), dst_strides=(), dst_base=2, n=4, dst_step=-1), 4, False),
    ],
)
def test_the_last_guard_refuses_plans_reaching_outside_the_storage(plan, size, fits):
    # driver._check_within runs before every host kernel: the kernels index without bounds checks.
    from fastinit.backends.plan import FillPlan

    full = FillPlan(src_strides=(0,) * len(plan["outer"]), src_base=0, src_step=1, **plan)
    if fits:
        driver._check_within(full, size)
    else:
        with pytest.raises(ValueError, match="^out's memory does not span"):
            driver._check_within(full, size)


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
        pytest.param(
            lambda: np.lib.stride_tricks.as_strided(np.zeros(8, np.float32), (4,), (8,)), id="as_strided"
        ),
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

    def __init__(self, owner, pointer, shape, strides, dtype=DTYPES["float32"], read_only=False):
        self.args = (owner, pointer, shape, strides, dtype)
        self.read_only = read_only

    def __dlpack__(self, **kwargs):
        return dlpack.make_capsule(*self.args, versioned=True, read_only=self.read_only)

    def __dlpack_device__(self):
        return (1, 0)


def test_a_producer_with_negative_dimensions_is_refused():
    a = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="^out has a negative dimension"):
        fastinit.uniform((2, 3), out=Producer(a, a.ctypes.data, (-2, -3), (3, 1)))
    assert not a.any()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("storage_bytes", [0, 400])
def test_a_torch_tensor_larger_than_its_storage_is_refused(dtype, storage_bytes):
    # A storage resized under its tensor (FSDP frees flat parameters this way) leaves a tensor
    # whose shape reaches past its memory: before the fix, a heap overflow or a NumPy error.
    result = run_isolated(
        f"""
        import torch, fastinit
        t = torch.zeros(1000, dtype=torch.{dtype})
        t.untyped_storage().resize_({storage_bytes})
        try:
            fastinit.uniform((1000,), out=t)
        except ValueError as error:
            print(error)
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    end = 1000 * (2 if dtype == "bfloat16" else 4)
    assert result.stdout.startswith(f"out reaches byte {end} of its storage")
    assert f"its storage holds {storage_bytes} bytes" in result.stdout


def test_an_as_strided_view_past_its_array_is_refused():
    # as_strided can describe memory its array does not own; where the owner is an ndarray,
    # the view's extent is checked against it (before the fix: a write past the allocation).
    result = run_isolated(
        """
        import numpy as np, fastinit
        owner = np.zeros(16, np.float32)
        lie = np.lib.stride_tricks.as_strided(owner[4:], (100_000,), (4,))
        inside = np.lib.stride_tricks.as_strided(owner[4:], (3, 4), (16, 4))[:, ::-1]
        fastinit.uniform((3, 4), out=inside)
        assert owner[4:].tobytes() == fastinit.uniform((3, 4)).raw[:, ::-1].tobytes()
        try:
            fastinit.uniform((100_000,), out=lie)
        except ValueError as error:
            print(error)
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("out reaches past the memory of the array it views")


def fake_tensor():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        return torch.zeros(3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: torch.empty(3, device="meta"), "^out is a meta tensor", id="meta"),
        pytest.param(fake_tensor, "^out has no memory", id="fake"),
        pytest.param(
            lambda: torch.nested.nested_tensor([torch.zeros(3), torch.zeros(3)]),
            "^out is a nested",
            id="nested",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's nested tensors are a prototype
def test_torch_tensors_without_plain_memory_are_refused(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        fastinit.uniform((3,), out=make())


@pytest.mark.parametrize(
    ("shape", "strides"),
    [((2**40, 2**40), (2**40, 1)), ((2**62,), (1,)), ((4,), (2**61,)), ((2, 2), (-(2**62), 1))],
)
def test_a_producer_describing_impossible_memory_is_refused(shape, strides):
    a = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="^out describes"):
        fastinit.uniform(shape, out=Producer(a, a.ctypes.data, shape, strides))


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


def test_dtensor_fills_bump_the_dtensor_version(tmp_path):
    # The local shard's counter is not the DTensor's: autograd checks the DTensor's own.
    result = run_isolated(
        f"""
        import torch, torch.distributed as dist
        dist.init_process_group("gloo", init_method="file://{tmp_path / "store"}", rank=0, world_size=1)
        from torch.distributed.tensor import Replicate, Shard, distribute_tensor
        from torch.distributed.device_mesh import init_device_mesh
        import fastinit.torch as ftorch

        mesh = init_device_mesh("cpu", (1,))
        for placement in (Shard(0), Replicate()):
            w = distribute_tensor(torch.ones(4, 3), mesh, [placement]).requires_grad_()
            saved = distribute_tensor(torch.full((4, 3), 2.0), mesh, [placement])
            y = (w * saved).sum()
            before = saved._version
            ftorch.uniform_(saved)
            assert saved._version > before, placement
            try:
                y.backward()
            except RuntimeError as error:
                assert "modified by an inplace operation" in str(error), error
            else:
                raise AssertionError(f"backward used overwritten values ({{placement}})")
        dist.destroy_process_group()
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.slow  # a process of its own: torch and the CUDA simulator
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


# ---- item 4: a fuzzer of out= layouts ------------------------------------------------------------

STORAGE = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
}
SAMPLERS = {"uniform": fastinit.uniform, "normal": fastinit.normal, "orthogonal": fastinit.orthogonal}
CONTAINERS = ["numpy", "numpy", "torch", "torch", "memoryview", "dlpack", "matrix", "subclass", "bf16-bits"]
# None: a well-formed out. Every other flaw, where the container can express it, must be
# refused with out's memory untouched; "unaligned" must be filled (the host writes unaligned
# memory correctly, through Numba's unaligned array types).
FLAWS = [
    *(None, None, None),
    *("unaligned", "readonly", "broadcast", "byteswap", "wrong_shape", "wrong_dtype", "neg_bit"),
]


@st.composite
def out_cases(draw):
    ndim = draw(st.integers(1, 3))
    full = tuple(draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim)))
    index = []
    for n in full:
        kind = draw(st.sampled_from(["all", "slice", "int"] if n else ["all", "slice"]))
        if kind == "int":
            index.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            step = draw(st.sampled_from([1, 2, 3, -1, -2]))
            index.append(slice(draw(st.integers(-n - 1, n + 1)), draw(st.integers(-n - 1, n + 1)), step))
        else:
            index.append(slice(None))
    index = tuple(index) if draw(st.booleans()) else None
    result = driver.result_shape(full, index)
    samplers = ["uniform", "uniform", "normal"] + (["orthogonal"] if ndim >= 2 else [])
    return dict(
        full=full,
        index=index,
        result=result,
        layout=dict(
            perm=draw(st.permutations(range(len(result)))),
            steps=[draw(st.sampled_from([1, 1, 2, 3, -1, -2])) for _ in result],
            pads=[draw(st.integers(0, 2)) for _ in result],
            offset=draw(st.integers(0, 3)),
        ),
        dtype=draw(st.sampled_from(list(STORAGE))),
        container=draw(st.sampled_from(CONTAINERS)),
        flaw=draw(st.sampled_from(FLAWS)),
        sampler=draw(st.sampled_from(samplers)),
        pass_dtype=draw(st.booleans()),
    )


def storage_dims(shape, layout):
    """The dense block the view is cut from: its axis k holds the view's axis perm[k]."""
    return [shape[a] * abs(layout["steps"][a]) + layout["pads"][a] for a in layout["perm"]]


def strided_view(buffer: np.ndarray, storage, shape, layout, unaligned: bool) -> np.ndarray:
    """A view of ``shape`` into ``buffer`` (bytes; the first 64 are guard) with permuted axes,
    steps of either sign, padding and an offset. The same arguments give the same elements."""
    itemsize = np.dtype(storage).itemsize
    perm, steps, pads = layout["perm"], layout["steps"], layout["pads"]
    dims = storage_dims(shape, layout)
    start = 64 + layout["offset"] * itemsize + (1 if unaligned else 0)
    store = buffer[start : start + int(np.prod(dims)) * itemsize].view(storage).reshape(dims)
    if not perm:
        return store  # 0-d: store[()] would be a scalar, not a view
    view = store[
        tuple(slice(pads[a] // 2, pads[a] // 2 + shape[a] * abs(steps[a]), abs(steps[a])) for a in perm)
    ]
    view = view[tuple(slice(None, None, -1) if steps[a] < 0 else slice(None) for a in perm)]
    return view.transpose(np.argsort(perm))


def buffer_bytes(shape, layout) -> int:
    return 64 + (layout["offset"] + int(np.prod(storage_dims(shape, layout)))) * 8 + 1 + 64


def as_container(view: np.ndarray, buffer: np.ndarray, case, read_only: bool):
    """out as the container the case names, over the memory of ``view`` (None: inexpressible)."""
    kind, dtype = case["container"], case["dtype"]
    if kind == "numpy":
        return view
    if kind == "bf16-bits":
        return view.view(np.uint16) if dtype == "bfloat16" else None
    if kind == "matrix":
        return np.asmatrix(view) if view.ndim == 2 else None
    if kind == "subclass":
        return view.view(LyingStrides)
    if kind == "memoryview":  # the buffer protocol has no bfloat16 format
        if dtype == "bfloat16":
            return None
        return memoryview(view).toreadonly() if read_only else memoryview(view)
    itemsize = view.itemsize
    strides = tuple(s // itemsize for s in view.strides)
    if kind == "dlpack":
        return Producer(view, view.ctypes.data, view.shape, strides, DTYPES[dtype], read_only)
    if any(s < 0 for s in strides):
        return None  # torch has no negative strides
    offset = view.ctypes.data - buffer.ctypes.data
    skew = offset % itemsize
    usable = (buffer.size - skew) // itemsize * itemsize
    storage = torch.from_numpy(buffer[skew : skew + usable]).view(getattr(torch, dtype))
    return storage.as_strided(view.shape, strides, offset // itemsize)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(out_cases())
def test_out_layouts_fill_exactly_the_view_or_raise_naming_out(case):
    dtype, storage, flaw, shape = case["dtype"], STORAGE[case["dtype"]], case["flaw"], case["result"]
    buffer = np.random.default_rng(0).integers(0, 256, buffer_bytes(shape, case["layout"]), np.uint8)
    view = strided_view(buffer, storage, shape, case["layout"], unaligned=flaw == "unaligned")
    container, refused = case["container"], True
    broadcast = flaw == "broadcast" and view.size > 1 and container in ("numpy", "torch", "dlpack")
    if broadcast:  # one axis of stride 0: its elements share memory
        axis = next(i for i, n in enumerate(shape) if n > 1)
        strides = [0 if i == axis else s for i, s in enumerate(view.strides)]
        view = np.lib.stride_tricks.as_strided(view, strides=strides, writeable=True)
    read_only = flaw == "readonly" and container in ("numpy", "matrix", "subclass", "memoryview", "dlpack")
    out = as_container(view, buffer, case, read_only)
    if out is None:
        return
    if read_only and container in ("numpy", "matrix", "subclass"):
        out.flags.writeable = False
    elif broadcast or read_only:
        pass
    elif flaw == "byteswap" and container == "numpy" and dtype != "bfloat16":
        out = view.view(view.dtype.newbyteorder())
    elif flaw == "wrong_shape" and container in ("numpy", "torch"):
        out = out[None]
    elif flaw == "neg_bit" and container == "torch":
        out = torch._neg_view(out)
    else:
        refused = flaw == "wrong_dtype"
    ask = dtype if case["pass_dtype"] or container == "bf16-bits" else None
    if flaw == "wrong_dtype":
        ask = "float64" if dtype != "float64" else "float32"
    sampler = SAMPLERS[case["sampler"]]
    key = dict(seed=9, name="fuzz", index=case["index"])
    before = buffer.copy()
    version = out._version if isinstance(out, torch.Tensor) else None
    try:
        result = sampler(case["full"], **key, dtype=ask, out=out)
    except (TypeError, ValueError) as error:
        assert refused, f"a well-formed out was refused: {error}"
        assert "out" in str(error) and "\n" not in str(error), str(error)
        assert buffer.tobytes() == before.tobytes(), "a refused call wrote into out's buffer"
        return
    assert not refused, f"{flaw} was not refused"
    assert result is out
    expected = before.copy()
    want = sampler(case["full"], **key, dtype=dtype).raw
    bits = f"u{want.itemsize}"  # bfloat16 is compared as its bits
    target = strided_view(expected, storage, shape, case["layout"], unaligned=flaw == "unaligned")
    target.view(bits)[...] = want.view(bits)
    assert buffer.tobytes() == expected.tobytes(), "out's elements differ, or bytes around them changed"
    if version is not None:
        assert out._version > version


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a,
        lambda a: a[::-1, 1::2],
        lambda a: a.T[:, ::-2],
        lambda a: a[2, 3, ...],  # 0-d
        lambda a: a[:0],
        lambda a: np.broadcast_to(a[:1, :1], (1, 1)),
    ],
)
def test_flat_storage_addresses_every_element(view):
    """backends.plan.flat_storage, what the host and the simulated CUDA out= paths write through:
    element i of the view is flat[base + i . strides], within offset_range."""
    from fastinit.backends.plan import flat_storage, offset_range

    a = view(np.arange(5 * 7, dtype=np.float32).reshape(5, 7))
    flat, base, strides = flat_storage(a)
    low, high = offset_range(a.shape, strides)
    assert flat.size == (high - low + 1 if a.size else 0)
    for i in np.ndindex(*a.shape):
        assert flat[base + sum(k * s for k, s in zip(i, strides, strict=True))] == a[i]
