"""The trainer's modules import each other without a circle, and never reach up into orchestration.

Every import counts, at module level, inside a function or under ``TYPE_CHECKING``: a circle that
only a late import keeps from failing today fails the day someone moves that import.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src"
HIGHER = ("ccr.pipeline", "ccr.cli", "ccr.demo")  # orchestration: the trainer is what it calls


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in (SRC / "ccr" / "train").rglob("*.py")}


def imports(path: Path) -> set[str]:
    """What a module imports; ``from package import submodule`` names the submodule, not the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = {f"{node.module}.{alias.name}" for alias in node.names} & MODULES.keys()
            found |= subs or {node.module}
    return found


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}  # visiting or done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "visiting"
        for dep in sorted(graph[module]):
            if state.get(dep) == "visiting":
                return [*path[path.index(dep):], dep]
            if dep not in state and (circle := visit(dep, [*path, dep])):
                return circle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module, [module])):
            return circle
    return None


def test_no_circle_between_trainer_modules():
    graph = {name: imports(path) & MODULES.keys() - {name} for name, path in MODULES.items()}
    assert find_circle(graph) is None, " -> ".join(find_circle(graph) or [])


def test_the_trainer_never_imports_orchestration():
    upward = {(name, dep) for name, path in MODULES.items() for dep in imports(path) if dep.startswith(HIGHER)}
    assert not upward


def test_the_circle_finder_finds_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None
