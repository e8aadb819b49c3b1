"""The package's dependency direction, read from the source: lower layers never import upper
ones, and the parts a request crosses import each other in no circle."""

from __future__ import annotations

import ast
from pathlib import Path

import keygate

PACKAGE = Path(keygate.__file__).parent
LOWER = ("keygate.store", "keygate.catalog", "keygate.crypto")
UPPER = ("keygate.gateway", "keygate.control", "keygate.connect", "keygate.oauth")


def module_name(path: Path) -> str:
    """`keygate.x.y` for `src/keygate/x/y.py` (a package's `__init__` is the package)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("keygate", *parts)).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Each module → the keygate modules it imports, at any depth (function-level too)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                submodules = {f"{node.module}.{alias.name}" for alias in node.names}
                found.update(submodules)
                # `from pkg import submodule` imports that module, not the package's own code
                # beyond its `__init__` (already running when a submodule imports its siblings).
                if not submodules <= set(modules):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {dep for dep in found if dep in modules and dep != name}
    return graph


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether a module is one of `prefixes` or inside one."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path of imports from `start` back to itself, if there is one."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in graph[node]:
            if dep == start:
                return [*path, dep]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


def test_lower_layers_import_no_upper_one() -> None:
    graph = import_graph()
    wrong = [
        (name, dep)
        for name, deps in graph.items()
        if within(name, LOWER)
        for dep in deps
        if within(dep, UPPER)
    ]
    assert wrong == []


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert "keygate.cli.output" in graph["keygate.cli.apps_cmd"], "the graph misses imports"
    cycles = [c for n in graph if (c := cycle_from(graph, n))]
    assert cycles == []


def test_connect_links_are_made_by_the_connect_package() -> None:
    from keygate.connect.tokens import connect_url

    assert connect_url.__module__ == "keygate.connect.tokens"
    graph = import_graph()
    for user in ("keygate.oauth.lifecycle", "keygate.gateway.proxy"):
        assert not any(within(dep, ("keygate.control",)) for dep in graph[user]), user


COMPOSITION = ("keygate.app", "keygate.asgi", "keygate.cli")
"""The code that builds the runtime and hands its parts out (the CLI opens one per command)."""


def test_only_the_composition_code_imports_the_runtime() -> None:
    graph = import_graph()
    importers = {name for name, deps in graph.items() if "keygate.runtime" in deps}
    assert importers, "the graph should see the composition code import keygate.runtime"
    assert sorted(name for name in importers if not within(name, COMPOSITION)) == []
