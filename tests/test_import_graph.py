"""The package's modules form layers: no import circle (imports inside functions
counted), nothing internal goes through the package front, library code never
imports the command line.  Read from the source (ast), nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parent.parent / "bump_global"


def _module_name(path: Path) -> str:
    parts = ["bump_global", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> Dict[str, Path]:
    found = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    # The C extensions are modules too (they import nothing of the package).
    for stub in PACKAGE.glob("*.pyi"):
        found.setdefault(_module_name(stub), stub)
    return found


def _type_checking_only(node: ast.AST, parents: Dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(path: Path, modules: Set[str]) -> List[str]:
    """The package modules `path` imports at run time ("bump_global" for the front)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: List[str] = []
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "bump_global"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "bump_global":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.append(sub if sub in modules else node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and str(arg.value).startswith("bump_global"):
                found.append(str(arg.value))
    return found


def _graph() -> Dict[str, Set[str]]:
    modules = _modules()
    return {name: set(_imports(path, set(modules))) - {name}
            for name, path in modules.items() if path.suffix == ".py"}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    result: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_the_import_graph_has_no_circle() -> None:
    graph = _graph()
    assert len(graph) > 20 and "bump_global._api" in graph["bump_global._report"]
    assert _cycles(graph) == []


def test_a_circle_would_be_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_nothing_internal_goes_through_the_package_front() -> None:
    through_front = sorted(name for name, targets in _graph().items()
                           if "bump_global" in targets and name != "bump_global")
    assert through_front == []


def test_library_code_never_imports_the_command_line() -> None:
    offenders = sorted(name for name, targets in _graph().items()
                       if not name.startswith(("bump_global.commands", "bump_global.__main__"))
                       and any(t.startswith("bump_global.commands") for t in targets))
    assert offenders == []


def test_the_front_exports_the_public_api_only() -> None:
    from types import ModuleType

    import bump_global

    public = {"BumpGlobalError", "Measure", "Memory", "Stats", "install", "is_installed",
              "measure", "memory", "parse_size", "report", "report_dict", "stats"}
    assert set(bump_global.__all__) == public
    names = {name for name in dir(bump_global) if not name.startswith("_")
             and not isinstance(getattr(bump_global, name), ModuleType)}
    assert names - {"TYPE_CHECKING"} == public  # submodules aside (set by their import)
