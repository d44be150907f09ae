"""The README's Python examples run as written (STYLE.md item 12)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert python_blocks(), "README.md lost its Python examples"


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_example_runs(index):
    code = python_blocks()[index]
    if "torchrun" in code:
        pytest.skip("a torchrun script: tests/test_torch_distributed.py runs it on 2 ranks")
    if "import torch" in code:
        pytest.importorskip("torch")
    exec(compile(code, f"README.md example {index}", "exec"), {"__name__": "__readme__"})


def test_readme_setup_commands_match_ci():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    tests = "python3 -m pytest && NUMBA_ENABLE_CUDASIM=1 python3 -m pytest tests/cuda_sim"
    assert f'python3 -m pip install -e ".[test]" && {tests}' in text
    assert 'python3 -m pip install -e ".[test]"' in ci and tests in ci
