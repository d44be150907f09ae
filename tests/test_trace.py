"""The trace of a model's own init code (fastinit/trace.py): what each kind of call becomes."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fastinit  # noqa: E402
import fastinit.torch as ft  # noqa: E402
from fastinit import trace  # noqa: E402


def tbytes(t):
    return t.detach().contiguous().numpy().tobytes()


class Fused(nn.Module):
    """Two halves of one tensor initialized differently through views, a bias through .data."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.empty(8, 6))
        self.b = nn.Parameter(torch.empty(6))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.w[:4], std=0.5)
        nn.init.uniform_(self.w[4:], -0.1, 0.1)
        self.b.data.fill_(0.25)


def test_views_are_blocks_of_their_tensor_drawn_from_its_stream():
    model = Fused()
    plan = ft.trace_module(model)
    writes = plan["w"].writes
    assert [w.index for w in writes] == [(slice(0, 4, 1), slice(0, 6, 1)), (slice(4, 8, 1), slice(0, 6, 1))]
    assert writes[0].init == fastinit.get_initializer("normal", std=0.5)
    ft.init_module(model, seed=2)
    top = fastinit.normal((8, 6), 0.0, 0.5, seed=2, name="w", index=(slice(0, 4),))
    bottom = fastinit.uniform((8, 6), -0.1, 0.1, seed=2, name="w", index=(slice(4, 8),))
    assert tbytes(model.w[:4]) == np.asarray(top).tobytes()
    assert tbytes(model.w[4:]) == np.asarray(bottom).tobytes()
    assert torch.all(model.b == 0.25)


def test_plan_is_data_json_and_printable():
    plan = ft.trace_module(nn.Embedding(10, 4, padding_idx=3))
    config = plan.to_config()
    text = json.dumps(config)
    back = json.loads(text)["weight"]
    assert fastinit.Initializer.from_config(back[0]["init"]) == fastinit.get_initializer("normal")
    assert back[1]["index"][0] == 3 and back[1]["init"] == {"scheme": "constant", "value": 0}
    assert "Embedding.reset_parameters()" in str(plan)


def test_a_random_op_fastinit_cannot_map_names_the_tensor_call_and_rules():
    class Perm(nn.Module):
        def __init__(self):
            super().__init__()
            self.order = nn.Parameter(torch.randperm(6).float())

    with pytest.raises(trace.TraceError) as info:
        ft.build(Perm)
    message = str(info.value)
    assert "order" in message and "torch.randperm" in message and "rules=" in message
    built = ft.build(Perm, rules={"order": fastinit.get_initializer("zeros")})
    assert torch.all(built.order == 0)


def test_a_drawn_tensor_scaled_after_the_draw_is_the_scaled_distribution():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(64, 64))
            nn.init.normal_(self.w, std=0.2)
            with torch.no_grad():
                self.w.mul_(0.5)
                self.w += 1.0

    plan = ft.build(Scaled, seed=0).fastinit_plan
    assert plan["w"].init == fastinit.get_initializer("normal", mean=1.0, std=0.1)


def test_arithmetic_other_than_scaling_a_draw_is_refused():
    class Squared(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(4, 4))
            nn.init.normal_(self.w)
            with torch.no_grad():
                self.w.pow_(2)

    with pytest.raises(trace.TraceError, match=r"w: .*Tensor.pow_.*torch.nn.init.normal_"):
        ft.build(Squared)


def test_a_draw_copied_into_a_parameter_moves_with_the_copy():
    class Copied(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(6, 4))
            q = torch.empty(6, 4)
            nn.init.orthogonal_(q)
            with torch.no_grad():
                self.w.copy_(q)

    model = ft.build(Copied, seed=4)
    assert model.fastinit_plan["w"].init == fastinit.get_initializer("orthogonal")
    assert tbytes(model.w) == np.asarray(fastinit.orthogonal((6, 4), seed=4, name="w")).tobytes()


def test_values_derived_from_torch_rand_are_drawn_from_fastinit_and_reproducible():
    class Dt(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.empty(32))
            self.reset_parameters()

        def reset_parameters(self):
            dt = torch.exp(torch.rand(32) * 2.0 - 3.0)
            with torch.no_grad():
                self.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    a, b, c = Dt(), Dt(), Dt()
    state = torch.random.get_rng_state()
    ft.init_module(a, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)  # torch's generator is never used
    ft.init_module(b, seed=0)
    ft.init_module(c, seed=1)
    assert torch.equal(a.bias, b.bias) and not torch.equal(a.bias, c.bias)
    u = torch.from_dlpack(fastinit.uniform((32,), seed=0, name="#0"))
    dt = torch.exp(u * 2.0 - 3.0)
    torch.testing.assert_close(a.bias.detach(), dt + torch.log(-torch.expm1(-dt)))


def test_computed_buffers_are_kept_by_build_and_rerun_by_init_module():
    class Rope(nn.Module):
        def __init__(self, n=8):
            super().__init__()
            self.n = n
            self.register_buffer("inv_freq", torch.empty(n // 2), persistent=False)
            self.lin = nn.Linear(n, n)
            self.reset_parameters()

        def reset_parameters(self):
            freqs = 1.0 / (
                10000 ** (torch.arange(0, self.n, 2, device=self.inv_freq.device).float() / self.n)
            )
            self.inv_freq.copy_(freqs)

    expected = 1.0 / (10000 ** (torch.arange(0, 8, 2).float() / 8))
    built = ft.build(Rope)
    assert torch.equal(built.inv_freq, expected)
    with torch.device("meta"):
        meta = Rope()
    meta.to_empty(device="cpu")
    with torch.no_grad():
        meta.inv_freq.fill_(float("nan"))
    ft.init_module(meta, seed=0)  # traced on meta: the value comes from running it again
    assert torch.equal(meta.inv_freq, expected)


def test_a_write_through_a_view_that_is_not_a_block_is_refused():
    class Diagonal(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4, 4))
            with torch.no_grad():
                self.w.diagonal().normal_()

    with pytest.raises(trace.TraceError, match="w: written through a view that is not a block"):
        ft.build(Diagonal)


def test_kaiming_on_a_slice_uses_the_slice_fans():
    class Half(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(8, 16))
            nn.init.kaiming_uniform_(self.w[:, :4])
            nn.init.zeros_(self.w[:, 4:])

    plan = ft.build(Half).fastinit_plan
    bound = math.sqrt(2.0) * math.sqrt(3.0 / 4)  # fan_in of the (8, 4) slice, gain sqrt(2)
    first = plan["w"].writes[0]
    assert first.index == (slice(0, 8, 1), slice(0, 4, 1))
    assert first.init.scheme == "uniform" and math.isclose(first.init.params["high"], bound)


def test_orthogonal_on_part_of_a_tensor_is_refused():
    class Part(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(8, 8))
            nn.init.orthogonal_(self.w[:4])
            nn.init.zeros_(self.w[4:])

    with pytest.raises(trace.TraceError, match="needs the whole matrix"):
        ft.build(Part)


def test_parameters_flagged_as_loaded_are_left_as_they_are():
    model = nn.Linear(4, 4)
    with torch.no_grad():
        model.weight.fill_(7.0)
    model.weight._is_hf_initialized = True
    report = ft.init_module(model, seed=0)
    assert torch.all(model.weight == 7.0) and "weight" not in report.params and "bias" in report.params


def test_recorder_restores_torch_init_functions():
    before = {name: getattr(nn.init, name) for name in ("normal_", "kaiming_uniform_", "trunc_normal_")}
    with pytest.raises(trace.TraceError):
        ft.build(lambda: nn.ParameterDict({"p": nn.Parameter(torch.randint(0, 3, (2,)).float())}))
    assert {name: getattr(nn.init, name) for name in before} == before
    t = torch.empty(1000)
    nn.init.normal_(t)  # torch's own again
    assert t.std() > 0.5


def test_other_threads_init_calls_are_torchs_own_while_tracing():
    import threading

    drawn = {}

    def other():
        t = torch.zeros(1000)
        nn.init.normal_(t)
        drawn["std"] = float(t.std())

    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(4, 4))
            nn.init.normal_(self.w)
            worker = threading.Thread(target=other)
            worker.start()
            worker.join()

    ft.build(Slow)
    assert drawn["std"] > 0.5  # not recorded into the trace: torch drew it


class DrawThenLog(nn.Module):
    """kimi_linear's pattern: a draw on the tensor itself, then arithmetic, copied back."""

    def __init__(self):
        super().__init__()
        self.a_log = nn.Parameter(torch.empty(64))
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            self.a_log.copy_(nn.init.uniform_(self.a_log, 1.0, 16.0).log())


@pytest.mark.parametrize("how", ["init_module", "init_module_on_meta"])
def test_arithmetic_on_a_draw_of_the_tensor_itself_is_drawn_from_its_stream(how):
    models = []
    for seed, torch_seed in ((0, 1), (0, 2), (1, 1)):
        torch.manual_seed(torch_seed)
        if how == "init_module":
            m = DrawThenLog()
        else:
            with torch.device("meta"):
                m = DrawThenLog()
            m.to_empty(device="cpu")
            with torch.no_grad():
                m.a_log.fill_(float("nan"))
        ft.init_module(m, seed=seed)
        models.append(m.a_log.detach().clone())
    expected = torch.from_dlpack(fastinit.uniform((64,), 1.0, 16.0, seed=0, name="a_log")).log()
    assert torch.equal(models[0], expected)
    assert torch.equal(models[0], models[1])  # torch's generator plays no part
    assert not torch.equal(models[0], models[2])  # the seed does


def test_an_in_place_op_after_a_draw_in_reset_parameters_is_kept():
    class Exp(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(32))
            self.reset_parameters()

        def reset_parameters(self):
            nn.init.uniform_(self.w, -1.0, 0.0)
            with torch.no_grad():
                self.w.exp_()

    m = Exp()
    ft.init_module(m, seed=5)
    expected = torch.from_dlpack(fastinit.uniform((32,), -1.0, 0.0, seed=5, name="w")).exp()
    assert torch.equal(m.w.detach(), expected)


def test_setitem_with_an_advanced_index_is_written():
    class Scatter(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4, 3))
            self.b = nn.Parameter(torch.zeros(4))
            with torch.no_grad():
                self.w[torch.tensor([0, 2])] = 1.0
                self.b[[1, 3]] = torch.tensor([5.0, 7.0])

    m = ft.build(Scatter)
    assert torch.equal(m.w, torch.tensor([[1.0] * 3, [0.0] * 3, [1.0] * 3, [0.0] * 3]))
    assert torch.equal(m.b, torch.tensor([0.0, 5.0, 0.0, 7.0]))


def test_a_copy_of_another_parameter_equals_it():
    class Ema(nn.Module):
        def __init__(self):
            super().__init__()
            self.online = nn.Parameter(torch.empty(8, 8))
            self.target = nn.Parameter(torch.empty(8, 8))
            self.twice = nn.Parameter(torch.empty(8, 8))
            self.reset_parameters()

        def reset_parameters(self):
            nn.init.normal_(self.online, std=0.1)
            with torch.no_grad():
                self.target.copy_(self.online)
                self.twice.copy_(self.online * 2)

    m = Ema()
    ft.init_module(m, seed=3)
    assert torch.equal(m.target, m.online) and torch.equal(m.twice, m.online * 2)
    assert tbytes(m.online) == np.asarray(fastinit.normal((8, 8), 0.0, 0.1, seed=3, name="online")).tobytes()


def test_random_ops_in_a_constructor_never_touch_torchs_generator():
    class Perm(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("order", torch.randperm(8))
            self.w = nn.Parameter(torch.empty(3))
            nn.init.zeros_(self.w)

    state = torch.random.get_rng_state()
    with pytest.raises(trace.TraceError):
        ft.build(Perm)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_lazy_module_not_yet_run_is_a_clear_error():
    model = nn.Sequential(nn.LazyLinear(4))
    with pytest.raises(ValueError, match=r"parameter 0.weight is uninitialized \(a lazy module\)"):
        ft.init_module(model)
    model(torch.zeros(2, 3))
    ft.init_module(model, seed=0)
    assert (
        tbytes(model[0].weight)
        == np.asarray(fastinit.kaiming_uniform((4, 3), a=math.sqrt(5), seed=0, name="0.weight")).tobytes()
    )


def test_a_reshaped_view_of_the_whole_tensor_is_the_whole_tensor():
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(4, 6))
            self.v = nn.Parameter(torch.empty(4, 6))
            nn.init.normal_(self.w.view(-1), std=0.5)
            nn.init.xavier_uniform_(self.v.view(6, 4))
            self.register_buffer("table", torch.empty(2, 3))
            with torch.no_grad():
                self.table.view(-1).copy_(torch.arange(6.0))

    m = ft.build(Flat, seed=1)
    assert tbytes(m.w) == np.asarray(fastinit.normal((4, 6), 0.0, 0.5, seed=1, name="w")).tobytes()
    bound = math.sqrt(3.0) * math.sqrt(2.0 / (6 + 4))  # the (6, 4) view's fans, torch's formula
    assert m.fastinit_plan["v"].init == fastinit.get_initializer("uniform", low=-bound, high=bound)
    assert torch.equal(m.table, torch.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_constants_filled_by_torch_are_fastinits_bytes(dtype):
    """Exact constants take torch's fill_ (no kernel launch); others fastinit's rounding."""
    for value in (0.0, 1.0, -2.5, 0.1, 1e-30, float("inf")):
        a = ft.fill(torch.empty(5, dtype=dtype), {"scheme": "constant", "value": value})
        b = torch.from_dlpack(fastinit.constant((5,), value, dtype=str(dtype).split(".")[1]))
        assert torch.equal(a.view(torch.uint8 if dtype != torch.float32 else torch.int32),
                           b.view(torch.uint8 if dtype != torch.float32 else torch.int32)), value  # fmt: skip


@pytest.mark.parametrize(
    "config",
    [
        {"scheme": "xavier_uniform", "gain": 0.5},
        {"scheme": "xavier_normal"},
        {"scheme": "kaiming_uniform", "a": math.sqrt(5)},
        {"scheme": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu"},
        {"scheme": "kaiming_uniform", "a": 0.0, "mode": "FAN_IN"},  # torch lower-cases mode too
    ],
)
@pytest.mark.parametrize("shape", [(48, 20), (6, 4, 3, 3)])
def test_elementwise_draws_what_the_scheme_draws(config, shape):
    """The per-element form of a fan-scaled scheme has the scheme's bound or std: on the whole
    tensor it gives the scheme's bytes, and torch.nn.init's draws on the shape match it."""
    init = fastinit.Initializer.from_config(config)
    flat = trace.elementwise(init, shape)
    assert flat(shape, seed=3, name="w").tobytes() == init(shape, seed=3, name="w").tobytes()
    torch.manual_seed(0)
    drawn = torch.empty(shape, dtype=torch.float64)
    getattr(nn.init, config["scheme"] + "_")(drawn, **{k: v for k, v in config.items() if k != "scheme"})
    if flat.scheme == "uniform":
        bound = flat.params["high"]
        assert flat.params["low"] == -bound and 0.9 * bound < float(drawn.abs().max()) <= bound
    else:
        assert flat.scheme == "normal" and float(drawn.std()) == pytest.approx(flat.params["std"], rel=0.2)
