"""Hostile arguments give one-line errors naming the argument, never tracebacks (issue #14 item 17).

In the API: ValueError / TypeError / OverflowError (MemoryError for a buffer that cannot be
allocated) whose message names the argument the user passed; on the command line
``fastinit: error: ...`` on one line and exit status 2.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastinit
from fastinit import benchmark as bm
from fastinit import driver
from fastinit.cli import main

ONE_LINE_ERRORS = (ValueError, TypeError, OverflowError, MemoryError)


def _one_line_error(call, *names):
    """Run ``call``; return its error message after checking it is one line naming one of ``names``."""
    with pytest.raises(ONE_LINE_ERRORS) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    assert any(n in message for n in names), f"{message!r} names none of {names}"
    return message


# ---- the command line -------------------------------------------------------------------------

CLI_ERRORS = [
    (["demo", "--rows", "-1"], "--rows -1"),
    (["demo", "--cols", "0"], "--cols 0"),
    (["demo", "--rows", str(2**40), "--cols", str(2**40)], "--rows"),
    (["demo", "--rows", str(2**70)], "--rows"),
    (["demo", "--rows", "300000", "--cols", "300000"], "--rows"),  # 360 GB: more than any test machine
    (["demo", "--seed", "-1"], "--seed -1"),
    (["demo", "--seed", str(2**64)], "--seed"),
    (["bench", "--size", "2**99"], "--size"),
    (["bench", "--size", "10**999999999"], "--size"),  # refused before the power is computed
    (["bench", "--size", "2**-1"], "--size"),
    (["bench", "--size", "1e300"], "--size"),
    (["bench", "--size", "0"], "--size"),
    (["bench", "--size", "-5"], "--size"),
    (["bench", "--size", "99999999999G"], "--size"),
    (["bench", "--size", "2**50"], "--size"),  # 8 PiB of float64: more than the machine's memory
    (["bench", "--size", "nan"], "--size"),
    (["bench", "--size", ""], "--size"),
    (["bench", "--rounds", "0"], "--rounds 0"),
    (["bench", "--rounds", "-3"], "--rounds -3"),
    (["bench", "--rounds", str(10**20)], "--rounds"),
]


@pytest.mark.parametrize("argv,message", CLI_ERRORS, ids=[" ".join(a)[:40] for a, _ in CLI_ERRORS])
def test_cli_refuses_bad_numbers_in_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastinit: error: ") and err.count("\n") == 1, err
    assert message in err, err


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_bench_refuses_a_directory_as_output(capsys, tmp_path, option):
    cheap = [
        "--size",
        "1K",
        "--peers",
        "none",
        "--samplers",
        "uniform",
        "--dtypes",
        "float32",
        "--rounds",
        "1",
    ]
    assert main(["bench", *cheap, option, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"fastinit: error: {option} {tmp_path}: is a directory\n"
    assert list(tmp_path.parent.glob(f"{tmp_path.name}*")) == [tmp_path]  # nothing written beside it


def test_parse_count_limits():
    assert bm.parse_count("2**20") == 2**20
    assert bm.parse_count("64M") == 64 << 20
    for text in ("2**99", "2**63", "10**999999999", "9" * 30, "1e30", "2**-1", "0", "-1", "", "2**", "**3"):
        _one_line_error(lambda text=text: bm.parse_count(text), repr(text))


# ---- shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        {3: 4},
        {3},
        frozenset({2}),
        "34",
        b"34",
        3.0,
        2.7,
        True,
        np.array([2.0, 3.0]),
        None,
        np.array([[2, 3]]),
        (2, 3.0),
        (2, None),
        np.float64(3),
    ],  # fmt: skip
    ids=repr,
)
def test_non_sequence_shapes_are_refused(shape):
    _one_line_error(lambda: fastinit.uniform(shape), "shape")


@pytest.mark.parametrize("shape", [5, (2, 3), [2, 3], range(2, 4), np.array([2, 3]), (np.int64(2), 3), ()])
def test_sequence_shapes_are_accepted(shape):
    expected = (5,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    assert driver.check_shape(shape) == expected
    assert fastinit.uniform(shape).shape == expected


@pytest.mark.parametrize("shape", [(2**40, 2**40), (2**63,), (2**31, 2**31, 4), (2**62, 2**62, 0), (2**64,)])
def test_shapes_beyond_int64_elements_are_refused(shape):
    message = _one_line_error(lambda: fastinit.uniform(shape), "shape")
    assert "elements" in message and "more than 2**63 - 1" in message


@pytest.mark.parametrize("shape", [(2, 2**60), (2**30, 2**31), (2**31, 2**31, 0), (2, 2**44)])  # 128 TiB last
@pytest.mark.parametrize(
    "make",
    [lambda s: fastinit.uniform(s), lambda s: fastinit.normal(s, dtype="float64"),
     lambda s: fastinit.FastArray.empty(s, "float32"), lambda s: fastinit.zeros(s),
     lambda s: fastinit.xavier_uniform(s)],
)  # fmt: skip
def test_shapes_that_cannot_be_allocated_are_refused(shape, make):
    _one_line_error(lambda: make(shape), "shape=")


def test_a_slice_of_a_huge_tensor_still_works():
    x = np.asarray(fastinit.uniform((2**40, 2**20), index=(5, slice(0, 4)), seed=3, name="w"))
    assert x.shape == (4,) and np.all((x >= 0) & (x < 1))


# ---- index --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "index",
    [2**63, -(2**63) - 1, 2**64 + 1, np.uint64(2**63 + 1), (0, 2**70), 1.0, [1], "a", (..., ...)],
    ids=repr,
)
def test_bad_index_is_refused(index):
    _one_line_error(lambda: fastinit.uniform((3, 4), index=index), "index")


@pytest.mark.parametrize(
    "index",
    [
        slice(2**64, None),
        slice(-(2**70), 2**70, 2**70),
        slice(0, 3, 2**63),
        slice(None, None, -(2**64)),
        (slice(5, None, 2**70), slice(None)),
        (slice(None), slice(0, 4, 2**64)),
    ],  # fmt: skip
    ids=repr,
)
def test_huge_slice_bounds_act_as_numpy(index):
    full = np.asarray(fastinit.uniform((3, 4), seed=1, name="w"))
    part = np.asarray(fastinit.uniform((3, 4), seed=1, name="w", index=index))
    assert part.tobytes() == full[index].tobytes()
    normalized = driver.normalized_index((3, 4), index)
    assert full[normalized].tobytes() == full[index].tobytes()
    for item in normalized:  # every bound fits an int64 (numpy, torch and JAX slice with them)
        for v in (item.start, item.stop, item.step) if isinstance(item, slice) else (item,):
            assert v is None or -(2**63) <= v < 2**63
    coords = driver.index_coordinates((3, 4), index)
    assert [c.dtype for c in coords] == [np.int64, np.int64]
    eye = np.asarray(fastinit.eye((3, 4), index=index))
    assert eye.tobytes() == np.eye(3, 4, dtype=np.float32)[index].tobytes()


# ---- name ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["\ud800", "a\udfffb", b"w", 3, 1.5, ["w"]], ids=repr)
def test_bad_names_are_refused(name):
    _one_line_error(lambda: fastinit.uniform(3, name=name), "name")
    _one_line_error(lambda: fastinit.derive_key(0, name), "name")


def test_non_ascii_names_still_work():
    assert fastinit.derive_key(0, "λ.weight") != fastinit.derive_key(0, "l.weight")


# ---- schemes: errors name the user's parameter ----------------------------------------------------

SCHEME_ERRORS = [
    (lambda: fastinit.kaiming_uniform((3, 3), a=1e308), "a="),
    (lambda: fastinit.kaiming_normal((3, 3), a=1e200), "a="),
    (lambda: fastinit.kaiming_uniform((3, 3), a=10**400), "a="),
    (lambda: fastinit.kaiming_uniform((3, 3), a=math.nan), "a="),
    (lambda: fastinit.kaiming_uniform((3, 3), a="x"), "a"),
    (lambda: fastinit.kaiming_uniform((3, 3), a=1e100), "a="),  # the bound underflows to 0 in float32
    (lambda: fastinit.xavier_uniform((3, 3), gain=1e308), "gain="),
    (lambda: fastinit.xavier_normal((3, 3), gain=1e308), "gain="),
    (lambda: fastinit.xavier_uniform((3, 3), gain=1e39), "gain="),
    (lambda: fastinit.xavier_normal((3, 3), gain=1e-320), "gain="),
    (lambda: fastinit.xavier_uniform((3, 3), gain=1e-45, dtype="float16"), "gain="),
    (lambda: fastinit.variance_scaling((3, 3), scale=5e-324), "scale="),
    (lambda: fastinit.variance_scaling((3, 3), 5e-324, distribution="uniform"), "scale="),
    (lambda: fastinit.variance_scaling((3, 3), 1e308, distribution="uniform"), "scale="),
    (lambda: fastinit.variance_scaling((3, 3), 1e308), "scale="),
    (lambda: fastinit.variance_scaling((3, 3), 1e308, distribution="normal"), "scale="),
    (lambda: fastinit.variance_scaling((3, 3), 1e-90, mode="fan_avg", dtype="float32"), "scale="),
    (lambda: fastinit.variance_scaling((3, 3), mode=["fan_in"]), "mode"),
    (lambda: fastinit.variance_scaling((3, 3), distribution=None), "distribution"),
]


@pytest.mark.parametrize("call,argname", SCHEME_ERRORS, ids=[str(i) for i in range(len(SCHEME_ERRORS))])
def test_scheme_errors_name_the_users_parameter(call, argname):
    message = _one_line_error(call, argname)
    for internal in ("low=", "high=", "lower", "upper", "std=", "bound"):
        assert not message.startswith(internal), message


@pytest.mark.parametrize(
    "call",
    [
        lambda: fastinit.variance_scaling((3, 3), scale=1e-30, dtype="float64"),
        lambda: fastinit.xavier_uniform((3, 3), gain=1e30),
        lambda: fastinit.kaiming_normal((3, 3), a=1e10),
    ],  # fmt: skip
)
def test_extreme_but_representable_scheme_parameters_work(call):
    x = np.asarray(call(), dtype=np.float64)
    assert np.all(np.isfinite(x)) and np.any(x != 0)


def test_compute_fans_validates_its_shape():
    _one_line_error(lambda: fastinit.compute_fans((2.7, 3)), "shape")
    _one_line_error(lambda: fastinit.compute_fans({3: 4}), "shape")
    _one_line_error(lambda: fastinit.compute_fans((3, 3), layout=np.array([1.0, 2.0])), "layout")
    _one_line_error(lambda: fastinit.compute_fans((3, 3), layout="tf"), "layout")
    assert fastinit.compute_fans([4, 3]) == (3, 4)


# ---- __dlpack__ ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,argname",
    [
        ({"max_version": ()}, "max_version"),
        ({"max_version": (1,)}, "max_version"),
        ({"max_version": "ab"}, "max_version"),
        ({"max_version": 3}, "max_version"),
        ({"max_version": (1.5, 0)}, "max_version"),
        ({"max_version": (True, 0)}, "max_version"),
        ({"max_version": (-1, 0)}, "max_version"),
        ({"dl_device": ()}, "dl_device"),
        ({"dl_device": "cpu"}, "dl_device"),
        ({"dl_device": (1.0, 0)}, "dl_device"),
        ({"dl_device": (1, 0, 0)}, "dl_device"),
        ({"stream": "x"}, "stream"),
        ({"copy": "x"}, "copy"),
        ({"copy": 1}, "copy"),
    ],  # fmt: skip
    ids=repr,
)
def test_dlpack_refuses_malformed_arguments(kwargs, argname):
    x = fastinit.uniform(3)
    with pytest.raises((TypeError, ValueError, BufferError)) as info:
        x.__dlpack__(**kwargs)
    assert argname in str(info.value) and "\n" not in str(info.value)


def test_dlpack_well_formed_arguments_still_work():
    x = fastinit.uniform(3, seed=2)
    for kwargs in ({}, {"max_version": (1, 0)}, {"max_version": (0, 8)}, {"dl_device": (1, 0)},
                   {"copy": True}, {"copy": False}, {"max_version": (np.int64(1), 2)}):  # fmt: skip
        x.__dlpack__(**kwargs)
    assert np.from_dlpack(x).tobytes() == x.tobytes()


# ---- fastinit.torch.init_module -----------------------------------------------------------------


@pytest.mark.parametrize("thing", ["tensor", None, "list", 3], ids=repr)
def test_init_module_refuses_non_modules(thing):
    torch = pytest.importorskip("torch")
    import fastinit.torch as ft

    value = {"tensor": torch.empty(3, 3), "list": [torch.nn.Linear(2, 2)]}.get(thing, thing)
    message = _one_line_error(lambda: ft.init_module(value), "module")
    assert type(value).__name__ in message


# ---- the battery: every public sampler against hostile values ---------------------------------------

HOSTILE = [math.nan, math.inf, -math.inf, -1, -1.0, 0, 1e308, -1e308, 5e-324, 2**70, -(2**70), True, None,
           "x", "", b"x", [], (), {}, [1.5], object(), np.float32(np.nan), np.array([1.0, 2.0]),
           10**400]  # fmt: skip

# (entry point, keyword arguments that work, arguments to make hostile one at a time)
SAMPLERS = {
    "uniform": ({"low": -1.0, "high": 1.0}, ["low", "high"]),
    "normal": ({"mean": 0.0, "std": 0.5}, ["mean", "std"]),
    "truncated_normal": ({"mean": 0.0, "std": 1.0, "a": -1.0, "b": 1.0}, ["mean", "std", "a", "b"]),
    "constant": ({"value": 0.5}, ["value"]),
    "zeros": ({}, []),
    "ones": ({}, []),
    "eye": ({}, []),
    "orthogonal": ({"gain": 1.0}, ["gain"]),
    "sparse": ({"sparsity": 0.5, "std": 0.1}, ["sparsity", "std"]),
    "variance_scaling": (
        {"scale": 1.0, "mode": "fan_in", "distribution": "normal"},
        ["scale", "mode", "distribution"],
    ),
    "xavier_uniform": ({"gain": 1.0}, ["gain"]),
    "xavier_normal": ({"gain": 1.0}, ["gain"]),
    "kaiming_uniform": (
        {"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"},
        ["a", "mode", "nonlinearity"],
    ),
    "kaiming_normal": ({"a": 0.0, "mode": "fan_in", "nonlinearity": "relu"}, ["a", "mode", "nonlinearity"]),
    "lecun_uniform": ({}, []),
    "lecun_normal": ({}, []),
    "values": ({"data": fastinit.schemes.encode_values(np.arange(12.0))}, ["data"]),
}
COMMON = ["shape", "seed", "name", "dtype", "device", "index", "out"]


def _call(entry, argname, value):
    params, _ = SAMPLERS[entry]
    kwargs = dict(params)
    shape = (4, 3)
    if argname == "shape":
        shape = value
    else:
        kwargs[argname] = value
    return getattr(fastinit, entry)(shape, **kwargs)


def _names(message, argname):
    """Whether message names argname (torch's own messages: "Mode ...", "... 2 dimensions")."""
    names = (argname, "dimension") if argname == "shape" else (argname,)
    return any(n.lower() in message.lower() for n in names)


def _check_outcome(entry, argname, value):
    try:
        result = _call(entry, argname, value)
    except ONE_LINE_ERRORS as error:
        message = str(error)
        assert "\n" not in message, (entry, argname, value, message)
        assert _names(message, argname), (entry, argname, value, message)
        return
    # constant(value=inf) fills with inf, as asked; a finite value beyond the dtype is refused
    explicit_inf = isinstance(value, float) and math.isinf(value)
    if argname == "out" or (entry == "constant" and argname == "value" and explicit_inf):
        return
    values = np.asarray(result)
    assert np.all(np.isfinite(values)), (entry, argname, value)


def test_battery_covers_every_sampler():
    public = {n for n in fastinit.__all__ if inspect.isfunction(getattr(fastinit, n))
              and "shape" in inspect.signature(getattr(fastinit, n)).parameters}  # fmt: skip
    public -= {"compute_fans", "dirac", "delta_orthogonal"}  # they need shapes of their own: below
    public -= {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal"}  # aliases
    assert public == set(SAMPLERS)


@pytest.mark.parametrize("entry", sorted(SAMPLERS))
def test_battery_of_hostile_arguments(entry):
    for argname in COMMON + SAMPLERS[entry][1]:
        for value in HOSTILE:
            _check_outcome(entry, argname, value)


# no memory address in an id: each xdist worker must collect the same ones
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v).split(" at 0x")[0])
def test_battery_dirac_and_delta_orthogonal(value):
    for call, argname in ((lambda v: fastinit.dirac((2, 2, 3), groups=v), "groups"),
                          (lambda v: fastinit.dirac(v), "shape"),
                          (lambda v: fastinit.delta_orthogonal((3, 4, 4), gain=v), "gain"),
                          (lambda v: fastinit.delta_orthogonal((3, 4, 4), seed=v), "seed")):  # fmt: skip
        try:
            call(value)
        except ONE_LINE_ERRORS as error:
            assert "\n" not in str(error) and _names(str(error), argname), (argname, value, str(error))


_scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([None, "", "fan_in", True, (), [1]]),
)
_shapes = st.one_of(
    st.lists(st.integers(min_value=-3, max_value=2**70), max_size=4).map(tuple),
    st.integers(min_value=-(2**70), max_value=2**70),
    _scalars,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry=st.sampled_from(sorted(SAMPLERS)), data=st.data())
def test_fuzz_hostile_arguments(entry, data):
    argname = data.draw(st.sampled_from(["shape", "seed", "index", *SAMPLERS[entry][1]]))
    value = data.draw(_shapes if argname in ("shape", "index") else _scalars)
    # a huge but empty tensor: validated, cheap to make (a shape of 2**33 values would allocate
    # tens of GB and get the test process killed on a small machine)
    if argname == "shape" and isinstance(value, int) and not isinstance(value, bool) and value > 2**16:
        value = (value, 0)
    if argname == "shape" and isinstance(value, tuple) and 0 < math.prod(max(d, 0) for d in value) > 2**16:
        value = value + (0,)
    _check_outcome(entry, argname, value)


# ---- the framework adapters ---------------------------------------------------------------------


def test_torch_fills_refuse_hostile_arguments():
    torch = pytest.importorskip("torch")
    import fastinit.torch as ft

    w = torch.empty(4, 3)
    for call, argname in ((lambda: ft.uniform_(w, a=math.nan), "a"), (lambda: ft.normal_(w, std=-1.0), "std"),
                          (lambda: ft.kaiming_uniform_(w, a=1e308), "a="),
                          (lambda: ft.xavier_uniform_(w, gain=1e308), "gain="),
                          (lambda: ft.uniform_(w, name="\ud800"), "name"),
                          (lambda: ft.uniform_(w, seed=-1), "seed"),
                          (lambda: ft.uniform_("w"), "tensor")):  # fmt: skip
        _one_line_error(call, argname)


@pytest.mark.parametrize(
    "call,argname",
    [
        (lambda fj, key: fj.glorot_uniform()("key", (3, 3)), "key"),
        (lambda fj, key: fj.glorot_uniform()(5, (3, 3)), "key"),
        (lambda fj, key: fj.glorot_uniform()(np.array([0.5, 1.5]), (3, 3)), "key"),
        (lambda fj, key: fj.uniform(-1.0), "scale"),
        (lambda fj, key: fj.uniform("x"), "scale"),
        (lambda fj, key: fj.normal(math.nan), "stddev"),
        (lambda fj, key: fj.normal(-1.0), "stddev"),
        (lambda fj, key: fj.truncated_normal(math.inf), "stddev"),
        (lambda fj, key: fj.glorot_uniform()(key, {3: 4}), "shape"),
        (lambda fj, key: fj.glorot_uniform()(key, (2**40, 2**40)), "shape"),
    ],  # fmt: skip
)
def test_jax_initializers_refuse_hostile_arguments(call, argname):
    pytest.importorskip("jax")
    import jax

    import fastinit.jax as fj

    _one_line_error(lambda: call(fj, jax.random.key(0)), argname)


@pytest.mark.parametrize(("value", "dtype"), [(1e308, "float32"), (1e39, "bfloat16"), (65520.0, "float16"),
                                              (-7e4, "float16")])  # fmt: skip
def test_constant_beyond_the_dtype_is_refused(value, dtype):
    with pytest.raises(ValueError, match=r"^value=.*beyond the largest finite"):
        fastinit.constant((2, 3), value, dtype=dtype)
    assert np.isinf(fastinit.constant((2,), -math.inf, dtype=dtype).numpy().astype(np.float64)).all()


def test_ctrl_c_while_the_cli_imports_exits_130_without_a_traceback():
    """Ctrl-C can land while `fastinit ...` is still importing (numba takes ~1 s): the same one
    line and exit status 130 as during the work itself."""
    import subprocess
    import sys

    code = """
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "fastinit.checkpoint":
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
from fastinit import cli
sys.exit(cli.main(["presets"]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "fastinit: interrupted\n"


@pytest.mark.parametrize("option", ["--dtypes", "--samplers", "--peers"])
def test_bench_refuses_an_empty_list(capsys, option):
    """`--dtypes ,` used to run the defaults silently: a list option names at least one item."""
    assert main(["bench", "--quick", option, " , "]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err


@pytest.mark.parametrize("option", ["--nonlinearity", "--schemes"])
def test_propagate_refuses_an_empty_list(capsys, option):
    assert main(["inspect", "--propagate", option, ","]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err


@pytest.mark.parametrize("entry", ["orthogonal", "dirac", "normal"])
def test_zero_element_shape_numpy_cannot_hold_is_refused_naming_shape(entry):
    """A shape with a 0 whose other dimensions NumPy cannot size (found by the fuzzer below):
    the same one-line error naming shape for every entry, never NumPy's or a 289 GiB mask."""
    shape = (41785, 7428332, 7428789, 0)
    with pytest.raises(ValueError, match=r"shape=.*more than a process can address"):
        getattr(fastinit, entry)(shape)
