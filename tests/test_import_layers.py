"""No import cycle in the package: the modules' top-level imports form layers (docs/design.md).

Imports inside functions are left out: those are the deliberate lazy ones (optional
dependencies, numba.cuda on first use, the transformers adapter from the torch one).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fastinit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, statements, modules: set[str]) -> set[str]:
    """The fastinit modules that the import statements among ``statements`` of ``path`` name."""
    name = _module_name(path)
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for stmt in statements:
        if isinstance(stmt, ast.Import):
            found |= {a.name for a in stmt.names if a.name in modules}
        elif isinstance(stmt, ast.ImportFrom):
            if stmt.level:
                base = package.split(".")[: len(package.split(".")) - stmt.level + 1]
                source = ".".join(base + ([stmt.module] if stmt.module else []))
            else:
                source = stmt.module or ""
            if source in modules:
                found.add(source)
            found |= {f"{source}.{a.name}" for a in stmt.names if f"{source}.{a.name}" in modules}
    found.discard(name)
    return found


def _top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """fastinit modules that ``path`` imports when it is itself imported."""
    statements = []
    for node in ast.parse(path.read_text()).body:  # top-level statements only
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        statements += list(ast.walk(node)) if isinstance(node, (ast.If, ast.Try)) else [node]
    return _imported(path, statements, modules)


def _all_imports(path: Path, modules: set[str]) -> set[str]:
    """fastinit modules that ``path`` imports anywhere, inside functions too."""
    return _imported(path, ast.walk(ast.parse(path.read_text())), modules)


def _graph(imports=_top_level_imports) -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): imports(p, modules) for p in paths}


def _cycle_through(graph, start):
    """A path start -> ... -> start, or None."""
    stack, seen = [(start, (start,))], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                return (*path, start)
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, (*path, nxt)))
    return None


def test_the_graph_sees_known_imports():
    graph = _graph()
    assert "fastinit.driver" in graph["fastinit.samplers"]
    assert "fastinit.torch_tensors" in graph["fastinit.torch_models"]
    assert "fastinit.schemes.record" in graph["fastinit.schemes.variance_scaling"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle_through({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a") == ("a", "b", "c", "a")
    assert _cycle_through({"a": {"b"}, "b": set()}, "a") is None


def test_no_import_cycle_among_the_package_modules():
    graph = _graph()
    # a package's own submodules may be imported by its __init__ (re-exports): that is the
    # package importing its parts, not a cycle between layers
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    cycles = {name: c for name in graph if (c := _cycle_through(graph, name))}
    assert not cycles, cycles


def test_the_package_never_imports_its_former_api_path():
    # fastinit.api only re-exports, for code outside the package: inside, names come from the
    # modules that define them (samplers, driver, dtypes)
    graph = _graph(_all_imports)
    assert "fastinit.samplers" in graph["fastinit.api"]  # the walk sees imports
    users = sorted(
        name for name, targets in graph.items() if "fastinit.api" in targets and name != "fastinit"
    )
    assert not users, users
