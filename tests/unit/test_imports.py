"""Imports under airlock/ run one way, and never in a circle.

Every module is read with `ast`: imports at the top, inside functions and under
TYPE_CHECKING all count (an import moved into a function to dodge a cycle is still one).
Each module belongs to a unit of LAYERS; a module may import its own unit or a unit of a
lower layer, nothing else. A new module under an existing unit needs nothing here; a new
unit needs a line in LAYERS (docs/DEVELOPING.md, "Layout", says where things go).

An import of `airlock.a.b` is an edge to `airlock.a.b` only: the parent packages that
Python runs first hold no code but their docstring and re-exports of their own modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "airlock"

# unit -> layer. Entry points on top, the model at the bottom: cli -> lab -> bundle build,
# pin (and check) -> bundle manifest (and inventory, runner) -> the leaves.
LAYERS = {
    "airlock.bundle.__main__": 7,  # `python -m airlock.bundle`: an entry point, like cli
    "airlock.cli": 6,
    "airlock.lab": 5,
    "airlock.check": 4,
    "airlock.upgrade": 1,  # reads a bundle, renders a plan: errors only
    "airlock.kubectl": 4,  # the bundle's kubectl for an inventory: reads the inventory
    "airlock.status": 0,  # turns status.yml's events into the status: no airlock imports
    "airlock.collection": 2,  # builds the collection tarball: errors, paths, the version
    "airlock.certs": 0,  # turns run events into the certificate table: no airlock imports
    "airlock.timings": 0,  # where a run's time went, from its events: no airlock imports
    "airlock.nodes": 4,  # which hosts a node change touches: reads the inventory model
    "airlock.monitoring": 4,  # where the monitoring stack answers: reads the inventory
    "airlock.bundle.build": 4,
    "airlock.bundle.pin": 4,
    "airlock.bundle.manifest": 3,
    "airlock.inventory": 3,
    "airlock.runner": 3,
    "airlock.podman": 2,
    "airlock.paths": 1,
    "airlock.errors": 0,
    "airlock.arch": 0,
    "airlock.tarball": 0,
    "airlock.bundle": 0,  # the package itself: its docstring only
    "airlock": 0,  # the package itself: __version__
}
# Packages whose unit is their __init__ alone (their sub-packages are units of their own).
EXACT = {"airlock", "airlock.bundle"}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}


def imports_of(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """Every airlock module `name` imports, wherever the import statement is."""
    known = set(known)
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m in known and m != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    mods = modules(package)
    return {name: imports_of(name, path, mods) for name, path in mods.items()}


def unit_of(module: str) -> str | None:
    for unit in sorted(LAYERS, key=len, reverse=True):
        if module == unit or (unit not in EXACT and module.startswith(unit + ".")):
            return unit
    return None


def wrong_way(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Each import against the direction of LAYERS, as one line naming both modules."""
    out = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            su, tu = unit_of(source), unit_of(target)
            if su is None or tu is None or su == tu or LAYERS[su] > LAYERS[tu]:
                continue
            out.append(
                f"{source} (layer {LAYERS[su]}, {su}) imports {target} "
                f"(layer {LAYERS[tu]}, {tu}): imports must go down the layers"
            )
    return out


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_in(group, graph) for group in groups]


def _path_in(group: set[str], graph: Mapping[str, Iterable[str]]) -> list[str]:
    """A cycle through the group's first module, by breadth-first search inside it."""
    start = min(group)
    came: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(set(graph.get(node, ())) & group):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in came:
                    came[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return [start, start]


def test_every_module_has_a_layer():
    missing = [m for m in modules() if unit_of(m) is None]
    assert not missing, "modules in no unit of LAYERS (tests/unit/test_imports.py): " + ", ".join(
        missing
    )


def test_imports_follow_the_layers():
    problems = wrong_way(import_graph())
    assert not problems, "imports against the layers:\n  " + "\n  ".join(problems)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n  " + "\n  ".join(" -> ".join(c) for c in found)


def test_nothing_imports_the_cli():
    graph = import_graph()
    users = sorted(
        source
        for source, targets in graph.items()
        if unit_of(source) != "airlock.cli"
        and not source.endswith(".__main__")
        and any(unit_of(t) == "airlock.cli" for t in targets)
    )
    assert not users, f"only entry points (__main__) may import airlock.cli: {users}"


def test_the_checks_see_what_they_must(tmp_path):
    """The walker finds function-level, TYPE_CHECKING and relative imports, and the
    checks report a cycle and an upward import by name."""
    pkg = tmp_path / "airlock"
    (pkg / "lab").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def f():\n    from airlock.lab import hosts\n")
    (pkg / "lab" / "__init__.py").write_text("")
    (pkg / "lab" / "hosts.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import spec\n"
    )
    (pkg / "lab" / "spec.py").write_text("import airlock.lab.hosts\nfrom airlock import errors\n")
    sample = import_graph(pkg)
    assert sample == {
        "airlock": set(),
        "airlock.errors": {"airlock.lab.hosts"},
        "airlock.lab": set(),
        "airlock.lab.hosts": {"airlock.lab.spec"},
        "airlock.lab.spec": {"airlock.lab.hosts", "airlock.errors"},
    }
    assert cycles(sample) == [
        ["airlock.errors", "airlock.lab.hosts", "airlock.lab.spec", "airlock.errors"]
    ]
    assert wrong_way(sample) == [
        "airlock.errors (layer 0, airlock.errors) imports airlock.lab.hosts "
        "(layer 5, airlock.lab): imports must go down the layers"
    ]
