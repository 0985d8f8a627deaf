"""Imports point down: no circle anywhere in src/agentcritic, counting the imports made inside
functions and the package ``__init__`` that importing a submodule runs first."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "agentcritic").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its body (functions included)."""
    mods = modules()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                found = owner(target)
                if found and found != mod:
                    graph[mod].add(found)
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    for mod in list(graph):
        for dep in list(graph[mod]):
            parent = dep.rpartition(".")[0]
            while parent and parent in graph and parent != mod and not mod.startswith(parent + "."):
                graph[mod].add(parent)
                parent = parent.rpartition(".")[0]
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
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
    return found


def test_the_walker_sees_imports_inside_functions_and_parent_packages() -> None:
    graph = import_graph()
    # a function-level import (pipeline imports the report inside run_report)
    assert "agentcritic.report.html" in graph["agentcritic.pipeline"]
    # a submodule import implies its package's __init__
    assert "agentcritic.report" in graph["agentcritic.pipeline"]
    # and a made-up circle is found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_the_package() -> None:
    found = cycles(import_graph())
    assert not found, "import circles (each line one circle):\n" + "\n".join(" <-> ".join(c) for c in found)


#: the layers of ARCHITECTURE.md, bottom first; a part imports only parts of lower layers
LAYERS = [
    ["errors"],
    ["types", "store", "stage_results", "lazy", "worker_cache", "intervals", "concurrency"],
    ["envs", "llm"],
    ["rendering", "agents"],
    ["specs"],
    ["config"],
    ["stage", "rm", "planning", "parallel", "export"],
    ["rollouts", "synth", "helper", "evaluate"],
    ["report"],
    ["pipeline"],
    ["demo"],
    ["cli"],
]


def test_imports_point_down_through_the_layers() -> None:
    layer = {part: i for i, parts in enumerate(LAYERS) for part in parts}
    graph = import_graph()
    parts = {m.split(".")[1] for m in graph if m.count(".") >= 1}
    assert parts <= set(layer), f"parts missing from LAYERS (and ARCHITECTURE.md): {sorted(parts - set(layer))}"
    upward = sorted(
        f"{m} -> {d}" for m, deps in graph.items() for d in deps
        if m != "agentcritic" and d != "agentcritic" and m.split(".")[1] != d.split(".")[1]
        and layer[d.split(".")[1]] >= layer[m.split(".")[1]]
    )
    assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)
