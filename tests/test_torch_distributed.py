"""torch.distributed: DTensor parameters filled shard by shard, with real process groups.

What is checked, and against what:

- Every in-place function of ``fastinit.torch`` on DTensors of many placements (Shard(0),
  Shard(1), Replicate, 2-D meshes, uneven and empty shards, ``_StridedShard``): each rank's
  ``to_local()`` must equal, byte for byte, torch's own shard of the single-process tensor
  (``distribute_tensor(expected, mesh, placements, src_data_rank=None)``, which splits with
  torch's code, not fastinit's), and rank 0's ``full_tensor()`` must equal the single-process
  tensor. The single-process tensor is the same function on a plain tensor with the same
  seed and name.
- ``init_module`` on a small transformer-ish model (Embedding with a padding row, Conv1d,
  RMSNorm, LayerNorm, Linear) in the torchtitan flow: built on ``meta``, sharded with FSDP2's
  ``fully_shard`` and/or tensor parallelism's ``parallelize_module``, ``to_empty``, then
  ``init_module``: the gathered state dict, the report and (FSDP2) a forward pass equal the
  unsharded model's.
- What is refused (Partial placements, initializers without ``index=``) is refused on every
  rank with an error naming it.

How: one world of 2 and one of 4 gloo processes on the CPU (this file run as a script, a
FileStore rendezvous under pytest's tmp dir), started once per module; each runs every scenario
of its world and writes, per scenario, the tracebacks of what failed on that rank. A scenario
only ever runs collectives that every rank reaches whatever failed before (fills and
comparisons are guarded, ``full_tensor`` is not), so one failing rank cannot hang the others.
A child that dies or outlives the time limit fails every test of its world with its stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

WORLD_TIMEOUT_S = 300  # a whole world, startup included (4 processes share 2 cores)
PG_TIMEOUT_S = 90  # a collective waiting on a rank that died


# ---- the scenarios (run in the children) ----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    world: int
    run: object  # callable(ctx)


CASES: dict[str, Case] = {}


def case(world: int, id: str | None = None):
    def register(fn):
        cid = id or fn.__name__
        CASES[cid] = Case(cid, world, fn)
        return fn

    return register


class Ctx:
    """Per-rank state of a scenario: the rank, and the failures it recorded."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world, self.errors = rank, world, []

    @contextlib.contextmanager
    def guard(self, what: str):
        """Record an exception instead of raising it, so this rank still reaches the next
        collective (the others are waiting there)."""
        try:
            yield
        except Exception:
            self.errors.append(f"rank {self.rank}, {what}:\n{traceback.format_exc()}")


def tbytes(t) -> bytes:
    import torch

    t = t.detach().contiguous().cpu()
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.view(ints).numpy().tobytes()


def assert_same_bytes(got, expected, what: str):
    assert tuple(got.shape) == tuple(expected.shape), (
        f"{what}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
    )
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    if tbytes(got) != tbytes(expected):
        diff = (got.detach().double() != expected.detach().double()) & ~(got.isnan() & expected.isnan())
        raise AssertionError(
            f"{what}: {int(diff.sum())} of {got.numel()} elements differ\n{got}\n!=\n{expected}"
        )


def check_dtensor(ctx, dt, expected, what: str):
    """Local shard == torch's split of ``expected``; rank 0: full_tensor() == expected."""
    from torch.distributed.tensor import distribute_tensor

    with ctx.guard(f"{what}: local shard"):
        torch_shard = distribute_tensor(expected, dt.device_mesh, dt.placements, src_data_rank=None)
        assert_same_bytes(dt.to_local(), torch_shard.to_local(), f"{what}: local shard")
    full = dt.full_tensor()  # a collective: reached by every rank
    if ctx.rank == 0:
        with ctx.guard(f"{what}: full_tensor"):
            assert_same_bytes(full, expected, f"{what}: full_tensor")


def _inplace():
    """name -> fill(t), with non-default parameters (so swapped or dropped ones would show)."""
    import fastinit.torch as ft

    kw = dict(seed=3, name="layers.0.w")
    return {
        "uniform_": lambda t: ft.uniform_(t, -0.5, 1.5, **kw),
        "normal_": lambda t: ft.normal_(t, 0.25, 2.0, **kw),
        "trunc_normal_": lambda t: ft.trunc_normal_(t, 0.0, 0.02, -0.03, 0.05, **kw),
        "constant_": lambda t: ft.constant_(t, 0.3),
        "ones_": lambda t: ft.ones_(t),
        "zeros_": lambda t: ft.zeros_(t),
        "eye_": lambda t: ft.eye_(t),
        "dirac_": lambda t: ft.dirac_(t, 2 if t.shape[0] % 2 == 0 else 1),
        "xavier_uniform_": lambda t: ft.xavier_uniform_(t, 1.5, **kw),
        "xavier_normal_": lambda t: ft.xavier_normal_(t, 0.5, **kw),
        "kaiming_uniform_": lambda t: ft.kaiming_uniform_(t, 0.1, "fan_out", "leaky_relu", **kw),
        "kaiming_normal_": lambda t: ft.kaiming_normal_(t, 0, "fan_in", "relu", **kw),
        "orthogonal_": lambda t: ft.orthogonal_(t, 1.5, **kw),
        "sparse_": lambda t: ft.sparse_(t, 0.3, 0.5, **kw),
    }


INPLACE_NAMES = [
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_",
]  # fmt: skip
ONLY_2D = ("eye_", "sparse_")  # dirac_ gets a trailing dimension of 3 on 2-D shapes

# (id, mesh shape, placements as text, global shape): 4 ranks
PLACEMENTS = [
    ("S0", (4,), "Shard(0)", (12, 6)),
    ("S1", (4,), "Shard(1)", (6, 12)),
    ("R", (4,), "Replicate()", (5, 7)),
    ("S0-uneven", (4,), "Shard(0)", (10, 7)),  # torch.chunk: 3, 3, 3, 1
    ("S1-uneven", (4,), "Shard(1)", (7, 10)),
    ("S0-empty-shard", (4,), "Shard(0)", (3, 5)),  # 1, 1, 1, 0: rank 3 holds nothing
    ("S0xS1", (2, 2), "Shard(0), Shard(1)", (9, 7)),
    ("RxS0", (2, 2), "Replicate(), Shard(0)", (10, 6)),
    ("S1xR", (2, 2), "Shard(1), Replicate()", (6, 9)),
    ("S0xS0", (2, 2), "Shard(0), Shard(0)", (11, 6)),
    ("SS0xS0", (2, 2), "_StridedShard(0, split_factor=2), Shard(0)", (12, 6)),  # FSDP2 + TP's
    ("SS0xR", (2, 2), "_StridedShard(0, split_factor=2), Replicate()", (12, 6)),  # rows 0-2 + 6-8
    ("S1xS0", (2, 2), "Shard(1), Shard(0)", (7, 9)),
    ("SS0xS0-uneven", (2, 2), "_StridedShard(0, split_factor=2), Shard(0)", (11, 6)),
    (
        "SS0xR-uneven",
        (2, 2),
        "_StridedShard(0, split_factor=2), Replicate()",
        (11, 6),
    ),  # 0-2 + 6-8 / 3-5 + 9-10
    ("S0xS1-4d", (2, 2), "Shard(0), Shard(1)", (6, 5, 3, 3)),
]
# dtypes other than float32 on a few placements
DTYPE_CASES = [
    (fn, pid, dtype)
    for pid in ("S0xS1", "SS0xR")
    for fn in ("uniform_", "normal_", "trunc_normal_", "orthogonal_")
    for dtype in ("bfloat16", "float16", "float64")
]


def _fill_cases():
    out = []
    for pid, _, _, shape in PLACEMENTS:
        for fn in INPLACE_NAMES:
            if fn in ONLY_2D and len(shape) != 2:
                continue
            out.append((fn, pid, "float32"))
    return out + DTYPE_CASES


FILL_CASES = _fill_cases()


def _placements(text):
    from torch.distributed.tensor import Replicate, Shard  # noqa: F401 (used by eval)
    from torch.distributed.tensor.placement_types import _StridedShard  # noqa: F401

    return eval(f"[{text}]")  # the table's own text, nothing from outside


def _mesh(shape):
    from torch.distributed.device_mesh import init_device_mesh

    if shape not in _MESHES:
        _MESHES[shape] = init_device_mesh("cpu", shape)  # creates groups: every rank, same order
    return _MESHES[shape]


_MESHES: dict = {}


def _run_fill_case(ctx, fn_name, pid, dtype_name):
    import torch
    from torch.distributed.tensor import distribute_tensor

    fill = _inplace()[fn_name]
    _, mesh_shape, text, shape = next(p for p in PLACEMENTS if p[0] == pid)
    if fn_name == "dirac_" and len(shape) == 2:
        shape = shape + (3,)
    dtype = getattr(torch, dtype_name)
    expected = fill(torch.empty(shape, dtype=dtype))
    dt = distribute_tensor(
        torch.empty(shape, dtype=dtype), _mesh(mesh_shape), _placements(text), src_data_rank=None
    )
    dt.to_local().fill_(float("nan"))  # an element left unwritten shows
    what = f"{fn_name} on {pid} {shape} {dtype_name}"
    with ctx.guard(f"{what}: fill"):
        assert fill(dt) is dt
    check_dtensor(ctx, dt, expected, what)


for _fn, _pid, _dt in FILL_CASES:
    case(4, f"{_fn}-{_pid}-{_dt}")(lambda ctx, f=_fn, p=_pid, d=_dt: _run_fill_case(ctx, f, p, d))


@case(4)
def partial_is_refused(ctx):
    import torch
    from torch.distributed.tensor import DTensor, Partial, Shard

    mesh = _mesh((2, 2))
    dt = DTensor.from_local(torch.zeros(4, 4), mesh, [Shard(0), Partial()], run_check=False)
    for fn_name, fill in _inplace().items():
        if fn_name == "dirac_":
            continue
        with ctx.guard(fn_name):
            try:
                fill(dt)
            except ValueError as e:
                assert "Partial" in str(e) and "tensor" in str(e), str(e)
            else:
                raise AssertionError(f"{fn_name} filled a Partial DTensor")
            assert torch.equal(dt.to_local(), torch.zeros(4, 4)), "a refused fill wrote"


@case(4)
def meta_dtensor_is_left_as_it_is(ctx):
    import torch
    from torch.distributed.tensor import Shard, distribute_tensor

    dt = distribute_tensor(torch.empty(8, 4, device="meta"), _mesh((4,)), [Shard(0)], src_data_rank=None)
    for fn_name, fill in _inplace().items():
        if fn_name == "dirac_":
            continue
        with ctx.guard(fn_name):
            assert fill(dt) is dt and dt.is_meta and dt.to_local().is_meta


@case(4)
def unnamed_calls_draw_alike_on_every_rank(ctx):
    """Unnamed calls take their stream seed from torch's generator: ranks seeded alike (as
    DTensor's random ops require) fill the shards of what one process fills, and each call
    draws anew."""
    import torch
    from torch.distributed.tensor import Shard, distribute_tensor

    import fastinit.torch as ft

    for fn_name in ("normal_", "kaiming_uniform_", "orthogonal_"):
        fill = getattr(ft, fn_name)
        torch.manual_seed(123)
        expected = [fill(torch.empty(12, 6)), fill(torch.empty(12, 6))]
        torch.manual_seed(123)
        for k, want in enumerate(expected):
            dt = distribute_tensor(torch.empty(12, 6), _mesh((4,)), [Shard(0)], src_data_rank=None)
            fill(dt)
            check_dtensor(ctx, dt, want, f"{fn_name} call {k}")
        if ctx.rank == 0:
            with ctx.guard(f"{fn_name}: calls differ"):
                assert not torch.equal(expected[0], expected[1])


@case(4)
def explicit_shard_order_is_followed(ctx):
    """A spec whose shard order splits tensor dim 0 on mesh dim 1 first, then mesh dim 0 (what
    torch's redistribute can produce): the local shard is rows chunk(2)[c1].chunk(2)[c0], and
    torch's full_tensor (which reads the spec's shard order) must give the single-process tensor."""
    import torch
    from torch.distributed.tensor import DTensor, Shard
    from torch.distributed.tensor._dtensor_spec import DTensorSpec, ShardOrderEntry, TensorMeta

    import fastinit.torch as ft

    mesh = _mesh((2, 2))
    shape = (11, 3)
    c0, c1 = mesh.get_coordinate()
    rows = torch.arange(shape[0]).chunk(2)[c1].chunk(2)[c0]  # 11 -> 6, 5 -> (3, 3), (3, 2)
    expected = ft.normal_(torch.empty(shape), seed=5, name="ordered")
    spec = DTensorSpec(
        mesh, (Shard(0), Shard(0)),
        tensor_meta=TensorMeta(torch.Size(shape), (shape[1], 1), torch.float32),
        shard_order=(ShardOrderEntry(tensor_dim=0, mesh_dims=(1, 0)),),
        use_strided_shard_as_shard_order=False,
    )  # fmt: skip
    dt = DTensor(torch.full((len(rows), shape[1]), float("nan")), spec, requires_grad=False)
    with ctx.guard("fill"):
        ft.normal_(dt, seed=5, name="ordered")
        assert_same_bytes(dt.to_local(), expected[rows], "local shard")
    full = dt.full_tensor()
    if ctx.rank == 0:
        with ctx.guard("full_tensor"):
            assert_same_bytes(full, expected, "full_tensor")


# ---- init_module: the model and the flows ----------------------------------------------------------

D, HIDDEN, VOCAB = 8, 12, 11  # VOCAB and HIDDEN split unevenly over some meshes


def make_model():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn_norm = nn.RMSNorm(D)
            self.wq = nn.Linear(D, D, bias=False)
            self.wv = nn.Linear(D, D, bias=False)
            self.wo = nn.Linear(D, D, bias=False)
            self.mlp_norm = nn.LayerNorm(D)
            self.w1 = nn.Linear(D, HIDDEN)
            self.w2 = nn.Linear(HIDDEN, D)

        def forward(self, x):
            h = self.attn_norm(x)
            x = x + self.wo(torch.tanh(self.wv(h)) * torch.sigmoid(self.wq(h)))
            return x + self.w2(torch.relu(self.w1(self.mlp_norm(x))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(VOCAB, D, padding_idx=4)
            self.conv = nn.Conv1d(D, D, 3, padding=1)
            self.layers = nn.ModuleList([Block(), Block()])
            self.norm = nn.RMSNorm(D)
            self.out = nn.Linear(D, VOCAB, bias=False)

        def forward(self, ids):
            x = self.tok(ids)
            x = x + self.conv(x.transpose(1, 2)).transpose(1, 2)
            for block in self.layers:
                x = block(x)
            return self.out(self.norm(x))

    return Net()


SEED = 7


def reference():
    """The single-process model and report: the bytes every flow must reassemble into."""
    import fastinit.torch as ft

    model = make_model()
    report = ft.init_module(model, seed=SEED)
    return model, report


def _strip(name: str) -> str:
    return name.replace("_checkpoint_wrapped_module.", "")


def check_state(ctx, model, ref_model, what):
    """Every entry of model.state_dict() (DTensors gathered) equals the reference's."""
    from torch.distributed.tensor import DTensor

    state = {_strip(k): v for k, v in model.state_dict().items()}
    ref = ref_model.state_dict()
    with ctx.guard(f"{what}: state dict keys"):
        assert sorted(state) == sorted(ref), f"{sorted(state)} != {sorted(ref)}"
    for key in sorted(state):
        value = state[key]
        if isinstance(value, DTensor):
            check_dtensor(ctx, value, ref[key], f"{what}: {key}")
        else:
            with ctx.guard(f"{what}: {key}"):
                assert_same_bytes(value, ref[key], f"{what}: {key}")


def tp_plan():
    from torch.distributed.tensor import Replicate
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    return {
        "tok": RowwiseParallel(input_layouts=Replicate()),
        "layers.*.wq": ColwiseParallel(),
        "layers.*.wv": ColwiseParallel(),
        "layers.*.wo": RowwiseParallel(),
        "layers.*.w1": ColwiseParallel(),
        "layers.*.w2": RowwiseParallel(),
        "out": ColwiseParallel(output_layouts=Replicate()),
    }


@case(2)
def fsdp2_meta_flow(ctx):
    """torchtitan's order: activation checkpointing, fully_shard per block then the root, on meta;
    to_empty; init_module. Then a forward pass through FSDP2 (which all-gathers the shards it
    holds) must give the unsharded model's output."""
    import torch
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    import fastinit.torch as ft

    ref_model, ref_report = reference()
    mesh = _mesh((2,))
    with torch.device("meta"):
        model = make_model()
    for i, block in enumerate(model.layers):
        model.layers[i] = checkpoint_wrapper(block)
    for block in model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    with ctx.guard("parameters are DTensors sharded on dim 0"):
        assert all(isinstance(p, DTensor) for p in model.parameters())
    with ctx.guard("init_module before to_empty is refused"):
        try:
            ft.init_module(model, seed=SEED)
        except ValueError as e:
            assert "meta" in str(e)
        else:
            raise AssertionError("init_module filled meta parameters")
    model.to_empty(device="cpu")
    with torch.no_grad():  # an element init_module leaves unwritten shows
        for p in model.parameters():
            p.to_local().fill_(float("nan"))
    report = None
    with ctx.guard("init_module"):
        report = ft.init_module(model, seed=SEED)
    with ctx.guard("report"):
        assert report.params == ref_report.params and report.notes == ref_report.notes
    check_state(ctx, model, ref_model, "FSDP2")
    ids = torch.tensor([[1, 4, 9, 10, 0, 3], [2, 2, 5, 7, 8, 6]])
    with torch.no_grad():
        got = model(ids)  # collectives inside: outside any guard
        with ctx.guard("forward"):
            torch.testing.assert_close(got, ref_model(ids), rtol=1e-5, atol=1e-6)


@case(2)
def tensor_parallel_1d(ctx):
    import torch
    from torch.distributed.tensor.parallel import parallelize_module

    import fastinit.torch as ft

    ref_model, ref_report = reference()
    with torch.device("meta"):
        model = make_model()
    parallelize_module(model, _mesh((2,)), tp_plan())
    model.to_empty(device="cpu")
    with ctx.guard("init_module"):
        report = ft.init_module(model, seed=SEED)
        assert report.params == ref_report.params
    check_state(ctx, model, ref_model, "TP")


@case(4)
def fsdp2_and_tensor_parallel_2d(ctx):
    """FSDP2 on the "dp" mesh dimension over tensor parallelism on "tp": Colwise weights become
    (_StridedShard(0), Shard(0)), Rowwise ones (Shard(0), Shard(1)); vocab 11 splits unevenly."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import parallelize_module
    from torch.distributed.tensor.placement_types import _StridedShard

    import fastinit.torch as ft

    ref_model, ref_report = reference()
    mesh = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
    with torch.device("meta"):
        model = make_model()
    parallelize_module(model, mesh["tp"], tp_plan())
    for block in model.layers:
        fully_shard(block, mesh=mesh["dp"])
    fully_shard(model, mesh=mesh["dp"])
    with ctx.guard("FSDP2 + TP gives _StridedShard"):
        assert isinstance(model.tok.weight.placements[0], _StridedShard), model.tok.weight.placements
    model.to_empty(device="cpu")
    with torch.no_grad():  # an element init_module leaves unwritten shows
        for p in model.parameters():
            p.to_local().fill_(float("nan"))
    with ctx.guard("init_module"):
        report = ft.init_module(model, seed=SEED)
        assert report.params == ref_report.params and report.notes == ref_report.notes
    check_state(ctx, model, ref_model, "FSDP2+TP")


@case(2)
def distribute_module_with_dtensor_buffers(ctx):
    """distribute_module makes every parameter and buffer a DTensor (the Linear sharded here,
    the rest replicated): init_module resets BatchNorm's running statistics through the local
    tensors, and the state dict gathers to the unsharded model's."""
    import torch
    from torch.distributed.tensor import DTensor, Shard, distribute_module, distribute_tensor

    import fastinit.torch as ft

    def make():
        return torch.nn.Sequential(torch.nn.Linear(4, 7), torch.nn.BatchNorm1d(7))

    def shard_linear(name, module, mesh):
        if isinstance(module, torch.nn.Linear):
            for key, p in list(module.named_parameters()):
                module.register_parameter(key, torch.nn.Parameter(distribute_tensor(p, mesh, [Shard(0)])))

    ref_model = make()
    ft.init_module(ref_model, seed=SEED)
    model = make()
    distribute_module(model, _mesh((2,)), shard_linear)
    with ctx.guard("buffers are DTensors"):
        assert all(isinstance(b, DTensor) for b in model.buffers())
    with torch.no_grad():  # what a few training steps leave in the statistics
        model[1].running_mean.to_local().fill_(3.0)
        model[1].running_var.to_local().fill_(5.0)
        model[1].num_batches_tracked.to_local().fill_(9)
    with ctx.guard("init_module"):
        report = ft.init_module(model, seed=SEED)
        assert sorted(report.buffers) == ["1.num_batches_tracked", "1.running_mean", "1.running_var"]
    check_state(ctx, model, ref_model, "distribute_module")


@case(2)
def fsdp1_flat_parameters_refused_full_parameters_filled(ctx):
    """FSDP1 flattens each wrapped module's parameters into one: init_module refuses it, naming
    it; inside summon_full_params(writeback=True) the parameters have their own names and
    shapes, and leaving the context (which frees the unsharded storage with resize_(0)) writes
    the bare model's values back into the shards."""
    import torch
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    import fastinit.torch as ft

    ref_model, ref_report = reference()
    model = FSDP(make_model(), device_id=torch.device("cpu"))
    with ctx.guard("flat parameter refused"):
        try:
            ft.init_module(model, seed=SEED)
        except ValueError as e:
            assert "_flat_param" in str(e) and "FSDP1" in str(e), str(e)
        else:
            raise AssertionError("init_module filled an FSDP1 flat parameter")
    with FSDP.summon_full_params(model, writeback=True):  # collectives on entry and exit
        with ctx.guard("init_module inside summon_full_params"):
            report = ft.init_module(model, seed=SEED)
            assert report.params == ref_report.params
    with FSDP.summon_full_params(model):
        with ctx.guard("values written back"):
            for key, value in model.state_dict().items():
                assert_same_bytes(value, ref_model.state_dict()[key], f"FSDP1: {key}")


@case(2)
def initializer_without_index_is_refused(ctx):
    import torch
    from torch.distributed.fsdp import fully_shard

    import fastinit
    import fastinit.torch as ft

    def no_index(shape, *, seed, name, dtype, out):
        return fastinit.normal(shape, seed=seed, name=name, dtype=dtype, out=out)

    with torch.device("meta"):
        model = torch.nn.Linear(4, 6)
    fully_shard(model, mesh=_mesh((2,)))
    model.to_empty(device="cpu")
    with ctx.guard("refused"):
        try:
            ft.init_module(model, rules={"weight": no_index})
        except TypeError as e:
            assert "index=" in str(e) and "no_index" in str(e), str(e)
        else:
            raise AssertionError("an initializer without index= filled a DTensor")


@case(2)
def wrapper_names_are_dropped(ctx):
    """DDP, torch.compile and activation checkpointing wrap the model under an attribute;
    init_module gives the wrapped model the bare model's names, values and report."""
    import torch
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
    from torch.nn.parallel import DistributedDataParallel

    import fastinit.torch as ft

    ref_model, ref_report = reference()
    wrappers = {
        "DistributedDataParallel": lambda m: DistributedDataParallel(m),  # broadcasts: every rank
        "torch.compile": lambda m: torch.compile(m),
        "checkpoint_wrapper": lambda m: checkpoint_wrapper(m),
    }
    for what, wrap in wrappers.items():
        inner = make_model()
        model = wrap(inner)
        with ctx.guard(what):
            report = ft.init_module(model, seed=SEED)
            assert report.params == ref_report.params, sorted(report.params)
            assert report.notes == ref_report.notes
            for key, value in inner.state_dict().items():
                assert_same_bytes(value, ref_model.state_dict()[key], f"{what}: {key}")


def readme_torchrun_example() -> str:
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "torchrun" in b]
    assert len(blocks) == 1, f"README.md should have one torchrun example, has {len(blocks)}"
    return blocks[0]


@case(2)
def readme_example(ctx):
    """The README's torchrun script, as written (RANK and WORLD_SIZE are set as torchrun does)."""
    with ctx.guard("README example"):  # a README without the example fails on every rank alike
        code = readme_torchrun_example()
        exec(compile(code, "README.md torchrun example", "exec"), {"__name__": "__readme__"})


# ---- the children ----------------------------------------------------------------------------------


def _worker(rank: int, world: int, store: str, out_path: str) -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=PG_TIMEOUT_S),
    )
    results = {}
    for c in CASES.values():
        if c.world != world:
            continue
        ctx = Ctx(rank, world)
        c.run(ctx)  # setup errors (outside ctx.guard) end the child: its traceback goes to stderr
        results[c.id] = ctx.errors
    dist.barrier()
    Path(out_path).write_text(json.dumps(results))
    dist.destroy_process_group()


# ---- the parent (pytest) ---------------------------------------------------------------------------


@dataclass
class World:
    results: list[dict]
    failure: str | None
    seconds: float


def _launch(world: int, tmp: Path) -> World:
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    root = Path(__file__).resolve().parents[1]
    started = time.monotonic()
    procs, logs = [], []
    for rank in range(world):
        log = open(tmp / f"rank{rank}.stderr", "w+")  # noqa: SIM115 (closed below)
        logs.append(log)
        env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))  # as torchrun sets them
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(rank), str(world),
               str(tmp / "store"), str(tmp / f"rank{rank}.json")]  # fmt: skip
        procs.append(subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT))
    failure = None
    try:
        while any(p.poll() is None for p in procs):
            dead = [r for r, p in enumerate(procs) if p.poll() not in (None, 0)]
            if dead:
                failure = f"rank {dead[0]} exited with status {procs[dead[0]].returncode}"
                break
            if time.monotonic() - started > WORLD_TIMEOUT_S:
                failure = f"the world of {world} ranks ran past {WORLD_TIMEOUT_S} s"
                break
            time.sleep(0.1)
        else:
            dead = [r for r, p in enumerate(procs) if p.returncode != 0]
            if dead:
                failure = f"rank {dead[0]} exited with status {procs[dead[0]].returncode}"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    if failure:
        tails = "\n".join(f"---- rank {r} output ----\n{out[-6000:]}" for r, out in enumerate(outputs))
        return World([], f"{failure}\n{tails}", time.monotonic() - started)
    results = [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(world)]
    return World(results, None, time.monotonic() - started)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    cache: dict[int, World] = {}

    def get(world: int) -> World:
        if world not in cache:
            cache[world] = _launch(world, tmp_path_factory.mktemp(f"world{world}"))
        return cache[world]

    return get


def run_case(worlds, cid: str):
    c = CASES[cid]
    world = worlds(c.world)
    if world.failure:
        pytest.fail(world.failure, pytrace=False)
    errors = []
    for rank, res in enumerate(world.results):
        if cid not in res:
            errors.append(f"rank {rank} did not run {cid}")
        errors += res.get(cid, [])
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.mark.slow
@pytest.mark.parametrize("cid", [f"{f}-{p}-{d}" for f, p, d in FILL_CASES])
def test_inplace_function_fills_each_shard_with_its_global_slice(worlds, cid):
    run_case(worlds, cid)


@pytest.mark.slow
@pytest.mark.parametrize(
    "cid",
    [
        "partial_is_refused",
        "meta_dtensor_is_left_as_it_is",
        "explicit_shard_order_is_followed",
        "unnamed_calls_draw_alike_on_every_rank",
        "fsdp2_and_tensor_parallel_2d",
    ],
)
def test_four_ranks(worlds, cid):
    run_case(worlds, cid)


@pytest.mark.slow
@pytest.mark.parametrize(
    "cid",
    [
        "fsdp2_meta_flow",
        "tensor_parallel_1d",
        "initializer_without_index_is_refused",
        "wrapper_names_are_dropped",
        "distribute_module_with_dtensor_buffers",
        "fsdp1_flat_parameters_refused_full_parameters_filled",
        "readme_example",
    ],
)
def test_two_ranks(worlds, cid):
    run_case(worlds, cid)


def test_every_scenario_has_a_test():
    tested = {f"{f}-{p}-{d}" for f, p, d in FILL_CASES}
    for fn in (test_four_ranks, test_two_ranks):
        mark = next(m for m in fn.pytestmark if m.name == "parametrize")
        tested |= set(mark.args[1])
    assert tested == set(CASES)


def test_inplace_table_covers_fastinit_torch():
    import fastinit.torch as ft

    public = {n for n in ft.__all__ if n.endswith("_")}
    assert set(INPLACE_NAMES) == public == set(_inplace())


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_filled_storage_stays_resizable(dtype):
    """As with torch.nn.init: FSDP1 frees and regrows the storage it fills (resize_), so a fill
    must not pin it (Tensor.numpy() would, for good)."""
    import torch

    fills = _inplace()
    for fn_name in INPLACE_NAMES:
        t = torch.empty(6, 4, 3 if fn_name == "dirac_" else 1, dtype=getattr(torch, dtype)).squeeze(-1)
        fills[fn_name](t)
        t.untyped_storage().resize_(0)
        t.untyped_storage().resize_(8 * t.element_size())


def test_import_does_not_load_torch_distributed_tensor():
    code = "import sys, fastinit.torch; assert 'torch.distributed.tensor' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    sys.exit(0)
