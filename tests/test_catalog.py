"""The spine every check hangs on: one module per catalog entry, declared codes, declared
dependencies, and a code base without import circles or checks importing checks."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import nndoctor
import nndoctor.checks
from nndoctor import catalog, runner

PACKAGE = Path(nndoctor.__file__).resolve().parent


def _check_modules() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(nndoctor.checks.__path__) if not m.name.startswith("_")}


def test_every_check_module_has_a_catalog_entry_and_the_reverse():
    assert _check_modules() == set(catalog.catalog_ids())
    for spec in catalog.load_catalog():
        assert callable(getattr(runner.check_module(spec.id), "run", None)), spec.id


def test_every_check_declares_its_finding_codes_with_titles():
    for spec in catalog.load_catalog():
        assert spec.codes, f"{spec.id} declares no codes"
        for code, title in spec.codes.items():
            assert code.startswith(f"{spec.id}.") and code.count(".") == 1, code
            assert title and len(title) < 120, code


def test_requirements_name_checks_of_the_catalog_and_costs_are_known():
    ids = set(catalog.catalog_ids())
    for spec in catalog.load_catalog():
        assert set(spec.requires) <= ids - {spec.id}, spec.id
        assert spec.cost in ("probe", "training-run"), spec.id


def test_an_undeclared_code_is_refused():
    spec = catalog.get_spec("lr_range")
    assert spec.qualify("too_low") == "lr_range.too_low"
    try:
        spec.qualify("not_a_code")
    except KeyError as exc:
        assert "undeclared" in str(exc)
    else:
        raise AssertionError("an undeclared code was accepted")


def _imports(path: Path) -> set[str]:
    """The nndoctor modules a file imports at module level (not inside functions: those are
    deliberate lazy imports, which cannot form an import-time circle)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nndoctor"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("nndoctor"))
    return found


def _module_graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_circles():
    graph = _module_graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]) if nxt in trail else nxt)
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_no_check_imports_another_check_and_results_import_no_renderer():
    graph = _module_graph()
    for module, imported in graph.items():
        if module.startswith("nndoctor.checks."):
            assert not {m for m in imported if m.startswith("nndoctor.checks.")}, module
    assert not {m for m in graph["nndoctor.result"] if m.startswith("nndoctor.report")}
