"""fastinit bench: the timing engine (with a fake clock), the cases, the table, JSON, plot, CLI.

The speeds themselves are not asserted (shared, noisy machines); what is asserted is that the
engine times what it says (the buffer holds the distribution asked for), that medians and
ratios are computed from interleaved rounds as documented, and the command's output.
"""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

import fastinit
from fastinit import benchmark as bm
from fastinit.cli import main


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def op(self, seconds):
        def run():
            self.now += seconds() if callable(seconds) else seconds

        return run


def test_interleaved_rounds_medians_and_ratios():
    clock = FakeClock()
    fill_times = iter([1.0, 1.0, 1.0, 10.0, 1.0])  # warm-up, then 4 rounds; one slow round
    fast_times = iter([9.0, 2.0, 2.0, 20.0, 2.5])  # warm-up (compile) is not counted
    peer_times = iter([6.0, 6.0, 6.0, 60.0, 6.0])
    ops = {"fill": clock.op(lambda: next(fill_times)), "fastinit": clock.op(lambda: next(fast_times)),
           "torch": clock.op(lambda: next(peer_times))}  # fmt: skip
    times, iterations, warmup = bm.time_interleaved(ops, 4, timer=clock, min_time=0)
    assert warmup == {"fill": 1.0, "fastinit": 9.0, "torch": 6.0}
    assert iterations == {"fill": 1, "fastinit": 1, "torch": 1}
    assert times == {
        "fill": [1.0, 1.0, 10.0, 1.0],
        "fastinit": [2.0, 2.0, 20.0, 2.5],
        "torch": [6.0, 6.0, 60.0, 6.0],
    }
    r = bm.CaseResult(bm.Case("normal", "float32"), 1000, times)
    assert r.seconds() == statistics.median([2.0, 2.0, 20.0, 2.5]) == 2.25
    assert r.mvalues() == pytest.approx(1000 / 2.25 / 1e6) and r.gbps() == pytest.approx(4000 / 2.25 / 1e9)
    # per-round ratios, then the median: [0.5, 0.5, 0.5, 0.4] -> 0.5 (the slow round cancels out)
    assert r.fill_fraction == 0.5
    assert r.speedup("torch") == pytest.approx(3.0) and r.speedup("jax") is None


def test_iterations_reach_min_time_and_order_rotates():
    clock, calls = FakeClock(), []

    def op(name, seconds):
        def run():
            calls.append(name)
            clock.now += seconds

        return run

    times, iterations, _ = bm.time_interleaved({"a": op("a", 0.001), "b": op("b", 0.5)}, 3, timer=clock,
                                               min_time=0.01)  # fmt: skip
    assert iterations == {"a": 10, "b": 1}
    assert times["a"] == pytest.approx([0.001] * 3) and times["b"] == [0.5] * 3
    timed = [c for c in calls[2 + 1 :]]  # after the warm-ups (a, b) and a's second calibration call
    rounds = [timed[:11], timed[11:22], timed[22:]]
    assert [r[0] for r in rounds] == ["a", "b", "a"]  # round r starts at op r mod 2


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="rounds=0"):
        bm.time_interleaved({"a": lambda: None}, 0)
    with pytest.raises(ValueError, match="size=0"):
        bm.run(bm.cases(["uniform"], ["float32"]), size=0)
    with pytest.raises(ValueError, match="sampler='gamma'"):
        bm.Case("gamma", "float32")
    with pytest.raises(ValueError, match="dtype='int8'"):
        bm.Case("normal", "int8")
    with pytest.raises(ValueError, match="unknown peer 'mxnet'"):
        bm.run(bm.cases(["uniform"], ["float32"]), size=16, peers=["mxnet"])
    for text in ("0", "-3", "abc", "1.5e0", "2**"):
        with pytest.raises(ValueError):
            bm.parse_count(text)


@pytest.mark.parametrize("case", bm.cases(bm.SAMPLERS, bm.DTYPES), ids=lambda c: c.label)
def test_each_operation_writes_its_distribution_into_the_buffer(case):
    """fastinit's op leaves fastinit's exact values; the torch and numpy ops the same distribution."""
    torch = pytest.importorskip("torch")
    be, n = bm.backend("cpu"), 4096
    buf = be.buffer(case, n)
    be.fill(buf)()
    assert np.all(np.asarray(buf, np.float64) == 1.0)
    be.fastinit(case, buf)()
    sampler = getattr(fastinit, case.sampler)
    expected = sampler(n, **bm.PARAMS[case.sampler], dtype=case.dtype)
    assert buf.tobytes() == expected.tobytes()
    for peer in ("numpy", "torch"):
        op = be.peer(peer, case, buf)
        if peer == "numpy" and (case.dtype in ("bfloat16", "float16") or case.sampler == "truncated_normal"):
            assert op is None
            continue
        torch.manual_seed(0)
        op()
        x = np.asarray(buf, np.float64)
        assert buf.tobytes() != expected.tobytes()
        if case.sampler == "uniform":
            assert x.min() >= 0 and x.max() <= 1 and abs(x.mean() - 0.5) < 0.05
        elif case.sampler == "normal":
            assert abs(x.mean()) < 0.1 and abs(x.std() - 1) < 0.1
        else:
            # torch clamps before rounding to 16 bits: its bfloat16 values may pass a bound by an ulp
            ulp = {"bfloat16": 2**-7, "float16": 2**-10}.get(case.dtype, 0.0) * 0.04
            assert x.min() >= -0.04 - ulp and x.max() <= 0.04 + ulp and abs(x.std() - 0.0176) < 0.002


def test_run_table_and_json(tmp_path):
    pytest.importorskip("torch")
    result = bm.run(
        bm.cases(bm.SAMPLERS, ["float32", "bfloat16"]), size=4096, rounds=3, peers=["numpy", "torch"]
    )
    assert [r.case.label for r in result.cases] == [
        c.label for c in bm.cases(bm.SAMPLERS, ["float32", "bfloat16"])
    ]
    for r in result.cases:
        assert set(r.times) >= {"fill", "fastinit", "torch"} and all(len(t) == 3 for t in r.times.values())
        assert ("numpy" in r.times) == (r.case.dtype == "float32" and r.case.sampler != "truncated_normal")
        assert r.fill_fraction > 0 and r.speedup("torch") > 0
    table = result.table()
    lines = table.splitlines()
    assert lines[0].startswith("machine: ") and "numba threads" in lines[0] and "GPU: " in lines[0]
    assert lines[3].split() == ["operation", "M", "values/s", "GB/s", "fill", "GB/s", "x", "fill", "vs", "numpy",
                                "vs", "torch"]  # fmt: skip
    rows = [line for line in lines[5:11]]
    assert [" ".join(r.split()[:2]) for r in rows] == [
        c.label for c in bm.cases(bm.SAMPLERS, ["float32", "bfloat16"])
    ]
    assert rows[2].split()[-3:-2] == ["-"]  # numpy has no truncated normal (then "N.N x" for torch)
    path = tmp_path / "b.json"
    bm.write_json(result, path)
    data = json.loads(path.read_text())
    assert data["size"] == 4096 and data["rounds"] == 3 and data["peers"] == ["numpy", "torch"]
    assert data["machine"]["cores"] >= 1 and data["machine"]["numba_threads"] >= 1
    first = data["cases"][0]
    assert first["operations"]["fastinit"]["seconds"] == result.cases[0].times["fastinit"]
    assert first["fill_fraction"] == result.cases[0].fill_fraction
    assert data["cases"][2]["unavailable"] == ["numpy"]


def _png(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    return matplotlib.image.imread(path)


def test_cli_bench_with_plot_and_json(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png, js = tmp_path / "bench.png", tmp_path / "bench.json"
    rc = main(["bench", "--size", "2**12", "--rounds", "2", "--dtypes", "float32,float64", "--samplers",
               "uniform,normal", "--peers", "numpy", "--plot", str(png), "--json", str(js)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "n = 2**12 values per call, 2 interleaved rounds" in out
    assert "uniform float64" in out and "vs numpy" in out and "vs torch" not in out
    image = _png(png)
    assert image.shape[0] > 300 and image.shape[1] > 500
    data = json.loads(js.read_text())
    assert [(c["sampler"], c["dtype"]) for c in data["cases"]] == [
        ("uniform", "float32"), ("normal", "float32"), ("uniform", "float64"), ("normal", "float64")]  # fmt: skip
    assert all(c["speedup"]["numpy"] > 0 for c in data["cases"])


def test_plot_bars_are_the_measured_speeds(tmp_path):
    pytest.importorskip("matplotlib")
    times = {"fill": [1e-3] * 3, "fastinit": [2e-3] * 3, "numpy": [8e-3] * 3}
    cases = [bm.CaseResult(bm.Case("normal", "float32"), 1000, dict(times))]
    result = bm.BenchResult("cpu", 1000, 3, ("numpy",), bm.machine_info(), cases)
    bars = bm.plot(result, tmp_path / "p.png")
    assert bars == {"fastinit": [0.5], "fill": [1.0], "numpy": [0.125]}  # M values/s
    _png(tmp_path / "p.png")


def test_quick_settings():
    """--quick: 6 cases of 2**22 values, 5 rounds (measured: 20-40 s on 2 shared cores with jax)."""
    assert bm.QUICK == {"size": 2**22, "rounds": 5, "dtypes": ("float32", "bfloat16")}
    assert len(bm.cases(bm.SAMPLERS, bm.QUICK["dtypes"])) == 6


def test_cuda_without_a_gpu_is_a_clear_error(capsys):
    from fastinit.cuda_runtime import check_device

    try:
        check_device("cuda")
    except ValueError as error:
        message = str(error)
    else:
        pytest.skip("a GPU is available")
    assert main(["bench", "--device", "cuda", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err == f"fastinit: error: --device cuda: {message}\n"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--size", "lots"], "--size: 'lots' is not a count"),
        (["--dtypes", "int8"], "dtype='int8'"),
        (["--samplers", "gamma"], "sampler='gamma'"),
        (["--peers", "mxnet"], "--peers: unknown peer 'mxnet'"),
        (["--rounds", "0"], "--rounds 0"),
        (["--json", "/nonexistent-dir/b.json"], "--json /nonexistent-dir/b.json"),
        (["--device", "tpu"], "--device tpu: device='tpu' is not supported"),
    ],
)
def test_cli_errors(capsys, argv, message):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastinit: error: ") and message in err and err.count("\n") == 1


@pytest.mark.slow
def test_jax_peer_is_jitted_and_timed():
    pytest.importorskip("jax")
    result = bm.run(
        [bm.Case("normal", "float32"), bm.Case("normal", "float64")], size=4096, rounds=2, peers=["jax"]
    )
    f32, f64 = result.cases
    assert f32.speedup("jax") > 0 and f32.warmup["jax"] > 0
    assert f64.unavailable == ["jax"]  # without jax_enable_x64, JAX would hand back float32


def test_python_m_fastinit_bench():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "fastinit", "bench", "--size", "1024", "--rounds", "1", "--peers",
                             "none", "--dtypes", "float32"], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "uniform float32" in result.stdout and "No peers timed." in result.stdout


def test_importing_the_tools_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, fastinit, fastinit.benchmark, fastinit.inspection, fastinit.diagnostics, fastinit.cli\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'jax', 'matplotlib', 'cupy', "
            "'safetensors'}))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_settle_pause_follows_the_operations_that_need_it():
    clock, pauses = FakeClock(), []

    def slow():
        clock.now += 1.0

    slow.settle = 0.25
    times, _, _ = bm.time_interleaved({"a": clock.op(0.5), "jax": slow}, 3, timer=clock, min_time=0,
                                      sleep=pauses.append)  # fmt: skip
    assert pauses == [0.25] * 4  # after the warm-up and after each of the 3 rounds' calls
    assert times == {"a": [0.5] * 3, "jax": [1.0] * 3}  # the pauses are not timed


def test_jax_op_settles():
    pytest.importorskip("jax")
    op = bm._jax_op(bm.Case("uniform", "float32"), 16, "cpu")
    assert op.settle == bm.JAX_SETTLE > 0
