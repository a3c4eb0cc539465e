"""The floor plan of ARCHITECTURE.md, held by parsing every module's imports (function-level ones too).

A lower layer never imports a higher one, packages of one layer never import each other, and no two
modules import each other in a circle, so each layer can be read, tested and replaced on its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ccr

SRC = Path(ccr.__file__).parent

# Rank of each top-level part of the package: an import may only go to a lower rank, or stay inside
# its own package. ARCHITECTURE.md draws the same picture.
LAYERS: dict[str, int] = {
    "ccr": 0, "ccr.errors": 0, "ccr.paths": 1, "ccr.printing": 0, "ccr.languages": 1, "ccr.config": 2,
    "ccr.dcot_settings": 0, "ccr.ot": 1,
    "ccr.corpus": 3,
    "ccr.stages": 4,
    "ccr.models": 5, "ccr.formats": 5,
    "ccr.translate": 6, "ccr.vision": 6, "ccr.caption": 6, "ccr.filter": 6, "ccr.report": 6,
    "ccr.train": 7,
    "ccr.testing": 8,
    "ccr.pipeline": 9,
    "ccr.demo": 10,
    "ccr.commands": 11,
    "ccr.cli": 12,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imports(name: str) -> set[str]:
    """The ccr modules ``name`` imports, wherever in the file the import statement is."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            prefix = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name:
                found.add(target)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def part(name: str) -> str:
    return ".".join(name.split(".")[:2])


def test_every_part_has_a_layer():
    assert {part(n) for n in MODULES} <= set(LAYERS), {part(n) for n in MODULES} - set(LAYERS)


def test_imports_only_go_down():
    # ccr.models builds its tiny stand-ins with ccr.testing's builders: a deliberate, lazy arrow to
    # the one testing module that depends on nothing of ccr's above the corpus.
    allowed = {("ccr.models", "ccr.testing.tiny_models")}
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                    if part(a) != part(b) and LAYERS[part(b)] >= LAYERS[part(a)] and (a, b) not in allowed)
    assert upward == []


def test_no_circles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    assert circles == []


def test_the_graph_is_read():
    """A parser that found nothing would pass the tests above: check it sees known arrows."""
    assert "ccr.corpus.corpus" in GRAPH["ccr.stages.runner"]
    assert "ccr.stages.runner" in GRAPH["ccr.stages.table"]
