"""The CUDA kernels under the simulator give the CPU backend's bytes: every distribution code,
dtype, index form, launch geometry and out= layout (see conftest.py for what the simulator
does and does not check)."""

import dataclasses
import math

import numpy as np
import pytest

import fastinit
from fastinit import distributions
from fastinit.backends import cuda as backend
from fastinit.backends.plan import FillPlan

DTYPES = ["float32", "float64", "float16", "bfloat16"]

# (id, sampler call without shape/keywords, the distribution code it must reach)
SAMPLERS = [
    ("uniform", lambda s, **k: fastinit.uniform(s, -1.5, 2.0, **k), distributions.UNIFORM),
    ("normal", lambda s, **k: fastinit.normal(s, 0.25, 0.02, **k), distributions.NORMAL),
    (
        "truncnorm_central",
        lambda s, **k: fastinit.truncated_normal(s, 0.0, 1.0, -2.0, 2.0, **k),
        distributions.TRUNCNORM_CENTRAL,
    ),
    (
        "truncnorm_tails",  # Phi(-4) < 0.0018: the quantile's tail region is reachable
        lambda s, **k: fastinit.truncated_normal(s, 0.0, 1.0, -4.0, 1.0, **k),
        distributions.TRUNCNORM,
    ),
    (
        "truncnorm_one_sided",
        lambda s, **k: fastinit.truncated_normal(s, 1.0, 2.0, -math.inf, 0.5, **k),
        distributions.TRUNCNORM,
    ),
    (
        "truncnorm_tiny_std",  # absolute bounds 1000 std away: exactly N(0, 0.002**2)
        lambda s, **k: fastinit.truncated_normal(s, 0.0, 0.002, -2.0, 2.0, **k),
        distributions.TRUNCNORM,
    ),
    (
        "truncnorm_far_right",  # beyond ~11 sigma: the float64 log-space tail form
        lambda s, **k: fastinit.truncated_normal(s, 0.0, 1.0, 12.0, 14.0, **k),
        distributions.TRUNCNORM_TAIL,
    ),
    (
        "truncnorm_far_left",
        lambda s, **k: fastinit.truncated_normal(s, 3.0, 0.5, -math.inf, -3.0, **k),
        distributions.TRUNCNORM_TAIL,
    ),
]
SAMPLER_IDS = [row[0] for row in SAMPLERS]
SAMPLER = {row[0]: row[1] for row in SAMPLERS}
KEY = dict(seed=7, name="layers.0.w")


def both(sampler, shape, **kwargs):
    """(CUDA result, CPU result) of the same call."""
    call = SAMPLER[sampler] if isinstance(sampler, str) else sampler
    return call(shape, device="cuda", **KEY, **kwargs), call(shape, **KEY, **kwargs)


@pytest.fixture
def launched(monkeypatch):
    """The (dist, kind, plan steps) of every fill launched, in order."""
    calls = []
    fill = backend.fill

    def recording(out, plan, dist, params, key, **kwargs):
        calls.append((int(dist), kwargs["kind"], plan.src_step, plan.dst_step))
        return fill(out, plan, dist, params, key, **kwargs)

    monkeypatch.setattr(backend.launch, "fill", recording)
    return calls


def test_the_table_reaches_every_distribution_code(launched):
    codes = {
        v for k, v in vars(distributions).items() if k.isupper() and isinstance(v, int) and k != "N_PARAMS"
    }
    for _, call, expected in SAMPLERS:
        launched.clear()
        call((3,), device="cuda", **KEY)
        assert [c[0] for c in launched] == [expected]
    assert {row[2] for row in SAMPLERS} == codes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLER_IDS)
def test_whole_tensor_matches_cpu(sampler, dtype, host_bytes):
    # 3 x 70: runs that start and end inside tiles of 64 (32 for float64)
    gpu, cpu = both(sampler, (3, 70), dtype=dtype)
    assert gpu.device == "cuda:0" and gpu.dtype == cpu.dtype and gpu.shape == cpu.shape
    assert host_bytes(gpu) == cpu.tobytes()


@pytest.mark.parametrize("shape", [(), (1,), (0,), (4, 0, 3), (131,), (2, 3, 17)])
def test_shapes(shape, host_bytes):
    gpu, cpu = both("normal", shape)
    assert gpu.shape == cpu.shape and host_bytes(gpu) == cpu.tobytes()


INDEXES = [
    (slice(None, None, -1), slice(None, None, 3)),  # negative and positive steps
    (slice(4, 1, -2), slice(5, 60, 7)),
    (2, slice(None)),  # an int drops a dimension
    (Ellipsis, 33),
    (slice(1, 4), slice(9, 69)),  # contiguous runs starting mid-tile
    (-1, -1),  # one element
    (slice(2, 2), slice(None)),  # empty
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("index", INDEXES, ids=lambda i: repr(i).replace(" ", ""))
@pytest.mark.parametrize("sampler", ["uniform", "normal", "truncnorm_tails", "truncnorm_far_left"])
def test_index_matches_cpu(sampler, index, dtype, host_bytes):
    gpu, cpu = both(sampler, (6, 70), index=index, dtype=dtype)
    assert gpu.shape == cpu.shape and host_bytes(gpu) == cpu.tobytes()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_index_16_bit(dtype, host_bytes):
    for index in INDEXES[:3]:  # stepped, so each element is stored alone, rounded on the device
        gpu, cpu = both("truncnorm_tails", (6, 70), index=index, dtype=dtype)
        assert host_bytes(gpu) == cpu.tobytes(), index


def test_stepped_index_launches_one_item_per_element(launched):
    # the two kernel modes (a work item per Philox block / per element) are both covered above
    fastinit.normal((6, 70), index=(slice(None), slice(None, None, 2)), device="cuda")
    fastinit.normal((6, 70), index=(slice(None), slice(1, 9)), device="cuda")
    assert [c[2:] for c in launched] == [(2, 1), (1, 1)]


HUGE = [
    # (shape, index): only the selected elements are generated; Philox blocks above 2**32
    ((2**40,), (slice(2**38 + 5, 2**38 + 5 + 150),)),
    ((2**40,), (slice(2**40 - 1, 2**36, -(2**33 + 3)),)),
    ((2**21, 2**21), (slice(2**20 + 1, 2**20 + 4), slice(7, 90))),
    ((2**21, 2**21), (slice(None, None, 2**19 + 1), -1)),
    ((3, 2**22, 2**22), (2, slice(2**22 - 3, None), slice(2**21, 2**21 + 40, 3))),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(HUGE)))
def test_offsets_beyond_2_32(case, dtype, host_bytes):
    shape, index = HUGE[case]
    for sampler in ("uniform", "normal", "truncnorm_tails"):
        gpu, cpu = both(sampler, shape, index=index, dtype=dtype)
        assert 0 < cpu.size <= 300
        assert host_bytes(gpu) == cpu.tobytes(), sampler


GEOMETRIES = [(1, 1), (1, 32), (3, 7), (2, 64), (40, 1)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_launch_geometry_does_not_change_the_bytes(dtype, host_bytes):
    calls = [
        ("normal", (3, 70), None),
        ("truncnorm_tails", (6, 70), (slice(None, None, -1), slice(3, None, 5))),
        ("uniform", (2**40,), (slice(2**38 + 11, 2**38 + 100),)),
    ]
    for sampler, shape, index in calls:
        expected = SAMPLER[sampler](shape, index=index, dtype=dtype, **KEY).tobytes()
        for blocks, threads in GEOMETRIES:
            with backend.fixed_geometry(blocks, threads):
                got = SAMPLER[sampler](shape, index=index, dtype=dtype, device="cuda", **KEY)
            assert host_bytes(got) == expected, (sampler, blocks, threads)


def test_geometry_argument_of_fill_array(host_bytes):
    from fastinit import driver

    shape = (5, 37)
    plan = driver._plan(shape, driver._index_dims(None, shape), fastinit.array.c_strides(shape), 0)
    params = np.array([0.0, 1.0, -np.inf, np.inf, 0, 0, 0, 0])
    key = fastinit.derive_key(1, "w").as_array()
    expected = fastinit.normal(shape, seed=1, name="w").tobytes()
    for geometry in GEOMETRIES:
        x = fastinit.FastArray.empty(shape, "float32", device="cuda")
        backend.fill_array(x, plan, distributions.NORMAL, params, key, geometry=geometry)
        assert host_bytes(x) == expected, geometry


def test_fixed_geometry_checks_its_arguments():
    with pytest.raises(ValueError, match="threads=0 must be an int >= 1"):
        with backend.fixed_geometry(1, 0):
            pass


# ---- out= -----------------------------------------------------------------------------------


def _device(cuda, host):
    return cuda.to_device(np.ascontiguousarray(host))


OUT_LAYOUTS = [
    # (id, device buffer shape, view of it the sampler writes, that view's shape)
    ("c_contiguous", (6, 70), lambda a: a, (6, 70)),
    ("transposed", (70, 6), lambda a: a.T, (6, 70)),
    ("strided", (13, 150), lambda a: a[1::2, ::2][:, 3:73], (6, 70)),
    ("negative_strides", (6, 70), lambda a: a[::-1, ::-1], (6, 70)),
    ("column", (70, 3), lambda a: a[:, 1], (70,)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", OUT_LAYOUTS, ids=[o[0] for o in OUT_LAYOUTS])
def test_out_simulated_device_arrays(cuda, layout, dtype):
    _, base_shape, view, shape = layout
    storage = fastinit.resolve_dtype(dtype).numpy_dtype()
    sentinel = np.full(base_shape, 7, storage)
    base = _device(cuda, sentinel)
    out = view(base)
    result = fastinit.truncated_normal(shape, 0.0, 1.0, -4.0, 1.0, out=out, **KEY)
    assert result is out
    expected = fastinit.truncated_normal(shape, 0.0, 1.0, -4.0, 1.0, dtype=dtype, **KEY).numpy()
    host = base.copy_to_host()
    written = view(host)
    assert np.ascontiguousarray(written).tobytes() == np.ascontiguousarray(expected).tobytes()
    untouched = np.ones(base_shape, bool)
    view(untouched)[...] = False
    assert np.all(host[untouched] == sentinel[untouched]), "wrote outside out"


def test_out_with_index_and_negative_strides(cuda):
    base = cuda.device_array((20, 18), np.float32)
    fastinit.normal((40, 30), out=base[::-1, :], index=(slice(None, None, 2), slice(3, 21)), **KEY)
    expected = fastinit.normal((40, 30), **KEY).numpy()[::2, 3:21]
    assert np.array_equal(base.copy_to_host()[::-1], expected)


def test_out_cuda_fastarray(host_bytes):
    out = fastinit.FastArray.empty((6, 70), "float64", device="cuda")
    assert fastinit.normal((6, 70), out=out, **KEY) is out
    assert host_bytes(out) == fastinit.normal((6, 70), dtype="float64", **KEY).tobytes()


class CudaArrayInterface:
    """A CUDA Array Interface producer over simulated device memory (as CuPy's arrays are)."""

    def __init__(self, host, *, read_only=False, strides="numpy", stream=None):
        self.host = host  # keeps the memory alive
        self.__cuda_array_interface__ = {
            "shape": host.shape,
            "typestr": host.dtype.str,
            "data": (host.ctypes.data, read_only),
            "strides": host.strides if strides == "numpy" else strides,
            "version": 3,
            "stream": stream,
        }


class DLPackOnly:
    """A kDLCUDA DLPack producer without __cuda_array_interface__ (delegates to a FastArray)."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def _simulated_memory(cuda, shape, dtype):
    """Host memory the simulator treats as device memory (what a CAI object points to)."""
    return cuda.device_array(shape, dtype)._ary


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_out_cuda_array_interface(cuda, dtype):
    memory = _simulated_memory(cuda, (70, 6), dtype)
    out = CudaArrayInterface(memory.T)  # Fortran-ordered: byte strides in the interface
    fastinit.uniform((6, 70), **KEY, out=out)
    assert memory.T.tobytes() == fastinit.uniform((6, 70), dtype=dtype, **KEY).tobytes()
    dense = _simulated_memory(cuda, (6, 70), dtype)
    fastinit.uniform((6, 70), **KEY, out=CudaArrayInterface(dense, strides=None))
    assert dense.tobytes() == fastinit.uniform((6, 70), dtype=dtype, **KEY).tobytes()


def test_out_cuda_array_interface_errors(cuda):
    memory = _simulated_memory(cuda, (4,), np.float32)
    with pytest.raises(ValueError, match="out is read-only"):
        fastinit.uniform(4, out=CudaArrayInterface(memory, read_only=True))
    overlapping = CudaArrayInterface(memory, strides=(0,))
    with pytest.raises(ValueError, match="out"):
        fastinit.uniform(4, out=overlapping)
    ints = CudaArrayInterface(_simulated_memory(cuda, (4,), np.int32))
    with pytest.raises(TypeError, match="out"):
        fastinit.uniform(4, out=ints)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_out_dlpack_only_producer(dtype, host_bytes):
    target = fastinit.FastArray.empty((6, 70), dtype, device="cuda")
    fastinit.normal((6, 70), 0.0, 0.02, out=DLPackOnly(target), **KEY)
    assert host_bytes(target) == fastinit.normal((6, 70), 0.0, 0.02, dtype=dtype, **KEY).tobytes()


def test_out_dtype_is_taken_from_out(cuda):
    out = cuda.device_array(5, np.float16)
    fastinit.uniform(5, 0.0, 1.0, out=out, **KEY)  # float16 bounds, from out's dtype
    assert out.copy_to_host().tobytes() == fastinit.uniform(5, 0.0, 1.0, dtype="float16", **KEY).tobytes()


def test_out_errors(cuda):
    out = cuda.device_array((3, 4), np.float32)
    with pytest.raises(TypeError, match="out has dtype float32 but dtype=float64 was asked for"):
        fastinit.uniform((3, 4), dtype="float64", out=out)
    with pytest.raises(ValueError, match=r"out has shape \(3, 4\) but the result has shape \(4, 3\)"):
        fastinit.uniform((4, 3), out=out)
    with pytest.raises(ValueError, match="out is host memory but device='cuda' was asked for"):
        fastinit.uniform(3, device="cuda", out=np.zeros(3, np.float32))
    host = fastinit.FastArray.empty(3, "float32")
    with pytest.raises(ValueError, match="out is host memory"):
        fastinit.normal(3, device="cuda:0", out=host)


def test_out_device_must_match(cuda):
    # device="cuda:0" and out on cuda:0 agree; the simulator has one device, so a mismatch is
    # checked on the check the driver makes
    from fastinit import driver

    out = cuda.device_array(3, np.float32)
    fastinit.uniform(3, device="cuda:0", out=out, **KEY)
    f32 = fastinit.resolve_dtype("float32")
    with pytest.raises(ValueError, match="out is on cuda:0 but device='cuda:1' was asked for"):
        driver.check_out(f32, (3,), None, (3,), gpu=0, device="cuda:1")
    driver.check_out(f32, (3,), None, (3,), gpu=0, device="cuda")  # 'cuda': out's own GPU


def test_cpu_out_and_cpu_device_never_touch_the_gpu(launched):
    out = np.zeros(5, np.float32)
    fastinit.normal(5, out=out, **KEY)
    fastinit.normal(5, **KEY)
    assert launched == [] and out.tobytes() == fastinit.normal(5, **KEY).tobytes()


def test_launched_argument_types_are_the_compiled_signatures(monkeypatch, cuda):
    """backend.signatures() (what tests/test_cuda_ptx.py compiles to PTX) lists every argument
    type combination the backend launches with."""
    import numba

    from fastinit import driver

    backend.load()
    seen = set()

    class Recording:
        def __init__(self, name, kernel):
            self.name, self.kernel = name, kernel

        def __getitem__(self, config):
            launch = self.kernel[config]

            def run(*args):
                seen.add((self.name, tuple(numba.typeof(a) for a in args)))
                return launch(*args)

            return run

    for name, kernel in list(backend.compiler.KERNELS.items()):
        monkeypatch.setitem(backend.compiler.KERNELS, name, Recording(name, kernel))
    for dtype in DTYPES:
        for _, call, _ in SAMPLERS:  # the dense kernels, one per distribution
            call((3, 5), dtype=dtype, device="cuda")
        fastinit.normal((3, 5), dtype=dtype, device="cuda", index=(slice(None), slice(None, None, 2)))
        fastinit.eye((3, 5), dtype=dtype, device="cuda")  # host values, copied and scattered
        out = cuda.device_array((5, 3), fastinit.resolve_dtype(dtype).numpy_dtype()).T
        fastinit.uniform((3, 5), out=out)
    compute = {"float32": np.float32, "float64": np.float64}
    for dtype in DTYPES:  # device values (orthogonal's Q), rounded on the device
        values = cuda.to_device(np.ones((3, 5), compute.get(dtype, np.float32)))
        driver.deliver(values, (3, 5), dtype=dtype, device="cuda")
    declared = {(name, tuple(sig)) for name, sigs in backend.signatures().items() for sig in sigs}
    assert seen == declared, (seen - declared, declared - seen)


def test_device_values_whose_size_1_dims_have_any_stride(cuda):
    """deliver() takes dense device values whatever the strides of their size-1 dimensions:
    torch calls a tensor contiguous regardless of them (torch.linalg.qr's (n, 1) Q has strides
    (1, n), and .contiguous() leaves it so), as orthogonal((n, 1), qr="torch") delivers."""
    memory = _simulated_memory(cuda, (6,), np.float32)
    memory[:] = np.arange(6, dtype=np.float32)

    def values(shape, strides):
        array = CudaArrayInterface(memory.reshape(shape), strides=strides)
        array.shape = shape  # (as torch tensors have)
        return array

    x = fastinit.driver.deliver(values((6, 1), (4, 24)), (6, 1), device="cuda")
    assert np.array_equal(x.copy_to_host(), memory.reshape(6, 1))
    with pytest.raises(AssertionError, match="dense"):
        fastinit.driver.deliver(values((3, 2), (4, 12)), (3, 2), device="cuda")


# contiguous runs (start, length) of a 1-D tensor of 2**40: inside one tile, across tile
# edges, whole tiles, beyond 2**32
RUNS = [(0, 1), (0, 64), (5, 59), (5, 60), (63, 2), (64, 64), (17, 300), (2**33 + 7, 130)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_kernels_equal_the_general_ones(dtype, host_bytes, monkeypatch):
    """A contiguous run goes to the lean fill32_dense / fill64_dense kernels; they give the
    bytes of the general kernels and of the CPU, wherever the run starts and ends."""
    names = []
    backend.load()
    for name, kernel in list(backend.compiler.KERNELS.items()):
        monkeypatch.setitem(backend.compiler.KERNELS, name, _Recorded(name, kernel, names))
    general = "fill64" if dtype == "float64" else "fill32"
    for sampler, _, dist in SAMPLERS:
        kind = backend.launch.store_kind(fastinit.resolve_dtype(dtype))
        dense = backend.device_code.dense_name(dtype == "float64", dist, kind)  # one per distribution, kind
        for start, length in RUNS:
            index = (slice(start, start + length),)
            names.clear()
            gpu, cpu = both(sampler, (2**40,), index=index, dtype=dtype)
            assert names == [dense]
            with backend.general_kernels_only():
                names.clear()
                general_result = SAMPLER[sampler]((2**40,), index=index, dtype=dtype, device="cuda", **KEY)
                assert names == [general]
            assert host_bytes(gpu) == host_bytes(general_result) == cpu.tobytes(), (sampler, start, length)


class _Recorded:
    """A kernel that records its name in ``names`` when launched."""

    def __init__(self, name, kernel, names):
        self.name, self.kernel, self.names = name, kernel, names

    def __getitem__(self, config):
        launch = self.kernel[config]

        def run(*args):
            self.names.append(self.name)
            return launch(*args)

        return run


def test_launches_hide_numba_cudas_low_occupancy_warning():
    """numba-cuda warns at every launch of fewer than 128 blocks (on a GPU; the simulator does
    not): fastinit sizes small grids on purpose, so its launches silence that one warning and
    no other."""
    import warnings

    class Kernel:
        def __getitem__(self, config):
            def run(*args):
                warnings.warn(
                    "Grid size 3 will likely result in GPU under-utilization due to low occupancy.",
                    stacklevel=2,
                )
                warnings.warn("something else", UserWarning, stacklevel=2)

            return run

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend.launch._launch(Kernel(), (3, 256), None)
    assert [str(w.message) for w in caught] == ["something else"]


def _recorded_fills(monkeypatch, call, dtype):
    """(dist, params, key, kind) of the fills a sampler call launches (tiny, on the device)."""
    fills = []
    fill = backend.fill

    def recording(out, plan, dist, params, key, **kwargs):
        fills.append((int(dist), np.array(params), np.array(key), kwargs["kind"]))
        return fill(out, plan, dist, params, key, **kwargs)

    monkeypatch.setattr(backend.launch, "fill", recording)
    call((2,), dtype=dtype, device="cuda", **KEY)
    monkeypatch.setattr(backend.launch, "fill", fill)
    return fills


# (src_base, n): a tile is 64 float32 values (32 float64); runs shorter than a tile, ending
# exactly on a tile edge, one past it, one element short of a lane's last slot (0, 50), one
# short of a whole tile (0, 63), (1, 126), at Philox blocks beyond 2**32 and near 2**60
DENSE_RUNS = [(0, 1), (63, 1), (1, 63), (17, 47), (17, 48), (31, 33), (32, 32), (64, 65), (0, 50), (7, 107),
              (0, 63), (1, 126), (2**34 + 61, 3), (2**60 + 40, 24)]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_kernels_at_tile_edges_destination_offsets_and_size_1_outer(dtype, monkeypatch):
    """fill() sends a plan whose outer dimensions all have size 1 (any strides) to the dense
    kernels; they write exactly out[dst_base : dst_base + n], the CPU's bytes, whatever the
    geometry, and nothing around it."""
    storage = np.uint16 if dtype in ("float16", "bfloat16") else fastinit.resolve_dtype(dtype).numpy_dtype()
    for _, call, _ in SAMPLERS[:3] + SAMPLERS[6:7]:
        [(dist, params, key, kind)] = _recorded_fills(monkeypatch, call, dtype)
        for i, (start, n) in enumerate(DENSE_RUNS):
            outer = [(), (1,), (1, 1)][i % 3]
            plan = FillPlan(
                outer=outer, src_strides=(-7, 1000)[: len(outer)], dst_strides=(5, 3)[: len(outer)],
                src_base=start, dst_base=3 + i, n=n, src_step=1, dst_step=1,
            )  # fmt: skip
            sentinel = np.full(plan.dst_base + n + 5, 7, storage)
            expected = sentinel.copy()
            cpu_out = expected.view(np.float16) if dtype == "float16" else expected
            fastinit.backends.cpu.fill(cpu_out, plan, dist, params, key)
            for geometry in [(1, 1), (2, 3), (1, 32)]:
                out = backend.device_code.cuda.to_device(sentinel)
                backend.fill(out, plan, dist, params, key, kind=kind, index=0, geometry=geometry)
                assert out.copy_to_host().tobytes() == expected.tobytes(), (dist, start, n, outer, geometry)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_out_at_an_element_offset(cuda, dtype):
    """out= a slice of a simulated device array, and a __cuda_array_interface__ at an offset
    pointer shaped like torch's (n, 1) with any stride on the size-1 dimension: the dense
    kernels write those elements and no other."""
    storage = fastinit.resolve_dtype(dtype).numpy_dtype()
    index = (slice(2**33 + 5, 2**33 + 82),)  # 77 values, starting and ending mid-tile
    expected = fastinit.normal((2**40,), index=index, dtype=dtype, **KEY).numpy().tobytes()
    base = cuda.to_device(np.full(100, 7, storage))
    fastinit.normal((2**40,), index=index, out=base[9:86], **KEY)
    host = base.copy_to_host()
    assert host[9:86].tobytes() == expected
    assert np.concatenate([host[:9], host[86:]]).tobytes() == np.full(23, 7, storage).tobytes()
    if dtype == "bfloat16":  # (the CUDA Array Interface has no bfloat16 typestr)
        return
    memory = _simulated_memory(cuda, (100,), storage)
    memory[:] = 7
    column = memory[11:88].reshape(77, 1)
    out = CudaArrayInterface(column, strides=(column.itemsize, 12345 * column.itemsize))
    fastinit.normal((2**40, 1), index=index, out=out, **KEY)
    assert memory[11:88].tobytes() == expected
    assert np.concatenate([memory[:11], memory[88:]]).tobytes() == np.full(23, 7, storage).tobytes()


# ---- several runs in the dense kernels (a column shard: one run per row) ------------------------

# (shape, index) with unit steps and several runs: runs starting mid-tile, of two elements, a
# 3-D tensor (two outer dimensions), runs in Philox blocks beyond 2**32, a reversed row order
MULTI_RUNS = [
    ((5, 300), (slice(None), slice(37, 250))),
    ((4, 64), (slice(1, 4), slice(62, 64))),
    ((3, 4, 150), (slice(None), slice(1, 3), slice(5, 149))),
    ((2**20, 2**20), (slice(2**19, 2**19 + 3), slice(2**20 - 70, None))),
    ((6, 130), (slice(None, None, -2), slice(3, 100))),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_kernels_fill_several_runs(dtype, host_bytes, monkeypatch):
    """Plans of several contiguous runs go to the dense kernels (one run per grid row), with the
    CPU's bytes at any geometry. DENSE_MIN_ITEMS is lowered so that the simulator's small
    shapes take that path (on a GPU only runs of >= 128 Philox blocks do)."""
    monkeypatch.setattr(backend.launch, "DENSE_MIN_ITEMS", 1)
    names = []
    backend.load()
    for name, kernel in list(backend.compiler.KERNELS.items()):
        monkeypatch.setitem(backend.compiler.KERNELS, name, _Recorded(name, kernel, names))
    for sampler, _, dist in [SAMPLERS[i] for i in (0, 1, 3, 6)]:
        dense = backend.device_code.dense_name(
            dtype == "float64", dist, backend.launch.store_kind(fastinit.resolve_dtype(dtype))
        )
        for shape, index in MULTI_RUNS:
            expected = SAMPLER[sampler](shape, index=index, dtype=dtype, **KEY).tobytes()
            for geometry in [None, (2, 3)] if sampler != "uniform" else [None, (1, 1), (2, 3), (3, 32)]:
                names.clear()
                with backend.fixed_geometry(*geometry) if geometry else _nothing():
                    got = SAMPLER[sampler](shape, index=index, dtype=dtype, device="cuda", **KEY)
                assert names == [dense], (sampler, shape, index, names)
                assert host_bytes(got) == expected, (sampler, shape, index, geometry)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_runs_go_to_the_dense_kernels_when_long_enough(monkeypatch):
    names = []
    backend.load()
    for name, kernel in list(backend.compiler.KERNELS.items()):
        monkeypatch.setitem(backend.compiler.KERNELS, name, _Recorded(name, kernel, names))
    long_runs = (slice(None), slice(100, 100 + 64 * backend.DENSE_MIN_ITEMS // 16))  # 128 blocks a row
    for index, expected in [(long_runs, "fill32_dense_normal"), ((slice(None), slice(1, 9)), "fill32"),
                            ((slice(None), slice(None, None, 2)), "fill32"), ((1, slice(1, 9)), "fill32_dense_normal")]:  # fmt: skip
        names.clear()
        fastinit.normal((2, 4096), index=index, device="cuda")
        assert names == [expected], index


def test_dense_runs_into_out_with_row_padding(cuda, host_bytes, monkeypatch):
    """out= a column block of a wider device array (destination rows 700 apart, source rows 300
    apart): the dense kernels write those elements only."""
    monkeypatch.setattr(backend.launch, "DENSE_MIN_ITEMS", 1)
    base = cuda.to_device(np.full((4, 700), 7, np.float32))
    index = (slice(None), slice(20, 280))
    fastinit.uniform((4, 300), -1.0, 1.0, index=index, out=base[:, 400:660], **KEY)
    host = base.copy_to_host()
    assert host[:, 400:660].tobytes() == fastinit.uniform((4, 300), -1.0, 1.0, index=index, **KEY).tobytes()
    host[:, 400:660] = 7
    assert (host == 7).all()


def test_plan_layouts_are_uploaded_once_per_device(monkeypatch):
    """A plan's outer layout is copied to the device once (on the launch stream, waited for),
    then reused (a model's tensors share layouts); one-run plans pass none, whatever the
    strides of their size-1 dimensions."""
    backend.load()
    monkeypatch.setattr(backend.launch, "_DESCS", {})
    uploads = []
    to_device = backend.device_code.cuda.to_device
    monkeypatch.setattr(
        backend.device_code.cuda,
        "to_device",
        lambda a, *args, **kw: uploads.append(a.tolist()) or to_device(a, *args, **kw),
    )
    plan = FillPlan(outer=(3,), src_strides=(300,), dst_strides=(260,), src_base=20,
                                          dst_base=0, n=260, src_step=1, dst_step=1)  # fmt: skip
    one_run = dataclasses.replace(plan, outer=(1, 1), src_strides=(5, 6), dst_strides=(7, 8))
    for p in (plan, plan, one_run, one_run, dataclasses.replace(plan, dst_strides=(261,))):
        args, n_outer = backend.launch._plan_args(p, 0, backend.device_code.cuda.default_stream())
        assert args[1] == (0 if p is one_run else 1) and n_outer == math.prod(p.outer)
    assert uploads == [[3, 300, 260], [0], [3, 300, 261]]


def test_plan_layouts_of_a_destroyed_context_are_uploaded_again(monkeypatch):
    """A cached layout belongs to the GPU context it was uploaded in: after numba.cuda.close()
    (a new context) it is uploaded again, not read from freed memory. (Found in review.)"""
    backend.load()
    monkeypatch.setattr(backend.launch, "_DESCS", {})
    monkeypatch.setattr(backend.launch, "is_simulator", lambda: False)  # the simulator keeps no contexts
    contexts = [object()]
    monkeypatch.setattr(backend.device_code.cuda, "current_context", lambda: contexts[-1])
    stream = backend.device_code.cuda.default_stream()
    first = backend.launch._desc(0, (3, 300, 260), stream)
    assert backend.launch._desc(0, (3, 300, 260), stream) is first
    contexts.append(object())  # close() and a new context
    again = backend.launch._desc(0, (3, 300, 260), stream)
    assert again is not first and again.copy_to_host().tolist() == [3, 300, 260]


def test_runs_geometry_respects_cudas_grid_limits():
    backend.load()
    for geometry in (None, (100_000, 32), (3, 7)):
        (x, y), threads = backend.launch._runs_geometry(0, 10**6, 10**7, geometry)
        assert 1 <= y <= 65535 and x >= 1 and threads >= 1, (geometry, x, y)
    (x, y), _ = backend.launch._runs_geometry(0, 16, 5, None)  # a few short runs: one block per run
    assert (x, y) == (1, 5)
    assert backend.launch._runs_geometry(0, 16, 5, (4, 32)) == ((4, 4), 32)


def test_plan_layouts_are_uploaded_on_the_launch_stream_and_waited_for(monkeypatch):
    backend.load()
    monkeypatch.setattr(backend.launch, "_DESCS", {})
    events = []

    class Stream:
        def synchronize(self):
            events.append("synchronize")

    stream = Stream()
    monkeypatch.setattr(
        backend.device_code.cuda, "to_device", lambda a, stream=None: events.append(("copy", stream)) or a
    )
    backend.launch._desc(0, (2, 5, 7), stream)
    backend.launch._desc(0, (2, 5, 7), stream)  # cached: neither copied nor waited for
    assert events == [("copy", stream), "synchronize"]


def _random_case(rng):
    """A random (shape, index) of 1-3 dimensions: mostly unit-step slices (runs of rows, column
    blocks), some steps of 2, 3 or negative, some ints, a last dimension far beyond 2**32
    elements at times (only the selected elements are generated), rarely empty."""
    ndim = int(rng.integers(1, 4))
    shape, index = [], []
    for d in range(ndim):
        last = d == ndim - 1
        n = int(rng.choice([5, 70, 300, 2**34 + 3])) if last else int(rng.integers(1, 7))
        shape.append(n)
        if rng.random() < (0.05 if last else 0.15):
            index.append(int(rng.integers(-min(n, 10), min(n, 10))) if n > 1 else 0)
            continue
        step = int(rng.choice([1, 1, 1, 1, 1, 2, 3, -1, -2]))
        length = 0 if rng.random() < 0.05 else int(rng.integers(1, min(n, 250) + 1))
        start = int(rng.integers(0, n - length + 1)) if n < 2**31 else n - length - int(rng.integers(0, 50))
        stop = start + length
        index.append(
            slice(start, stop, step) if step > 0 else slice(stop - 1, start - 1 if start else None, step)
        )
    return tuple(shape), tuple(index)


@pytest.mark.parametrize("dense_min_items", [1, None])
def test_random_plans_match_the_cpu(dense_min_items, host_bytes, monkeypatch):
    """60 random (shape, index, dtype, sampler, geometry) cases per routing threshold (seed
    20261204): the CUDA kernels give the CPU's bytes."""
    if dense_min_items is not None:
        monkeypatch.setattr(backend.launch, "DENSE_MIN_ITEMS", dense_min_items)
    rng = np.random.default_rng(20261204 + (dense_min_items or 0))
    for _ in range(60):
        shape, index = _random_case(rng)
        dtype = DTYPES[int(rng.integers(len(DTYPES)))]
        sampler = SAMPLER_IDS[int(rng.integers(len(SAMPLER_IDS)))]
        geometry = [None, (1, 1), (2, 3), (3, 32)][int(rng.integers(4))]
        expected = SAMPLER[sampler](shape, index=index, dtype=dtype, **KEY).tobytes()
        with backend.fixed_geometry(*geometry) if geometry else _nothing():
            got = SAMPLER[sampler](shape, index=index, dtype=dtype, device="cuda", **KEY)
        assert host_bytes(got) == expected, (shape, index, dtype, sampler, geometry)
