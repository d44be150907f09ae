"""benchmarks/gpu_figures.py (the CUDA figures, for a GPU session) parses its arguments and
plans its run without a GPU; tests/cuda_sim/test_sim_gpu_figures.py runs it end to end under
the CUDA simulator."""

import json
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_figures.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_help():
    result = run("--help")
    assert result.returncode == 0
    for option in ("--size-log2", "--repeats", "--device", "--skip", "--dry-run", "--json"):
        assert option in result.stdout


def test_dry_run_plans_the_issue_figures():
    result = run("--dry-run")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["n"] == 2**30 and plan["bf16_count"] == 10**9 and plan["identity_count"] == 10**8
    assert plan["orthogonal_size"] == 8192 and set(plan["peers"]) == {"torch", "cupy", "jax"}
    plan = json.loads(run("--dry-run", "--skip", "peers", "--skip", "orthogonal", "--size-log2", "20").stdout)
    assert plan["n"] == 2**20 and plan["peers"] == {} and plan["orthogonal_size"] is None


def test_bad_arguments():
    for args, message in [
        (("--size-log2", "40"), "--size-log2=40 must be in [4, 34]"),
        (("--repeats", "0"), "--repeats must be >= 1"),
        (("--device", "cpu"), "--device='cpu' must be 'cuda' or 'cuda:N'"),
        (("--skip", "everything"), "invalid choice"),
    ]:
        result = run("--dry-run", *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
