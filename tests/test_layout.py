"""The package's import graph: no cycles, and data flows top-down (STYLE §5).

The graph is read from the source with ``ast`` — every ``import`` statement, including
those inside functions — so it sees what a reader sees, not only what happens to load.
"""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "tfsparse")

# Floors from the top; a module may import its own floor and those below it, never above.
FLOORS = [
    ("tfsparse.cli",),
    ("tfsparse.pipelines",),
    ("tfsparse.export", "tfsparse.model_io", "tfsparse.plotting", "tfsparse.reporting"),
    ("tfsparse.training",),
    ("tfsparse.evaluation", "tfsparse.sanity"),
    ("tfsparse.certification", "tfsparse.metrics", "tfsparse.sparsity"),
    ("tfsparse.attacks", "tfsparse.models", "tfsparse.data"),
    ("tfsparse.layers",),
    ("tfsparse.compat", "tfsparse.errors", "tfsparse.results", "tfsparse.runlock", "tfsparse._version",
     "tfsparse._keras_guard", "tfsparse.keras3_bridge",
     "tfsparse.launch"),
]


def module_names():
    names = {}
    for root, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(root, file)
                parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                names[".".join(parts)] = path
    return names


def import_graph():
    """``{module: {imported tfsparse modules}}`` over every import statement in the package."""
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One cycle as a list of modules, or None (iterative DFS with colours)."""
    colour = {}
    for start in sorted(graph):
        if colour.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not colour.get(child):
                colour[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def floor_of(module):
    for index, floor in enumerate(FLOORS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in floor):
            return index
    return None


def test_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_tfsparse_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50 and "tfsparse.pipelines.train" in graph["tfsparse.pipelines"] | set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_every_module_has_a_floor_and_imports_only_downward():
    graph = import_graph()
    unplaced = [m for m in graph if m != "tfsparse" and floor_of(m) is None]
    assert not unplaced, f"modules without a floor in FLOORS: {unplaced}"
    upward = [
        f"{m} -> {t}" for m, targets in graph.items() if m != "tfsparse"
        for t in targets if t != "tfsparse" and floor_of(t) < floor_of(m)
    ]
    assert not upward, "imports of a higher floor: " + "; ".join(sorted(upward))


@pytest.mark.parametrize("script", sorted(f for f in os.listdir(os.path.join(REPO, "scripts"))
                                          if f.endswith(".py") and not f.startswith("_")))
def test_scripts_are_thin(script):
    with open(os.path.join(REPO, "scripts", script), encoding="utf-8") as handle:
        assert len(handle.read().splitlines()) < 80, f"{script} should stay a thin main over a pipeline"


def test_no_machines_absolute_paths_in_code_or_docs():
    # Issue 30, item 11: docs and scripts carried one machine's /work/... data and run paths.
    # Recorded benchmark outputs (benchmarks/*.json) are run records and keep what was run.
    found = []
    for folder in ("tfsparse", "scripts", "benchmarks", "configs", "examples", "docs"):
        for root, _, files in os.walk(os.path.join(REPO, folder)):
            for name in files:
                if name.endswith((".py", ".sh", ".md")):
                    path = os.path.join(root, name)
                    with open(path, encoding="utf-8") as handle:
                        for number, line in enumerate(handle, 1):
                            if "/work/" in line and "one machine's" not in line:
                                found.append(f"{os.path.relpath(path, REPO)}:{number}")
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        found += [f"README.md:{n}" for n, line in enumerate(handle, 1) if "/work/" in line]
    assert not found, "absolute /work/ paths (use paths relative to the repository): " + ", ".join(found)
