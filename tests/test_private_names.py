"""No private name crosses a module boundary inside the package: no ``from x import _y`` of a
fastinit module, and no ``x._y`` on a name bound to an imported fastinit module. A module's
private names are its own to change; what another module needs is public."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fastinit"

# (importing file, "module:name") pairs allowed to cross, each with the reason it must.
ALLOWED: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(path: Path, module: str | None, level: int) -> str | None:
    """The absolute name of ``from <level dots><module> import ...`` in ``path``."""
    if level == 0:
        return module if module and (module == "fastinit" or module.startswith("fastinit.")) else None
    base = _module_name(path).split(".")
    if not _is_package(path):
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / relative).with_suffix(".py").is_file() or (root / relative / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def crossings():
    """(file, "module:name", line) of every private name a package module takes from another."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += crossings_in(path, path.read_text(encoding="utf-8"))
    return found


def crossings_in(path: Path, source: str):
    found = []
    tree = ast.parse(source, filename=str(path))
    where = str(path.relative_to(PACKAGE.parent))
    modules: dict[str, str] = {}  # local name -> fastinit module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            origin = _resolve(path, node.module, node.level)
            if origin is None:
                continue
            for alias in node.names:
                full = f"{origin}.{alias.name}"
                if _is_module(full):
                    modules[alias.asname or alias.name] = full
                elif _private(alias.name):
                    found.append((where, f"{origin}:{alias.name}", node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("fastinit") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _private(node.attr)
        ):
            found.append((where, f"{modules[node.value.id]}:{node.attr}", node.lineno))
    return found


def test_no_private_name_crosses_a_module_boundary():
    bad = [f"{where}:{line} uses {name}" for where, name, line in crossings() if (where, name) not in ALLOWED]
    assert not bad, "private names used across modules:\n" + "\n".join(bad)


def test_the_allowlist_has_no_stale_entries():
    used = {(where, name) for where, name, _ in crossings()}
    assert set(ALLOWED) <= used, set(ALLOWED) - used


def test_the_check_sees_both_forms():
    """The checker itself: a from-import of a private name, an attribute on an imported module,
    and neither for public names or for attributes of objects that are not modules."""
    path = PACKAGE / "backends" / "cuda" / "launch.py"
    source = (
        "from .device_code import _pair32, dense_name\n"
        "from . import device_code\n"
        "from ..plan import FillPlan\n"
        "device_code._store\n"
        "device_code.bind\n"
        "FillPlan._fields\n"
    )
    assert [name for _, name, _ in crossings_in(path, source)] == [
        "fastinit.backends.cuda.device_code:_pair32",
        "fastinit.backends.cuda.device_code:_store",
    ]
