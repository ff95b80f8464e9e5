"""The package arrows of docs/architecture.md, checked on the source: no import points the wrong way, none cycles.

Every ``.py`` file of every top-level package is parsed with :mod:`ast`; every import counts,
function-local and ``TYPE_CHECKING`` ones included, relative ones resolved against the file's
package. Imports made by name at run time (the CLI's entry-point plug-ins, lazy package surfaces)
are declarations outside the code and are not edges.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVERY = frozenset({"foundation", "supernet", "imagedata", "distill", "evaluators", "nas", "dashboards", "webapp"})
# package -> the packages it must never import (the NEVER table of docs/architecture.md)
NEVER = {
    "foundation": EVERY - {"foundation"},  # the leaf: the error root, registries, atomic writes, hashing, weights
    "supernet": {"imagedata", "distill", "evaluators", "nas", "dashboards", "webapp"},
    "imagedata": {"supernet", "distill", "evaluators", "nas", "dashboards", "webapp"},
    "evaluators": {"distill", "nas", "dashboards", "webapp"},
    "distill": {"nas", "dashboards", "webapp"},
    "nas": {"dashboards", "webapp"},
    "dashboards": {"webapp"},  # webapp composes nas.service and dashboards; nothing imports it
    "webapp": set(),
}
READ_MODEL = "dashboards.read_model"  # the one dashboards module that may import another project package
# Edges that break a rule and are being removed on another branch: each must still exist (see
# test_temporary_allowances_are_still_needed), so the entry goes when its edge does.
TEMPORARY: dict = {}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted
    target: str  # imported module, dotted (a submodule when ``from pkg import submodule``)
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.source} imports {self.target}"


def packages() -> list[str]:
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for package in packages() for path in sorted((ROOT / package).rglob("*.py"))}


def _resolve(node: ast.ImportFrom, source: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def edges() -> tuple[Edge, ...]:
    found = []
    for source, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [Edge(source, alias.name, path, node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(node, source, path.name == "__init__.py")
                for alias in node.names:  # ``from pkg import submodule`` depends on the submodule itself
                    name = f"{target}.{alias.name}"
                    found.append(Edge(source, name if name in modules() else target, path, node.lineno))
    return tuple(dict.fromkeys(found))  # one edge per (source, target, line)


def top(module: str) -> str:
    return module.split(".")[0]


def wrong_way() -> list[Edge]:
    return [e for e in edges() if top(e.target) in NEVER.get(top(e.source), set())]


def test_every_package_has_a_rule():
    assert set(packages()) <= EVERY, f"add {set(packages()) - EVERY} to NEVER and to docs/architecture.md"


def test_the_parser_sees_function_local_and_relative_imports():
    by_source = {(e.source, e.target) for e in edges()}
    assert ("evaluators.metric_catalog", "evaluators.metric_impls") in by_source  # from . import metric_impls
    assert ("evaluators.metric_impls.paired", "evaluators.metrics") in by_source  # from ..metrics import ...
    assert ("dashboards.read_model", "nas.search_setup") in by_source  # inside a function
    assert ("webapp.app", "dashboards.pages") in by_source


def test_no_import_points_the_wrong_way():
    offending = [e for e in wrong_way() if (top(e.source), e.target) not in TEMPORARY]
    assert not offending, "imports that point the wrong way (docs/architecture.md):\n" + "\n".join(map(str, offending))


def test_temporary_allowances_are_still_needed():
    present = {(top(e.source), e.target) for e in wrong_way()}
    gone = {edge: why for edge, why in TEMPORARY.items() if edge not in present}
    assert not gone, f"remove these from TEMPORARY, their edges are gone: {gone}"


def test_dashboards_read_through_one_read_model():
    outside = [e for e in edges() if top(e.source) == "dashboards" and e.source != READ_MODEL
               and top(e.target) in EVERY - {"dashboards"}]
    assert not outside, f"only {READ_MODEL} may import the project:\n" + "\n".join(map(str, outside))


def test_nothing_imports_the_web_app():
    users = [e for e in edges() if top(e.target) == "webapp" and top(e.source) != "webapp"]
    assert not users, "\n".join(map(str, users))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("package", packages())
def test_no_import_cycle_between_modules_of_a_package(package):
    """Edges between the package's own modules, ``__init__`` modules included (``from . import metric_impls``
    runs ``metric_impls/__init__.py``); the implicit import of a module's parent package is not an edge."""
    graph: dict[str, set[str]] = {}
    for e in edges():
        if top(e.source) == top(e.target) == package and e.target in modules() and e.target != e.source:
            graph.setdefault(e.source, set()).add(e.target)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


@pytest.mark.parametrize("package", ["distill", "evaluators", "nas"])
def test_package_surface_resolves(package):
    module = __import__(package)
    assert module.__all__, f"{package} exports nothing"
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_the_cli_starts_without_heavy_libraries():
    code = ("import sys, nas, distill, evaluators, nas.cli; nas.cli.build_parser(); "
            "print(sorted(m for m in ('mlflow', 'torchmetrics', 'sqlalchemy', 'ray', 'optuna') if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert shown.returncode == 0 and shown.stdout.strip() == "[]", shown.stderr
