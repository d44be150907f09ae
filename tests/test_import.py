"""Import hygiene and kernel caching, each checked in a fresh process."""

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "jax", "jaxlib", "dask", "numba.cuda", "cupy", "keras", "tensorflow")


def run_python(code: str, **env) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return result.stdout


def test_import_fastinit_does_not_import_frameworks():
    code = (
        "import sys, json, fastinit\n"
        "fastinit.normal((10,), seed=0)\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy "
        "or m.startswith('numba.cuda'))))\n"
    )
    assert json.loads(run_python(code)) == []


@pytest.mark.slow
def test_second_process_loads_kernels_from_cache():
    code = (
        "import json, fastinit\n"
        "from fastinit.backends import cpu\n"
        "fastinit.normal((1000,), seed=1, name='w')\n"
        "fastinit.uniform((1 << 16,), seed=1, name='w')\n"
        "stats = {k.__name__: (sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))\n"
        "         for k in (cpu.fill_strided_32, cpu.fill_run_32)}\n"
        "print(json.dumps(stats))\n"
    )
    run_python(code)  # the first process may compile and write the cache
    stats = json.loads(run_python(code))
    for kernel, (hits, misses) in stats.items():
        assert hits >= 1 and misses == 0, f"{kernel} was compiled again in a second process: {stats}"


def test_the_command_line_starts_without_numpy_or_numba():
    """`fastinit ...` reaches cli.main (and its one-line Ctrl-C handler) before the heavy
    imports: a Ctrl-C in a command's first moments must not print Python's traceback."""
    code = (
        "import sys, json, fastinit, fastinit.cli\n"
        "print(json.dumps(sorted(m for m in ('numpy', 'numba', 'scipy') if m in sys.modules)))\n"
    )
    assert json.loads(run_python(code)) == []


def test_every_public_name_and_core_submodule_is_reachable_from_the_package():
    code = (
        "import json, fastinit, fastinit.schemes\n"
        "missing = [n for n in fastinit.__all__ if getattr(fastinit, n, None) is None]\n"
        "schemes = sorted(set(fastinit.schemes.__all__) - set(fastinit.__all__))\n"
        "subs = [m for m in ('api', 'array', 'dtypes', 'rng', 'schemes', 'backends', 'dlpack')\n"
        "        if getattr(fastinit, m, None) is None]\n"
        "from fastinit import *\n"
        "print(json.dumps([missing, schemes, subs, 'normal' in dir(fastinit)]))\n"
    )
    assert json.loads(run_python(code)) == [[], [], [], True]
