"""Every module of the package imports on this interpreter, or refuses with its extra's name.

CI runs this file on the oldest Python that ``requires-python`` allows too (.ci/run), so a
feature newer than that Python (``typing.Self``, ``except*``, ...) fails there, not on a user's
machine.
"""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import pkgutil
import re
import sys

import pytest

import fastinit

PYPROJECT = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"
# what the optional modules may lack, each installed by an extra named in the error
OPTIONAL = ("torch", "jax", "flax", "dask", "distributed", "zarr", "transformers", "keras", "safetensors",
            "numba_cuda", "matplotlib", "ml_dtypes")  # fmt: skip


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(fastinit.__path__, "fastinit.")]
    return sorted(n for n in names if not n.endswith("__main__"))  # __main__ runs the CLI


def oldest_python() -> tuple[int, int]:
    """The lowest Python version pyproject's ``requires-python`` admits."""
    spec = re.search(r'^requires-python\s*=\s*"\s*>=\s*(\d+)\.(\d+)\s*"', PYPROJECT.read_text(), flags=re.M)
    assert spec, "requires-python is not of the form '>=X.Y'"
    return int(spec.group(1)), int(spec.group(2))


def test_this_python_is_one_the_package_declares():
    assert sys.version_info[:2] >= oldest_python()


@pytest.mark.parametrize("name", _modules())
def test_module_imports(name):
    try:
        importlib.import_module(name)
    except ImportError as error:
        missing = [m for m in OPTIONAL if importlib.util.find_spec(m) is None]
        if not missing:
            raise
        # an optional module refused for a missing dependency, and says how to get it
        assert "pip install" in str(error) or getattr(error, "name", None) in missing, f"{name}: {error!r}"
