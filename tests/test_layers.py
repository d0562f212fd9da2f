"""The house's rules of direction (STYLE.md): the import graph of the project's own modules has
no cycle, and nothing imports upward: the pipeline and the channels never import the admin or
the task interfaces, and the core never imports monitoring or notifications."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("atomsite", "strategies", "monitoring", "notifications")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports, at any depth of its code (lazy imports count)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def is_in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("strategies.pipeline", "strategies.admin"),
        ("strategies.pipeline", "strategies.tasks"),
        ("strategies.platforms", "strategies.admin"),
        ("strategies.platforms", "strategies.tasks"),
        ("strategies.services", "strategies.admin"),
        ("strategies.services", "strategies.tasks"),
        ("strategies.models", "strategies.pipeline"),
        ("strategies.matching", "strategies.pipeline"),
        ("strategies", "monitoring"),
        ("strategies", "notifications"),
        ("monitoring", "notifications"),
    ],
)
def test_nothing_imports_upward(graph, lower, upper):
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if is_in(module, lower)
        for target in targets
        if is_in(target, upper) and not is_in(target, lower)
    )
    assert upward == []


def test_the_import_graph_has_no_cycle(graph):
    # Package __init__ modules that only register submodules (the admin) are edges down, so a
    # plain depth-first search over modules finds any real cycle.
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_rules_see_real_imports(graph):
    # The checker itself must read imports, or the two tests above pass on nothing.
    assert "strategies.pipeline.dispatch" in graph["strategies.pipeline.intake"]
    assert "strategies.pipeline.publish" in graph["strategies.pipeline.dispatch"]
    assert "strategies.models" in graph["strategies.pipeline.decide"]
