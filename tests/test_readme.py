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


TEST_COMMAND = "python3 -m pytest -n auto --dist loadfile && NUMBA_ENABLE_CUDASIM=1 python3 -m pytest -n auto tests/cuda_sim"
SLOW_COMMAND = "python3 -m pytest -n auto --dist loadfile -m slow"


def test_readme_setup_commands_match_ci():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert f'python3 -m pip install -e ".[test]" && {TEST_COMMAND}' in text
    assert 'python3 -m pip install -e ".[test]"' in ci and TEST_COMMAND in ci
    # under set -e a failure inside an && list does not stop the script: CI must say it
    assert any(line.startswith(TEST_COMMAND) and line.endswith("|| exit 1") for line in ci.splitlines())


def test_slow_tests_are_left_out_by_default_and_run_in_ci():
    """setup.cfg's default run deselects `slow`; the README says how to run those, CI runs them."""
    cfg = (ROOT / "setup.cfg").read_text()
    addopts = re.search(r"^addopts *=(.*)$", cfg, flags=re.M).group(1)
    assert '-m "not slow"' in addopts
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"```bash\n{SLOW_COMMAND}\n```" in README.read_text()
    assert any(line.startswith(SLOW_COMMAND) for line in ci.splitlines())
    # the Python the oldest-Python check runs on gets the slow tests of its files as well
    assert "PYTEST_ADDOPTS='-m \"slow or not slow\"' bash .ci/oldest_python" in ci


def test_torch_extras_ask_for_the_same_torch():
    """README's demo install (.[torch]) then test install (.[test]) must not swap torch builds."""
    text = (ROOT / "pyproject.toml").read_text()
    extras = text[text.index("[project.optional-dependencies]") :]
    extras = extras[: extras.index("\n[", 1)]
    specs = set(re.findall(r'"(torch\b[^"]*)"', extras))
    assert len(specs) == 1, f"the extras ask for different torch builds: {sorted(specs)}"
