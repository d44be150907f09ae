"""Runs tests/cuda_sim/ (the CUDA backend under numba's CUDA simulator) in a child pytest.

The simulator must be switched on before numba.cuda is first imported, and this process must
not have it (other tests check what device="cuda" does without a GPU), hence the child
process with NUMBA_ENABLE_CUDASIM=1. Its failures are reported here, test by test.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_cuda_backend_under_the_simulator():
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("numba-cuda is not installed (pip install -e '.[test]' installs it)")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    command = [sys.executable, "-m", "pytest", "tests/cuda_sim", "-q", "-rfEs", "-p", "no:cacheprovider"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    output = result.stdout + result.stderr
    summary = re.findall(r"^(?:FAILED|ERROR) .*$", output, flags=re.M)
    assert result.returncode == 0, (
        f"{' '.join(command[2:])} with NUMBA_ENABLE_CUDASIM=1 exited {result.returncode}:\n"
        + ("\n".join(summary) if summary else "")
        + "\n\n"
        + output[-6000:]
    )
    counts = re.search(r"(\d+) passed", output)
    assert counts and int(counts.group(1)) > 100, f"the simulator run passed too few tests:\n{output[-3000:]}"
