"""No import cycle inside explorer/, counting every import: module level, inside
functions, and under `if TYPE_CHECKING:` (issue 27: collaborators are typed against
narrow protocols, explorer.session.host and .quant_host, not against the Session that
imports them). import-linter's contracts see runtime imports only; this sees them all."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "explorer"


def import_graph(package: Path) -> dict[str, set[str]]:
    """module -> the explorer modules it imports anywhere in its source (the project's
    cycle check: `from . import x` counts x when x is a module, else the package)."""
    trees: dict[str, tuple[bool, ast.Module]] = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_init else parts)
        trees[name] = (is_init, ast.parse(path.read_text(encoding="utf-8")))
    graph: dict[str, set[str]] = {m: set() for m in trees}
    for mod, (is_init, tree) in trees.items():
        pkg = mod.split(".") if is_init else mod.split(".")[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = pkg[:len(pkg) - node.level + 1] if node.level else []
                stem = ".".join(base + ([node.module] if node.module else []))
                names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in trees else stem
                         for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                while name not in trees and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in trees and name not in (mod, package.name):
                    graph[mod].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_graph_sees_type_checking_and_function_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "explorer"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from typing import TYPE_CHECKING\n"
                                      "if TYPE_CHECKING:\n    from .b import B\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "sub" / "c.py").write_text("from explorer.sub.a import x\n")
    assert cycles(import_graph(pkg)) == [["explorer.sub.a", "explorer.sub.b",
                                          "explorer.sub.c"]]


def test_no_import_cycle_in_explorer() -> None:
    graph = import_graph(PACKAGE)
    assert "explorer.session.session" in graph and len(graph) > 100  # the real package
    found = cycles(graph)
    assert not found, "import cycles (each line one loop's modules):\n" + "\n".join(
        " ".join(c) for c in found)
