"""The layout rules of docs/architecture.md (issue 11): module size, no import circles, one namespace, driver walls."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# folder -> the import name it installs as (setup.py package_dir)
FOLDERS = {ROOT / "bridge": "linebridge", ROOT / "drivers": "linebridge.drivers"}
MAX_LINES = 400
# A driver sees the driver contract, the model types and the domain errors (DESIGN.md, "Rules"), plus
# the shared driver kit next to base.py (mDNS advertiser, simulator runner, task helpers).
DRIVER_MAY_IMPORT = (
    "linebridge.drivers.base",
    "linebridge.drivers.mdns",
    "linebridge.drivers.simkit",
    "linebridge.drivers.tasks",
    "linebridge.configbase",  # DriverOptions is a StrictModel; config-relative paths (via drivers.base)
    "linebridge.model",
    "linebridge.errors",
)


def is_generated(path: Path) -> bool:
    return "gen" in path.relative_to(ROOT).parts


def modules() -> dict[str, Path]:
    """Import name -> file of every non-generated module under bridge/ and drivers/."""
    found = {}
    for folder, prefix in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            if is_generated(path):
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = path
    return found


MODULES = modules()


def top_level_statements(body: list[ast.stmt]):
    """Statements run at import time: the body, and inside if/try/with blocks (TYPE_CHECKING included)."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.With):
            yield from top_level_statements(node.body)
            yield from top_level_statements(getattr(node, "orelse", []))
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from top_level_statements(block)


def imported_names(module: str, path: Path, everywhere: bool = False) -> set[str]:
    """Absolute names a module imports (module level only, unless `everywhere`); `from p import n` gives p.n."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = ast.walk(tree) if everywhere else top_level_statements(tree.body)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the linebridge modules it imports at module level, with the packages whose `__init__` that runs."""
    graph = {}
    for module, path in MODULES.items():
        targets = set()
        for name in imported_names(module, path):
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            targets.add(name)
            # Importing a.b.c runs a/__init__ and a/b/__init__ first: an edge to each package the
            # importer is not inside itself (its own parents are already being imported).
            parts = name.split(".")
            targets.update(
                parent
                for parent in (".".join(parts[:i]) for i in range(1, len(parts)))
                if not module.startswith(parent + ".")
            )
        targets.discard(module)
        targets.discard("")
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in MODULES.values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): {long}"


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import circles between linebridge modules: " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_graph_sees_a_circle_through_a_package_init():
    graph = import_graph()
    # config imports linebridge.security.config: the security package's __init__ runs first
    assert "linebridge.security" in graph["linebridge.config"]
    assert "linebridge.devices" not in graph["linebridge.devices.manager"]  # its own package: no edge


def test_cycle_finder_sees_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_graph_sees_type_checking_and_relative_imports(tmp_path):
    path = tmp_path / "x.py"
    path.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from linebridge.app import BridgeApp\n"
        "from . import model\nfrom .devices import manager\ndef f():\n    import linebridge.cli\n"
    )
    names = imported_names("linebridge.x", path)
    assert {"linebridge.app.BridgeApp", "linebridge.model", "linebridge.devices.manager"} <= names
    assert "linebridge.cli" not in names


@pytest.mark.parametrize(
    "folder", ["bridge", "drivers", "tests", "bench", "examples", "fuzz", "hil_tests", "scripts"]
)
def test_nothing_imports_the_old_top_level_packages(folder):
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")) if (ROOT / folder).exists() else []:
        if is_generated(path) if path.is_relative_to(ROOT / "bridge") else False:
            continue
        for name in imported_names("x", path, everywhere=True):
            if name.split(".")[0] in ("bridge", "drivers"):
                bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert not bad, "import linebridge / linebridge.drivers, never bridge or drivers: " + ", ".join(bad)


def driver_package(module: str) -> str | None:
    """`linebridge.drivers.ur` for any module inside drivers/ur/; None for drivers/base.py and friends."""
    parts = module.split(".")
    return ".".join(parts[:3]) if len(parts) > 3 or (len(parts) == 3 and module in _PACKAGES) else None


_PACKAGES = {m for m, p in MODULES.items() if p.name == "__init__.py"}


def test_drivers_see_only_the_driver_contract():
    bad = []
    for module, path in MODULES.items():
        if not module.startswith("linebridge.drivers"):
            continue
        own = driver_package(module)
        for name in imported_names(module, path, everywhere=True):
            if not name.startswith("linebridge"):
                continue
            if own and (name == own or name.startswith(own + ".")):
                continue
            if name == "linebridge.drivers" or any(
                name == allowed or name.startswith(allowed + ".") for allowed in DRIVER_MAY_IMPORT
            ):
                continue
            bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert not bad, (
        "a driver imports only linebridge.drivers.base (+ mdns, simkit, tasks), linebridge.model, linebridge.errors "
        "and its own package: " + ", ".join(bad)
    )
