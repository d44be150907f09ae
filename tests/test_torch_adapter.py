"""The torch adapter: ``torch.nn.init`` mirrors and ``init_module``.

What is checked, and against what:

- The in-place functions have ``torch.nn.init``'s signatures (names, defaults, order) plus
  keyword-only ``seed`` / ``name``, and fill exactly the bytes of the functional API
  (``fastinit.normal(t.shape, ..., seed, name)``) for every dtype and memory layout.
- Their bounds and stds are torch's: torch's own ``nn.init`` is run with ``Tensor.uniform_`` /
  ``Tensor.normal_`` recorded, and fastinit's output must equal ``fastinit.uniform`` /
  ``fastinit.normal`` with exactly the recorded parameters, bit for bit, in float64.
- ``init_module``: for every standard layer, the recorded calls of the layer's own
  constructor / ``reset_parameters`` give each parameter's distribution; fastinit's parameter
  must equal the functional sampler with those parameters and ``name=<qualified name>``, lie in
  torch's bounds, agree with a torch-initialized copy by a two-sample KS test, and be
  regenerable from the report's config alone.

KS thresholds: p > 1e-4 means a correct implementation fails one such check with probability
1e-4; seeds are fixed, so the outcome is deterministic.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import fastinit
import fastinit.torch as ft
from fastinit.schemes.registry import Initializer

KS_P_MIN = 1e-4  # two-sample KS: a correct sampler falls below this with probability 1e-4

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
_INT_VIEW = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def tbits(t: torch.Tensor) -> bytes:
    """The raw bytes of a tensor's values in C order (bfloat16 included)."""
    t = t.detach().contiguous()
    return t.view(_INT_VIEW[t.element_size()]).numpy().tobytes()


def fbits(x) -> bytes:
    """The raw bytes of a FastArray's values in C order."""
    return np.ascontiguousarray(x.raw).tobytes()


def as_f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).numpy()


# ---- the in-place function table ----------------------------------------------------------------
#
# name -> (call fastinit.torch's function on t, the functional API with the same parameters,
#          shapes to try (the last has >= 2 dimensions), draws random numbers?)

INPLACE = {
    "uniform_": (
        lambda t, **kw: ft.uniform_(t, -0.5, 1.5, **kw),
        lambda s, **kw: fastinit.uniform(s, -0.5, 1.5, **kw),
        [(257,), (33, 17)],
        True,
    ),
    "normal_": (
        lambda t, **kw: ft.normal_(t, 0.25, 2.0, **kw),
        lambda s, **kw: fastinit.normal(s, 0.25, 2.0, **kw),
        [(257,), (33, 17)],
        True,
    ),
    "trunc_normal_": (
        lambda t, **kw: ft.trunc_normal_(t, 0.1, 0.5, -0.6, 1.1, **kw),
        lambda s, **kw: fastinit.truncated_normal(s, 0.1, 0.5, -0.6, 1.1, **kw),
        [(257,), (33, 17)],
        True,
    ),
    "constant_": (
        lambda t: ft.constant_(t, 0.375),
        lambda s, **kw: fastinit.constant(s, 0.375, **kw),
        [(7,), (5, 6)],
        False,
    ),
    "ones_": (lambda t: ft.ones_(t), lambda s, **kw: fastinit.ones(s, **kw), [(7,), (5, 6)], False),
    "zeros_": (lambda t: ft.zeros_(t), lambda s, **kw: fastinit.zeros(s, **kw), [(7,), (5, 6)], False),
    "eye_": (lambda t: ft.eye_(t), lambda s, **kw: fastinit.eye(s, **kw), [(6, 3), (5, 7)], False),
    "dirac_": (
        lambda t: ft.dirac_(t, 2),
        lambda s, **kw: fastinit.dirac(s, 2, **kw),
        [(4, 3, 5), (6, 2, 3, 3)],
        False,
    ),
    "xavier_uniform_": (
        lambda t, **kw: ft.xavier_uniform_(t, 1.5, **kw),
        lambda s, **kw: fastinit.xavier_uniform(s, 1.5, **kw),
        [(16, 8, 3, 3), (33, 17)],
        True,
    ),
    "xavier_normal_": (
        lambda t, **kw: ft.xavier_normal_(t, 0.8, **kw),
        lambda s, **kw: fastinit.xavier_normal(s, 0.8, **kw),
        [(16, 8, 3, 3), (33, 17)],
        True,
    ),
    "kaiming_uniform_": (
        lambda t, **kw: ft.kaiming_uniform_(t, 0.2, "fan_out", "leaky_relu", **kw),
        lambda s, **kw: fastinit.kaiming_uniform(s, 0.2, "fan_out", "leaky_relu", **kw),
        [(16, 8, 3, 3), (33, 17)],
        True,
    ),
    "kaiming_normal_": (
        lambda t, **kw: ft.kaiming_normal_(t, 0, "fan_in", "relu", **kw),
        lambda s, **kw: fastinit.kaiming_normal(s, 0, "fan_in", "relu", **kw),
        [(16, 8, 3, 3), (33, 17)],
        True,
    ),
    "orthogonal_": (
        lambda t, **kw: ft.orthogonal_(t, 2.0, **kw),
        lambda s, **kw: fastinit.orthogonal(s, 2.0, qr="torch", **kw),  # the adapter factors with torch
        [(6, 4, 3), (20, 12)],
        True,
    ),
    "sparse_": (
        lambda t, **kw: ft.sparse_(t, 0.3, 0.05, **kw),
        lambda s, **kw: fastinit.sparse(s, 0.3, 0.05, **kw),
        [(9, 13), (20, 7)],
        True,
    ),
}
RANDOM = [name for name, row in INPLACE.items() if row[3]]


def _fill(name, t, seed=None, tname=None, **kw):
    call, _, _, random = INPLACE[name]
    if random:
        return call(t, seed=seed, name=tname, **kw)
    return call(t)


def _expected(name, shape, dtype, seed, tname):
    return INPLACE[name][1](shape, seed=seed, name=tname, dtype=dtype)


def test_table_covers_every_public_torch_init_function():
    public = {n for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")}
    assert public == set(INPLACE)
    missing = [n for n in public if not callable(getattr(ft, n, None))]
    assert not missing, f"fastinit.torch lacks {missing}"
    assert public <= set(ft.__all__)


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_signature_mirrors_torch(name):
    """torch's parameters, in torch's order with torch's defaults, then keyword-only extras:
    seed=None and name=None for every function that takes a generator."""
    theirs = list(inspect.signature(getattr(torch.nn.init, name)).parameters.values())
    ours = list(inspect.signature(getattr(ft, name)).parameters.values())
    head = [(p.name, p.default, p.kind) for p in ours[: len(theirs)]]
    assert head == [(p.name, p.default, p.kind) for p in theirs]
    extras = {p.name: p for p in ours[len(theirs) :]}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extras.values())
    if "generator" in [p.name for p in theirs]:
        assert set(extras) == {"seed", "name"}
        assert extras["seed"].default is None and extras["name"].default is None
    else:
        assert set(extras) <= {"seed", "name"}


# ---- values equal the functional API --------------------------------------------------------------

MATCH_CASES = [
    pytest.param(name, shape, id=f"{name}-{'x'.join(map(str, shape))}")
    for name, row in INPLACE.items()
    for shape in row[2]
]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize(("name", "shape"), MATCH_CASES)
def test_fills_exactly_the_functional_values(name, shape, dtype):
    t = torch.full(shape, float("nan"), dtype=DTYPES[dtype])
    result = _fill(name, t, seed=11, tname="block.w")
    assert result is t
    assert t.dtype == DTYPES[dtype] and tuple(t.shape) == shape
    assert tbits(t) == fbits(_expected(name, shape, dtype, 11, "block.w"))


def test_docstring_example_normal_is_byte_identical():
    t = torch.empty(64, 32)
    fastinit.torch.normal_(t, 0.0, 0.02, seed=1, name="w")
    assert t.numpy().tobytes() == fastinit.normal((64, 32), 0.0, 0.02, seed=1, name="w").numpy().tobytes()


LAYOUTS = {
    # layout -> view of a base tensor (made with base_shape(shape)) that has shape `shape`
    "transposed": (lambda s: s[::-1], lambda b: b.permute(*reversed(range(b.dim())))),
    "strided": (lambda s: s[:-1] + (2 * s[-1] + 1,), lambda b: b[..., 1::2]),
    "offset_rows": (lambda s: (s[0] + 3,) + s[1:], lambda b: b[2:-1]),
    "column_block": (lambda s: s[:-1] + (s[-1] + 4,), lambda b: b[..., 3:-1]),
}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", sorted(INPLACE))
def test_non_contiguous_views_fill_in_place(name, layout, dtype):
    """A view (t.T, slices) gets exactly the values of a fresh tensor of its shape, and the
    base tensor's elements outside the view are left alone."""
    shape = INPLACE[name][2][-1]
    base_shape, view_of = LAYOUTS[layout]
    base = torch.full(base_shape(shape), float("nan"), dtype=DTYPES[dtype])
    view = view_of(base)
    assert tuple(view.shape) == shape
    if layout in ("transposed", "strided", "column_block"):
        assert not view.is_contiguous()
    result = _fill(name, view, seed=3, tname="v")
    assert result is view
    assert tbits(view) == fbits(_expected(name, shape, dtype, 3, "v"))
    inside = torch.zeros(base.shape, dtype=torch.bool)
    view_of(inside).fill_(True)
    assert torch.isnan(base[~inside]).all()
    assert not torch.isnan(base[inside]).any()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(INPLACE))
def test_parameter_requiring_grad_is_filled(name, dtype):
    shape = INPLACE[name][2][-1]
    p = nn.Parameter(torch.full(shape, float("nan"), dtype=DTYPES[dtype]))
    assert p.requires_grad
    result = _fill(name, p, seed=5, tname="layer.weight")
    assert result is p
    assert isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf and p.grad_fn is None
    assert tbits(p) == fbits(_expected(name, shape, dtype, 5, "layer.weight"))
    # autograd still works on the filled parameter (no in-place version conflict)
    (p.float() * 2).sum().backward()
    assert p.grad is not None and torch.all(p.grad == 2)


@pytest.mark.parametrize("name", RANDOM)
def test_generator_maps_to_its_seed(name):
    shape = INPLACE[name][2][-1]
    via_generator = _fill(name, torch.empty(shape), tname="w", generator=torch.Generator().manual_seed(7))
    assert tbits(via_generator) == fbits(_expected(name, shape, "float32", 7, "w"))
    assert tbits(via_generator) != fbits(_expected(name, shape, "float32", 0, "w"))


@pytest.mark.parametrize("name", RANDOM)
def test_explicit_seed_wins_over_generator(name):
    shape = INPLACE[name][2][-1]
    t = _fill(name, torch.empty(shape), seed=3, tname="w", generator=torch.Generator().manual_seed(7))
    assert tbits(t) == fbits(_expected(name, shape, "float32", 3, "w"))


# ---- unnamed calls draw as torch does ----------------------------------------------------------
#
# Without seed= and name=, a call is torch's: a fresh draw each time, reproducible from
# torch.manual_seed (or the generator passed, which advances). The stream's seed is the documented
# draw from that generator; named calls stay pure functions of (seed, name, index).


def _drawn_seed(generator=None) -> int:
    return int(torch.randint(0, 2**63 - 1, (), generator=generator, dtype=torch.int64))


@pytest.mark.parametrize("name", RANDOM)
def test_unnamed_calls_give_fresh_values_each_call(name):
    shape = INPLACE[name][2][-1]
    torch.manual_seed(0)
    first = tbits(INPLACE[name][0](torch.empty(shape)))
    second = tbits(INPLACE[name][0](torch.empty(shape)))
    assert first != second  # two layers of one shape are not symmetric


@pytest.mark.parametrize("name", RANDOM)
def test_unnamed_calls_follow_torch_manual_seed(name):
    shape = INPLACE[name][2][-1]
    runs = []
    for s in (5, 5, 6):
        torch.manual_seed(s)
        runs.append(tbits(INPLACE[name][0](torch.empty(shape))))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("name", RANDOM)
def test_unnamed_call_is_the_stream_of_a_seed_drawn_from_torch(name):
    shape = INPLACE[name][2][-1]
    torch.manual_seed(9)
    t = INPLACE[name][0](torch.empty(shape))
    after = torch.rand(4)
    torch.manual_seed(9)
    seed = _drawn_seed()
    assert tbits(t) == fbits(_expected(name, shape, "float32", seed, None))
    assert torch.equal(torch.rand(4), after)  # exactly one draw consumed


@pytest.mark.parametrize("name", RANDOM)
def test_unnamed_call_with_generator_advances_it_and_spares_the_default(name):
    shape = INPLACE[name][2][-1]
    g = torch.Generator().manual_seed(42)
    before = torch.random.get_rng_state()
    a = tbits(INPLACE[name][0](torch.empty(shape), generator=g))
    b = tbits(INPLACE[name][0](torch.empty(shape), generator=g))
    assert a != b
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(42)  # a generator seeded like the default one draws what the default draws
    assert a == tbits(INPLACE[name][0](torch.empty(shape)))


@pytest.mark.parametrize("name", RANDOM)
def test_named_calls_are_pure(name):
    """seed= or name= given: the value is a function of (seed, name) alone, whatever torch's
    generator holds, and the generator is not consumed."""
    shape = INPLACE[name][2][-1]
    torch.manual_seed(1)
    by_name = tbits(INPLACE[name][0](torch.empty(shape), name="w"))
    by_seed = tbits(INPLACE[name][0](torch.empty(shape), seed=4))
    state = torch.random.get_rng_state()
    torch.manual_seed(2)
    assert by_name == tbits(INPLACE[name][0](torch.empty(shape), name="w"))
    assert by_seed == tbits(INPLACE[name][0](torch.empty(shape), seed=4))
    assert by_name == fbits(_expected(name, shape, "float32", 0, "w"))
    assert by_seed == fbits(_expected(name, shape, "float32", 4, None))
    torch.manual_seed(1)
    INPLACE[name][0](torch.empty(shape), name="w")
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("name", RANDOM)
def test_seed_and_name_pick_independent_streams(name):
    shape = INPLACE[name][2][-1]
    a = tbits(_fill(name, torch.empty(shape), seed=1, tname="a"))
    assert a == tbits(_fill(name, torch.empty(shape), seed=1, tname="a"))
    assert a != tbits(_fill(name, torch.empty(shape), seed=2, tname="a"))
    assert a != tbits(_fill(name, torch.empty(shape), seed=1, tname="b"))


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_torch_global_rng_is_not_consumed(name):
    shape = INPLACE[name][2][-1]
    before = torch.random.get_rng_state()
    _fill(name, torch.empty(shape), seed=1, tname="w")
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_meta_tensor_is_returned_unchanged(name):
    shape = INPLACE[name][2][-1]
    t = torch.empty(shape, device="meta")
    result = _fill(name, t, seed=1, tname="w")
    assert result is t and t.is_meta and tuple(t.shape) == shape


# ---- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INPLACE))
@pytest.mark.parametrize("bad", [np.zeros((5, 6, 3), np.float32), [[0.0] * 6] * 5], ids=["ndarray", "list"])
def test_non_tensor_input_is_a_type_error(name, bad):
    with pytest.raises(TypeError, match="torch.Tensor"):
        _fill(name, bad, seed=0, tname="w")


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_integer_tensor_is_rejected_naming_its_dtype(name):
    shape = INPLACE[name][2][-1]
    t = torch.full(shape, 9, dtype=torch.int64)
    with pytest.raises(TypeError, match=r"tensor\b.*int64") as info:
        _fill(name, t, seed=0, tname="w")
    assert "float32" in str(info.value)  # the message lists the supported dtypes
    assert torch.all(t == 9)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        pytest.param("eye_", (3, 3, 3), id="eye_-3d"),
        pytest.param("dirac_", (4, 4), id="dirac_-2d"),
        pytest.param("orthogonal_", (5,), id="orthogonal_-1d"),
        pytest.param("xavier_uniform_", (5,), id="xavier_uniform_-1d"),
        pytest.param("kaiming_normal_", (5,), id="kaiming_normal_-1d"),
        pytest.param("sparse_", (4, 4, 4), id="sparse_-3d"),
    ],
)
def test_shape_errors_are_value_errors_like_torch(name, shape):
    args = {"dirac_": (), "sparse_": (0.1,)}.get(name, ())
    with pytest.raises(ValueError):
        getattr(torch.nn.init, name)(torch.empty(shape), *args)
    with pytest.raises(ValueError):
        getattr(ft, name)(torch.empty(shape), *args)


def test_bad_mode_and_nonlinearity_raise_like_torch():
    for kwargs in ({"mode": "fan_sideways"}, {"nonlinearity": "swish"}):
        with pytest.raises(ValueError):
            torch.nn.init.kaiming_uniform_(torch.empty(4, 4), **kwargs)
        with pytest.raises(ValueError):
            ft.kaiming_uniform_(torch.empty(4, 4), **kwargs)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(INPLACE))
def test_cuda_tensor_gets_the_cpu_values_or_a_clear_error(name):
    """The invariant says CPU and CUDA agree; a build without a CUDA backend must say so
    (never fall back silently or write other values)."""
    shape = INPLACE[name][2][-1]
    t = torch.full(shape, float("nan"), device="cuda")
    try:
        _fill(name, t, seed=1, tname="w")
    except ValueError as error:
        assert "cuda" in str(error).lower()
        assert torch.isnan(t).all()
    else:
        assert tbits(t.cpu()) == fbits(_expected(name, shape, "float32", 1, "w"))


# ---- bounds and stds are torch's, bit for bit ------------------------------------------------------


@contextlib.contextmanager
def record_torch_draws():
    """Record every ``Tensor.uniform_ / normal_ / fill_ / zero_`` call as
    (op, data_ptr, numel, params, values after the call): what torch's own initialization does
    to each tensor."""
    calls = []
    originals = {op: getattr(torch.Tensor, op) for op in ("uniform_", "normal_", "fill_", "zero_")}
    defaults = {"uniform_": (0.0, 1.0), "normal_": (0.0, 1.0), "fill_": (), "zero_": ()}

    def wrap(op):
        original = originals[op]

        def recorded(self, *args, **kwargs):
            params = tuple(args) + tuple(defaults[op][len(args) :])
            params = tuple(float(v) for v in params)
            result = original(self, *args, **kwargs)
            calls.append((op, self.data_ptr(), self.numel(), params, self.detach().clone()))
            return result

        return recorded

    try:
        for op in originals:
            setattr(torch.Tensor, op, wrap(op))
        yield calls
    finally:
        for op, original in originals.items():
            setattr(torch.Tensor, op, original)


def torch_draw_per_parameter(calls, module):
    """The last recorded draw on each parameter of ``module``: {qualified name: (op, params)}.

    A parameter never drawn itself is a deep copy of one that was (TransformerEncoder clones
    its layer): it gets the last draw whose resulting values it holds exactly.
    """
    where = {(p.data_ptr(), p.numel()): q for q, p in module.named_parameters()}
    last = {}
    for op, ptr, numel, params, _ in calls:
        if (ptr, numel) in where:
            last[where[ptr, numel]] = (op, params)
    for q, p in module.named_parameters():
        if q not in last:
            for op, _, numel, params, values in calls:
                if numel == p.numel() and torch.equal(values.reshape(p.shape), p.detach()):
                    last[q] = (op, params)
    return last


def functional_for(op, params, shape, **kw):
    """The fastinit sampler that draws what torch's recorded ``op(params)`` draws."""
    if op == "uniform_":
        return fastinit.uniform(shape, params[0], params[1], **kw)
    if op == "normal_":
        return fastinit.normal(shape, params[0], params[1], **kw)
    if op == "fill_":
        return fastinit.constant(shape, params[0], **kw)
    assert op == "zero_", op
    return fastinit.zeros(shape, **kw)


BOUND_CASES = [
    # id, torch.nn.init function, fastinit.torch function, shape, arguments
    ("xavier_uniform-linear", "xavier_uniform_", (48, 64), (1.0,)),
    ("xavier_uniform-conv-gain", "xavier_uniform_", (16, 8, 3, 3), (math.sqrt(2.0),)),
    ("xavier_normal-linear", "xavier_normal_", (48, 64), (1.0,)),
    ("xavier_normal-conv3d-gain", "xavier_normal_", (8, 4, 3, 3, 3), (5.0 / 3,)),
    ("kaiming_uniform-defaults", "kaiming_uniform_", (48, 64), ()),
    ("kaiming_uniform-linear-sqrt5", "kaiming_uniform_", (48, 64), (math.sqrt(5),)),
    ("kaiming_uniform-fan_out-relu", "kaiming_uniform_", (16, 8, 3, 3), (0, "fan_out", "relu")),
    ("kaiming_uniform-tanh", "kaiming_uniform_", (30, 7), (0, "fan_in", "tanh")),
    ("kaiming_uniform-selu", "kaiming_uniform_", (30, 7), (0, "fan_in", "selu")),
    ("kaiming_normal-defaults", "kaiming_normal_", (48, 64), ()),
    ("kaiming_normal-fan_out-leaky0.2", "kaiming_normal_", (16, 8, 5), (0.2, "fan_out", "leaky_relu")),
    ("kaiming_normal-conv_transpose", "kaiming_normal_", (8, 16, 3, 3), (0, "fan_in", "conv_transpose2d")),
    ("uniform", "uniform_", (100,), (-0.3, 0.7)),
    ("normal", "normal_", (100,), (0.5, 0.02)),
]


@pytest.mark.parametrize(("fn", "shape", "args"), [pytest.param(*c[1:], id=c[0]) for c in BOUND_CASES])
def test_bounds_and_stds_equal_torchs_exactly(fn, shape, args):
    """torch's own function is run with its draws recorded; fastinit's float64 output must be
    the functional sampler with exactly torch's (low, high) or (mean, std): any difference in
    the last bit of a bound or std changes some float64 values."""
    ref = torch.empty(shape, dtype=torch.float64)
    with record_torch_draws() as calls:
        getattr(torch.nn.init, fn)(ref, *args)
    [(op, _, _, params, _)] = [c for c in calls if c[1] == ref.data_ptr()]
    ours = getattr(ft, fn)(torch.empty(shape, dtype=torch.float64), *args, seed=4, name="w")
    expected = functional_for(op, params, shape, seed=4, name="w", dtype="float64")
    assert tbits(ours) == fbits(expected)
    if op == "uniform_":
        assert params[0] <= float(ours.min()) and float(ours.max()) < params[1]


KS_CASES = [
    # id, function, shape, arguments
    ("uniform", "uniform_", (512, 256), (-0.5, 1.5)),
    ("normal", "normal_", (512, 256), (0.25, 2.0)),
    ("trunc_normal", "trunc_normal_", (512, 256), (0.0, 1.0, -1.5, 2.5)),
    ("xavier_uniform", "xavier_uniform_", (512, 256), (1.5,)),
    ("xavier_normal", "xavier_normal_", (256, 128, 3), (0.8,)),
    ("kaiming_uniform", "kaiming_uniform_", (64, 32, 3, 3), (math.sqrt(5),)),
    ("kaiming_normal", "kaiming_normal_", (512, 256), (0, "fan_out", "relu")),
    ("orthogonal-tall", "orthogonal_", (256, 128), (2.0,)),
    ("orthogonal-wide", "orthogonal_", (64, 32, 3, 3), (1.0,)),
]


@pytest.mark.parametrize(("fn", "shape", "args"), [pytest.param(*c[1:], id=c[0]) for c in KS_CASES])
def test_same_distribution_as_torch(fn, shape, args):
    """Two-sample KS between fastinit's and torch's own output (different bits, same law)."""
    ours = getattr(ft, fn)(torch.empty(shape), *args, seed=21, name="ks")
    theirs = getattr(torch.nn.init, fn)(
        torch.empty(shape), *args, generator=torch.Generator().manual_seed(21)
    )
    assert stats.ks_2samp(as_f64(ours).ravel(), as_f64(theirs).ravel()).pvalue > KS_P_MIN
    if fn == "orthogonal_":
        q = as_f64(ours).reshape(shape[0], -1) / args[0]
        small = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
        np.testing.assert_allclose(small, np.eye(small.shape[0]), atol=2e-5)


def test_sparse_same_law_as_torch():
    shape, sparsity, std = (400, 300), 0.25, 0.5
    ours = as_f64(ft.sparse_(torch.empty(shape), sparsity, std, seed=2, name="s"))
    theirs = as_f64(
        torch.nn.init.sparse_(torch.empty(shape), sparsity, std, generator=torch.Generator().manual_seed(2))
    )
    zeros = math.ceil(sparsity * shape[0])
    assert (ours == 0).sum(axis=0).tolist() == [zeros] * shape[1]
    assert (theirs == 0).sum(axis=0).tolist() == [zeros] * shape[1]
    assert stats.ks_2samp(ours[ours != 0], theirs[theirs != 0]).pvalue > KS_P_MIN
    # the zero pattern differs between columns (it is drawn, not fixed)
    assert len({tuple(np.nonzero(ours[:, j] == 0)[0]) for j in range(10)}) == 10


# ---- init_module: every standard layer against its own reset_parameters -------------------------

LAYERS = [
    pytest.param(lambda: nn.Linear(64, 48), id="Linear"),
    pytest.param(lambda: nn.Linear(64, 48, bias=False), id="Linear-nobias"),
    pytest.param(lambda: nn.Conv1d(8, 16, 5), id="Conv1d"),
    pytest.param(lambda: nn.Conv2d(8, 16, 3), id="Conv2d"),
    pytest.param(lambda: nn.Conv2d(8, 16, 3, groups=4), id="Conv2d-groups"),
    pytest.param(lambda: nn.Conv3d(4, 8, 3), id="Conv3d"),
    pytest.param(lambda: nn.ConvTranspose1d(8, 16, 5), id="ConvTranspose1d"),
    pytest.param(lambda: nn.ConvTranspose2d(8, 16, 3, groups=2), id="ConvTranspose2d-groups"),
    pytest.param(lambda: nn.ConvTranspose3d(4, 8, 3), id="ConvTranspose3d"),
    pytest.param(lambda: nn.Bilinear(20, 30, 40), id="Bilinear"),
    pytest.param(lambda: nn.Embedding(100, 32), id="Embedding"),
    pytest.param(lambda: nn.Embedding(100, 32, padding_idx=3), id="Embedding-padding"),
    pytest.param(lambda: nn.Embedding(100, 32, padding_idx=0), id="Embedding-padding0"),
    pytest.param(lambda: nn.EmbeddingBag(100, 32, mode="sum"), id="EmbeddingBag"),
    pytest.param(lambda: nn.EmbeddingBag(100, 32, padding_idx=5), id="EmbeddingBag-padding"),
    pytest.param(lambda: nn.LayerNorm(32), id="LayerNorm"),
    pytest.param(lambda: nn.BatchNorm1d(16), id="BatchNorm1d"),
    pytest.param(lambda: nn.BatchNorm2d(16), id="BatchNorm2d"),
    pytest.param(lambda: nn.GroupNorm(4, 16), id="GroupNorm"),
    pytest.param(lambda: nn.RMSNorm(16), id="RMSNorm"),
    pytest.param(lambda: nn.InstanceNorm2d(8, affine=True), id="InstanceNorm2d-affine"),
    pytest.param(
        lambda: nn.InstanceNorm1d(8, affine=True, track_running_stats=True), id="InstanceNorm1d-stats"
    ),
    pytest.param(lambda: nn.MultiheadAttention(32, 4), id="MHA-packed"),
    pytest.param(lambda: nn.MultiheadAttention(32, 4, kdim=16, vdim=24), id="MHA-kdim-vdim"),
    pytest.param(lambda: nn.MultiheadAttention(32, 4, add_bias_kv=True), id="MHA-bias_kv"),
    pytest.param(lambda: nn.MultiheadAttention(32, 4, bias=False, kdim=8, vdim=8), id="MHA-nobias-separate"),
    pytest.param(lambda: nn.RNN(16, 32, num_layers=2, bidirectional=True), id="RNN-2layer-bi"),
    pytest.param(lambda: nn.LSTM(16, 32, num_layers=2, bidirectional=True, proj_size=8), id="LSTM-proj-bi"),
    pytest.param(lambda: nn.GRU(16, 32, num_layers=2), id="GRU-2layer"),
    pytest.param(lambda: nn.RNNCell(16, 32), id="RNNCell"),
    pytest.param(lambda: nn.LSTMCell(16, 32), id="LSTMCell"),
    pytest.param(lambda: nn.GRUCell(16, 32), id="GRUCell"),
    pytest.param(
        lambda: nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), id="TransformerEncoderLayer"
    ),
    pytest.param(
        lambda: nn.TransformerDecoderLayer(32, 4, 64, batch_first=True), id="TransformerDecoderLayer"
    ),
    pytest.param(
        lambda: nn.Transformer(
            32, 4, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=64, batch_first=True
        ),
        id="Transformer",
    ),
    pytest.param(lambda: nn.PReLU(8, init=0.3), id="PReLU"),
    pytest.param(
        lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Linear(8, 4)),
        id="Sequential-mix",
    ),
]


def _scramble_buffers(module):
    with torch.no_grad():
        for b in module.buffers():
            b.fill_(7)


def _expected_param(op, params, p, seed, qualname, report):
    expected = np.array(
        functional_for(op, params, tuple(p.shape), seed=seed, name=qualname, dtype="float32"), copy=True
    )
    note = report.notes.get(qualname)
    if note is not None:
        expected[int(note.split()[1])] = 0.0  # "row <i> (padding_idx) zeroed"
    return expected


@pytest.mark.parametrize("make", LAYERS)
def test_layer_defaults_follow_torchs_own_init(make):
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        with record_torch_draws() as calls:
            reference = make()
    torch_draws = torch_draw_per_parameter(calls, reference)
    ref_params = dict(reference.named_parameters())
    assert set(torch_draws) == set(ref_params), "the recorder missed a parameter"

    model = make()
    _scramble_buffers(model)
    report = ft.init_module(model, seed=3)
    params = dict(model.named_parameters())
    assert set(report.params) == set(params) and len(report) == len(params)
    assert report.unknown == []
    json.dumps(report.params)  # the report is JSON-serializable

    for q, p in params.items():
        op, tparams = torch_draws[q]
        values = as_f64(p)
        # (1) exactly the functional sampler with torch's parameters, from the stream of q
        expected = _expected_param(op, tparams, p, 3, q, report)
        assert values.astype(np.float32).tobytes() == expected.tobytes(), q
        # (2) regenerable from the report alone
        regenerated = np.array(
            Initializer.from_config(report.params[q])(tuple(p.shape), seed=3, name=q), copy=True
        )
        if q in report.notes:
            regenerated[int(report.notes[q].split()[1])] = 0.0
        assert regenerated.tobytes() == expected.tobytes(), q
        # (3) torch's bounds; the reported config's bounds are torch's
        if op == "uniform_":
            low, high = tparams
            assert low <= values.min() and values.max() < high, q
            config = report.params[q]
            if config["scheme"] == "uniform":
                assert (config["low"], config["high"]) == (low, high), q
        elif op in ("fill_", "zero_"):
            assert torch.equal(p, ref_params[q]), q
        # (4) the same law as torch's own values (big enough tensors)
        if op in ("uniform_", "normal_") and p.numel() >= 1000:
            pvalue = stats.ks_2samp(values.ravel(), as_f64(ref_params[q]).ravel()).pvalue
            assert pvalue > KS_P_MIN, (q, pvalue)

    # buffers (BatchNorm / InstanceNorm running statistics) reset as torch's reset does
    ref_buffers = dict(reference.named_buffers())
    for name, buf in model.named_buffers():
        assert torch.equal(buf, ref_buffers[name]), name
        assert report.buffers[name] == ref_buffers[name].flatten()[0].item()


@pytest.mark.parametrize("make", LAYERS)
def test_meta_built_model_materialized_with_to_empty(make):
    """A model built on the meta device and materialized with to_empty gets the same values
    as a normally built one."""
    with torch.device("meta"):
        meta = make()
    assert all(p.is_meta for p in meta.parameters())
    meta.to_empty(device="cpu")
    report_meta = ft.init_module(meta, seed=9)

    normal = make()
    report_normal = ft.init_module(normal, seed=9)
    assert report_meta.params == report_normal.params
    a, b = meta.state_dict(), normal.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert tbits(a[k]) == tbits(b[k]), k


def test_unmaterialized_meta_model_is_refused():
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="to_empty"):
        ft.init_module(model)


class EncoderModel(nn.Module):
    def __init__(self, head=10, extra=False):
        super().__init__()
        if extra:
            self.embed = nn.Embedding(50, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, head)


def test_each_parameter_comes_from_the_stream_of_its_qualified_name():
    model = EncoderModel()
    ft.init_module(model, seed=5)
    w = model.encoder.layers[0].linear1.weight
    expected = fastinit.kaiming_uniform(
        tuple(w.shape), a=math.sqrt(5), seed=5, name="encoder.layers.0.linear1.weight"
    )
    assert tbits(w) == fbits(expected)
    # deep copies of one layer get different values (each its own name)
    assert not torch.equal(model.encoder.layers[0].linear1.weight, model.encoder.layers[1].linear1.weight)
    q = model.encoder.layers[1].self_attn.in_proj_weight
    expected = fastinit.xavier_uniform(
        tuple(q.shape), seed=5, name="encoder.layers.1.self_attn.in_proj_weight"
    )
    assert tbits(q) == fbits(expected)


def test_same_parameter_same_values_in_different_models():
    a, b = EncoderModel(head=10), EncoderModel(head=3, extra=True)
    ft.init_module(a, seed=8)
    ft.init_module(b, seed=8)
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    shared = [q for q in pa if q.startswith("encoder.")]
    assert shared and all(q in pb for q in shared)
    for q in shared:
        assert tbits(pa[q]) == tbits(pb[q]), q


def test_prefix_is_prepended_to_stream_names():
    model = nn.Sequential(nn.Linear(6, 5))
    ft.init_module(model, seed=2, prefix="backbone.")
    expected = fastinit.kaiming_uniform((5, 6), a=math.sqrt(5), seed=2, name="backbone.0.weight")
    assert tbits(model[0].weight) == fbits(expected)
    unprefixed = nn.Sequential(nn.Linear(6, 5))
    ft.init_module(unprefixed, seed=2)
    assert not torch.equal(unprefixed[0].weight, model[0].weight)


def test_seed_changes_every_random_parameter_and_only_those():
    a, b = EncoderModel(), EncoderModel()
    ft.init_module(a, seed=0)
    ft.init_module(b, seed=1)
    for (q, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        constant = bool((pa == pa.flatten()[0]).all())
        assert torch.equal(pa, pb) == constant, q


def test_transformer_gets_xavier_on_every_matrix():
    model = nn.Transformer(
        32, 4, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=48, batch_first=True
    )
    report = ft.init_module(model, seed=6)
    matrices = [(q, p) for q, p in model.named_parameters() if p.dim() > 1]
    assert len(matrices) >= 10
    for q, p in matrices:
        assert tbits(p) == fbits(fastinit.xavier_uniform(tuple(p.shape), seed=6, name=q)), q
        assert report.params[q] == {"scheme": "xavier_uniform"}
    bias = model.encoder.layers[0].linear1.bias
    assert float(bias.detach().abs().max()) > 0  # biases keep their layer's own (non-zero) default
    assert torch.all(model.encoder.layers[0].self_attn.in_proj_bias == 0)


def test_init_module_does_not_consume_torch_rng_and_keeps_requires_grad():
    model = EncoderModel()
    model.head.weight.requires_grad_(False)
    before = torch.random.get_rng_state()
    ft.init_module(model, seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not model.head.weight.requires_grad
    assert all(p.requires_grad for q, p in model.named_parameters() if q != "head.weight")
    assert all(p.grad_fn is None and p.is_leaf for p in model.parameters())


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_init_module_in_the_models_dtype(dtype):
    model = nn.Sequential(nn.Linear(12, 7), nn.LayerNorm(7)).to(DTYPES[dtype])
    ft.init_module(model, seed=4)
    bound = 1 / math.sqrt(12)
    assert tbits(model[0].weight) == fbits(fastinit.kaiming_uniform((7, 12), a=math.sqrt(5), seed=4, name="0.weight",
                                                                     dtype=dtype))  # fmt: skip
    assert tbits(model[0].bias) == fbits(
        fastinit.uniform((7,), -bound, bound, seed=4, name="0.bias", dtype=dtype)
    )
    assert model[0].weight.dtype == DTYPES[dtype]
    assert torch.all(model[1].weight == 1) and torch.all(model[1].bias == 0)


def test_tied_parameter_is_initialized_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            self.body = nn.Linear(16, 16)
            self.head = nn.Linear(16, 50, bias=False)
            self.head.weight = self.emb.weight

    model = Tied()
    report = ft.init_module(model, seed=3)
    assert model.head.weight is model.emb.weight
    assert "head.weight" not in report.params and "emb.weight" in report.params
    assert len(report) == 3  # emb.weight, body.weight, body.bias
    assert tbits(model.emb.weight) == fbits(fastinit.normal((50, 16), seed=3, name="emb.weight"))


# ---- rules -----------------------------------------------------------------------------------------


def _mlp():
    return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))


def test_textbook_rules_example():
    model = _mlp()
    report = ft.init_module(
        model,
        seed=0,
        rules={
            "0.weight": fastinit.xavier_uniform,
            "2.weight": fastinit.get_initializer("constant", value=42),
        },
    )
    assert tbits(model[0].weight) == fbits(fastinit.xavier_uniform((20, 10), seed=0, name="0.weight"))
    assert torch.all(model[2].weight == 42)
    # biases keep Linear's default
    bound = 1 / math.sqrt(20)
    assert tbits(model[2].bias) == fbits(fastinit.uniform((5,), -bound, bound, seed=0, name="2.bias"))
    assert report.params["0.weight"] == {"scheme": "xavier_uniform"}
    assert report.params["2.weight"] == {"scheme": "constant", "value": 42}
    assert report.params["2.bias"] == {"scheme": "uniform", "low": -bound, "high": bound}


def test_type_rule_applies_to_weight_only():
    model = _mlp()
    ft.init_module(model, seed=1, rules={nn.Linear: fastinit.get_initializer("zeros")})
    assert torch.all(model[0].weight == 0) and torch.all(model[2].weight == 0)
    assert bool((model[0].bias != 0).all()) and bool((model[2].bias != 0).all())


def test_type_rule_with_a_dict_of_local_names():
    model = _mlp()
    report = ft.init_module(
        model, seed=1, rules={nn.Linear: {"bias": fastinit.get_initializer("constant", value=0.5)}}
    )
    assert torch.all(model[0].bias == 0.5) and torch.all(model[2].bias == 0.5)
    assert tbits(model[0].weight) == fbits(
        fastinit.kaiming_uniform((20, 10), a=math.sqrt(5), seed=1, name="0.weight")
    )
    assert report.params["0.bias"] == {"scheme": "constant", "value": 0.5}


def test_type_rule_dict_with_glob_on_local_names():
    model = nn.Sequential(nn.LSTM(6, 8, num_layers=2))
    ft.init_module(model, seed=2, rules={nn.LSTM: {"weight_hh_*": fastinit.orthogonal}})
    for layer in (0, 1):
        w = getattr(model[0], f"weight_hh_l{layer}")
        assert tbits(w) == fbits(fastinit.orthogonal(tuple(w.shape), seed=2, name=f"0.weight_hh_l{layer}"))
    bound = 1 / math.sqrt(8)
    b = model[0].bias_ih_l0
    assert tbits(b) == fbits(fastinit.uniform(tuple(b.shape), -bound, bound, seed=2, name="0.bias_ih_l0"))


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({"scheme": "normal", "std": 0.02}, id="config-dict"),
        pytest.param(fastinit.get_initializer("normal", std=0.02), id="Initializer"),
        pytest.param(lambda shape, **kw: fastinit.normal(shape, 0.0, 0.02, **kw), id="callable"),
    ],
)
def test_rule_forms_give_the_same_values(rule):
    model = _mlp()
    report = ft.init_module(model, seed=4, rules={"*.weight": rule})
    for q in ("0.weight", "2.weight"):
        p = dict(model.named_parameters())[q]
        assert tbits(p) == fbits(fastinit.normal(tuple(p.shape), 0.0, 0.02, seed=4, name=q))
    if isinstance(rule, (dict, Initializer)):
        assert report.params["0.weight"] == {"scheme": "normal", "std": 0.02}
    else:
        assert isinstance(report.params["0.weight"], str)  # described by repr


def test_scheme_name_string_rule():
    model = _mlp()
    report = ft.init_module(model, seed=4, rules={"*.weight": "glorot_normal", "*.bias": "zeros"})
    assert tbits(model[2].weight) == fbits(fastinit.xavier_normal((5, 20), seed=4, name="2.weight"))
    assert torch.all(model[0].bias == 0)
    assert report.params["2.weight"] == {"scheme": "xavier_normal"}


@pytest.mark.parametrize("order", ["name_first", "type_first"])
def test_name_pattern_beats_type_rule_whatever_the_dict_order(order):
    """Documented precedence: name pattern > type > default, independent of insertion order."""
    by_name = ("0.weight", fastinit.get_initializer("ones"))
    by_type = (nn.Linear, fastinit.get_initializer("zeros"))
    rules = dict([by_name, by_type] if order == "name_first" else [by_type, by_name])
    model = _mlp()
    ft.init_module(model, seed=0, rules=rules)
    assert torch.all(model[0].weight == 1), "the name pattern must win over the type rule"
    assert torch.all(model[2].weight == 0)


def test_rule_overrides_a_parent_modules_default():
    model = nn.Sequential(OrderedDict(attn=nn.MultiheadAttention(16, 2)))
    ft.init_module(
        model, seed=0, rules={"attn.out_proj.bias": fastinit.get_initializer("constant", value=0.5)}
    )
    assert torch.all(model.attn.out_proj.bias == 0.5)
    ft.init_module(model, seed=0)
    assert torch.all(model.attn.out_proj.bias == 0)  # MultiheadAttention's own reset zeroes it


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        pytest.param({"0.weight": 3.5}, TypeError, id="bad-value"),
        pytest.param({3: "zeros"}, TypeError, id="bad-key"),
        pytest.param({"0.weight": "no_such_scheme"}, ValueError, id="unknown-scheme"),
        pytest.param({"0.weight": {"scheme": "constant"}}, TypeError, id="config-missing-param"),
    ],
)
def test_bad_rules_are_errors_and_write_nothing(rules, error):
    model = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(error):
        ft.init_module(model, rules=rules)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_unknown_option():
    with pytest.raises(ValueError, match="unknown"):
        ft.init_module(_mlp(), unknown="ignore")


# ---- unknown parameters -------------------------------------------------------------------------


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.full((4,), 3.0))


class GatedLinear(nn.Linear):
    """A subclass of a known layer with a parameter of its own."""

    def __init__(self):
        super().__init__(4, 4)
        self.gate = nn.Parameter(torch.full((4,), 3.0))


@pytest.mark.parametrize(
    ("make", "unknown_name"),
    [
        pytest.param(lambda: nn.Sequential(nn.Linear(3, 4), Scaled()), "1.scale", id="custom-module"),
        pytest.param(lambda: nn.Sequential(GatedLinear()), "0.gate", id="subclass-extra-param"),
    ],
)
def test_unknown_parameters_raise_before_anything_is_written(make, unknown_name):
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=unknown_name.replace(".", r"\.")):
        ft.init_module(model, seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("make", "unknown_name"),
    [
        pytest.param(lambda: nn.Sequential(nn.Linear(3, 4), Scaled()), "1.scale", id="custom-module"),
        pytest.param(lambda: nn.Sequential(GatedLinear()), "0.gate", id="subclass-extra-param"),
    ],
)
def test_unknown_skip_leaves_and_lists_them(make, unknown_name):
    model = make()
    report = ft.init_module(model, seed=0, unknown="skip")
    params = dict(model.named_parameters())
    assert report.unknown == [unknown_name]
    assert unknown_name not in report.params
    assert torch.all(params[unknown_name] == 3.0)
    for q, p in params.items():
        if q != unknown_name:
            assert q in report.params and not torch.all(p == 3.0)


def test_a_rule_resolves_an_unknown_parameter():
    model = nn.Sequential(nn.Linear(3, 4), Scaled())
    report = ft.init_module(model, seed=0, rules={"*.scale": "ones"})
    assert report.unknown == [] and torch.all(model[1].scale == 1)


# ---- the report ----------------------------------------------------------------------------------


class WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.arange(4.0))


def test_report_contents():
    model = nn.Sequential(
        nn.Embedding(10, 4, padding_idx=2), nn.BatchNorm1d(4), WithBuffer(), nn.Linear(4, 3)
    )
    with torch.no_grad():
        model[1].running_mean.fill_(5)
        model[1].running_var.fill_(5)
        model[1].num_batches_tracked.fill_(5)
    report = ft.init_module(model, seed=1)
    assert isinstance(report, ft.InitReport)
    assert list(report.params) == [q for q, _ in model.named_parameters()]
    assert report.params["0.weight"] == {"scheme": "normal"}
    assert report.params["1.weight"] == {"scheme": "ones"} and report.params["1.bias"] == {"scheme": "zeros"}
    assert report.params["3.weight"] == {"scheme": "kaiming_uniform", "a": math.sqrt(5)}
    assert set(report.notes) == {"0.weight"} and report.notes["0.weight"].startswith("row 2 zeroed by ")
    assert "Embedding.reset_parameters()" in report.notes["0.weight"]
    assert torch.all(model[0].weight[2] == 0) and torch.all(model[0].weight[[0, 1, 3]] != 0)
    assert report.buffers == {"1.running_mean": 0.0, "1.running_var": 1.0, "1.num_batches_tracked": 0}
    assert torch.all(model[1].running_mean == 0) and torch.all(model[1].running_var == 1)
    assert int(model[1].num_batches_tracked) == 0
    assert report.untouched_buffers == ["2.table"]
    assert torch.equal(model[2].table, torch.arange(4.0))
    assert report.unknown == []


def test_a_rule_that_matches_nothing_is_an_error_naming_it():
    """A typo in a rule pattern must not be ignored silently (issue #15, item 5)."""
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    with pytest.raises(ValueError, match=r"rules: '\*\.o_prj\.weight' matches no parameter"):
        ft.init_module(model, rules={"*.o_prj.weight": "zeros", "0.weight": "ones"})
    with pytest.raises(ValueError, match=r"rules: Conv2d matches no module"):
        ft.init_module(model, rules={nn.Conv2d: "zeros"})
    before = model[0].weight.detach().clone()
    with pytest.raises(ValueError):
        ft.init_module(model, rules={"nope": "zeros"})
    assert torch.equal(model[0].weight, before)  # refused before anything is written
    ft.init_module(model, rules={"0.*": "ones", nn.LayerNorm: {"bias": "ones"}})
    assert torch.all(model[0].weight == 1) and torch.all(model[1].bias == 1)


@pytest.mark.parametrize("fn", ["kaiming_uniform_", "kaiming_normal_"])
def test_zero_element_tensors_warn_as_torch_does(fn):
    """Issue #15 item 2: torch warns 'Initializing zero-element tensors is a no-op'."""
    t = torch.empty(0, 4)
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert getattr(ft, fn)(t) is t


DEPRECATED = ["uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
              "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse"]  # fmt: skip


@pytest.mark.parametrize("old", DEPRECATED)
def test_torchs_deprecated_aliases_exist_and_warn(old):
    """Issue #15 item 2: the aliases torch still keeps, with its FutureWarning."""
    assert hasattr(torch.nn.init, old)
    args = {"constant": (0.5,), "sparse": (0.5,)}.get(old, ())
    t = torch.empty(4, 4, 3) if old == "dirac" else torch.empty(4, 4)
    with pytest.warns(
        FutureWarning, match=rf"`nn.init.{old}` is now deprecated in favor of `nn.init.{old}_`"
    ):
        out = getattr(ft, old)(t, *args)
    assert out is t


@pytest.mark.parametrize("name", RANDOM)
def test_unnamed_calls_on_meta_and_empty_tensors_draw_nothing(name):
    """As torch: nothing to fill, nothing drawn from the generator."""
    shape = INPLACE[name][2][-1]
    state = torch.random.get_rng_state()
    INPLACE[name][0](torch.empty(shape, device="meta"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # kaiming's zero-element warning
        INPLACE[name][0](torch.empty((0,) + shape[1:]))
    assert torch.equal(torch.random.get_rng_state(), state)
