"""The public API is typed: every callable of the public ``__all__``s has annotated parameters and
return, the annotations resolve at run time, ``import fastinit`` shows type checkers every public
name, and a user's typed code (tests/typed_usage.py) passes mypy --strict where mypy is installed."""

import ast
import importlib
import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import fastinit

ROOT = Path(__file__).resolve().parent.parent

# (module, needs): the modules whose __all__ is typed, and the optional package each needs
TYPED_MODULES = [
    ("fastinit", None),
    ("fastinit.schemes", None),
    ("fastinit.checkpoint", None),
    ("fastinit.dask", "dask"),
]
# methods that are public although spelled with underscores
DUNDERS = ("__init__", "__call__", "__array__", "__dlpack__", "__dlpack_device__")


def _module(name: str, needs: str | None):
    if needs is not None:
        pytest.importorskip(needs)
    return importlib.import_module(name)


def public_callables(module):
    """(qualified name, function) for each function, method, property getter and class of
    ``module.__all__``; exceptions and type aliases are data, not callables."""
    for name in module.__all__:
        obj = getattr(module, name)
        qualname = f"{module.__name__}.{name}"
        if inspect.isclass(obj):
            if issubclass(obj, BaseException):
                continue
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr not in DUNDERS:
                    continue
                if isinstance(value, property):
                    yield f"{qualname}.{attr}", value.fget
                elif isinstance(value, (classmethod, staticmethod)):
                    yield f"{qualname}.{attr}", value.__func__
                elif inspect.isfunction(value):
                    yield f"{qualname}.{attr}", value
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
            yield qualname, obj


def unannotated(fn) -> set[str]:
    """The parameters (and "return") of ``fn`` without an annotation; self / cls excepted."""
    signature = inspect.signature(fn, follow_wrapped=False)  # (fastinit.dask's wrappers themselves)
    missing = {
        p.name
        for i, p in enumerate(signature.parameters.values())
        if p.annotation is inspect.Parameter.empty and not (i == 0 and p.name in ("self", "cls"))
    }
    if signature.return_annotation is inspect.Signature.empty and fn.__name__ != "__init__":
        missing.add("return")
    return missing


@pytest.mark.parametrize(("module_name", "needs"), TYPED_MODULES)
def test_every_public_callable_is_annotated(module_name, needs):
    module = _module(module_name, needs)
    found = dict(public_callables(module))
    assert found
    gaps = {name: unannotated(fn) for name, fn in found.items()}
    missing = {name: sorted(params) for name, params in gaps.items() if params}
    assert not missing, f"public callables with unannotated parameters or return: {missing}"


@pytest.mark.parametrize(("module_name", "needs"), TYPED_MODULES)
def test_annotations_resolve_at_run_time(module_name, needs):
    """typing.get_type_hints evaluates each annotation (names imported only for type checkers
    given), so a misspelt or unimportable name fails here, not only under a type checker."""
    module = _module(module_name, needs)
    from fastinit.schemes.registry import Initializer

    checker_only = {"Initializer": Initializer}
    if needs == "dask":
        distributed = pytest.importorskip("distributed")
        checker_only["Client"] = distributed.Client
    for name, fn in public_callables(module):
        # (the function's own globals: get_type_hints would take a wrapper's from the wrapped function)
        hints = typing.get_type_hints(fn, globalns=fn.__globals__, localns=checker_only)
        assert "return" in hints or fn.__name__ == "__init__", name


def test_type_checkers_see_every_public_name():
    """fastinit/__init__.py imports its public names for type checkers (its __getattr__ hides
    them otherwise): the names of its lazy table, each the same object. (Schemes come from the
    modules that define them: mypy reads ``from .schemes import orthogonal`` as the submodule.)"""
    source = (ROOT / "fastinit" / "__init__.py").read_text()
    block = next(
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    )
    imported = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom), ast.dump(node)
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name}: an explicit re-export is `name as name`"
            imported[alias.name] = "." * node.level + (node.module or "")
    assert set(imported) == set(fastinit._HOMES) | set(fastinit._CORE_SUBMODULES)
    for name, home in imported.items():
        module = importlib.import_module(home, "fastinit")
        value = importlib.import_module(f"fastinit.{name}") if home == "." else getattr(module, name)
        assert value is getattr(fastinit, name), f"{name} from {home} is not fastinit.{name}"


def test_py_typed_marker_is_in_the_package():
    assert (ROOT / "fastinit" / "py.typed").is_file()


# Third-party packages mypy need not read to check the usage file (fastinit imports them inside
# functions); reading torch and JAX's annotations would take most of a minute.
_SKIPPED = "torch,torch.*,jax,jax.*,jaxlib.*,numba,numba.*,scipy,scipy.*,dask,dask.*,distributed.*,cupy.*"
_MYPY_CONFIG = f"""\
[mypy]
python_version = 3.10
strict = True
warn_unused_ignores = True
follow_imports = silent

[mypy-{_SKIPPED}]
follow_imports = skip
ignore_missing_imports = True
"""


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_typed_usage_passes_mypy(tmp_path):
    """tests/typed_usage.py: a user's code, with the errors mypy must find marked
    ``# type: ignore[code]`` (an ignore mypy no longer needs is an error too)."""
    config = tmp_path / "mypy.ini"
    config.write_text(_MYPY_CONFIG)
    # mypy finds fastinit in the working tree (an editable install's import hook is invisible to it)
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    command = [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-error-summary"]
    command += ["--cache-dir", str(tmp_path / "cache"), str(ROOT / "tests" / "typed_usage.py")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
