"""The documentation's Python examples run as written, and its links resolve.

Every ```python block of README.md and docs/*.md is executed in a fresh namespace. Blocks
fenced ```python notest (a Dask cluster) are not matched; a torchrun script is skipped here
(tests/test_torch_distributed.py runs README's on 2 ranks); a block that imports an optional
framework (directly or through its fastinit adapter) is skipped when that framework is not
installed. README's ```py CUDA block runs on a GPU in tests/test_cuda_gpu.py.
"""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
FILES = [README, *DOCS]

# top-level module imported -> optional packages it needs
OPTIONAL = {
    "torch": ["torch"],
    "jax": ["jax"],
    "flax": ["flax"],
    "keras": ["keras"],
    "transformers": ["transformers", "torch"],
    "dask": ["dask"],
    "distributed": ["distributed"],
    "safetensors": ["safetensors"],
    "matplotlib": ["matplotlib"],
    "fastinit.torch": ["torch"],
    "fastinit.jax": ["jax"],
    "fastinit.keras": ["keras"],
    "fastinit.transformers": ["transformers", "torch"],
    "fastinit.dask": ["dask"],
}


def python_blocks(path):
    """(line number, code) of each ```python block in the file."""
    text = path.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    ]


EXAMPLES = [(path, line, code) for path in FILES for line, code in python_blocks(path)]


def needs(code):
    """The optional packages a block imports."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    out = []
    for name in sorted(names):
        for key in (name, name.split(".")[0], ".".join(name.split(".")[:2])):
            for package in OPTIONAL.get(key, []):
                if package not in out:
                    out.append(package)
    return out


def test_readme_has_examples():
    assert python_blocks(README), "README.md lost its Python examples"


@pytest.mark.parametrize(
    ("path", "line", "code"), EXAMPLES, ids=[f"{p.relative_to(ROOT)}:{line}" for p, line, _ in EXAMPLES]
)
def test_example_runs(path, line, code):
    where = f"{path.relative_to(ROOT)}:{line}"
    if "torchrun" in code:
        pytest.skip("a torchrun script: tests/test_torch_distributed.py runs README's on 2 ranks")
    for package in needs(code):
        pytest.importorskip(package)
    exec(compile(code, where, "exec"), {"__name__": "__readme__"})


def _slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_links_resolve(path):
    """Every relative link points to an existing file, and every #anchor to a heading there."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: broken links {broken}"


def test_readme_setup_commands_match_ci():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    tests = "python3 -m pytest && NUMBA_ENABLE_CUDASIM=1 python3 -m pytest tests/cuda_sim"
    assert f'python3 -m pip install -e ".[test]" && {tests}' in text
    assert 'python3 -m pip install -e ".[test]"' in ci and tests in ci
    # under set -e a failure inside an && list does not stop the script: CI must say it
    assert any(line.startswith(tests) and line.endswith("|| exit 1") for line in ci.splitlines())
