"""The package's imports point one way, as docs/architecture.md draws them:

    entry (create_app, CLI) → screens (admin, auth) → read models → actions
        → services (ledger, statements, documents, blocklist, search, session hooks)
        → models → helpers

A module may import its own layer and the layers below it, never one above; there is no
import circle anywhere in ``crm/``; actions never import Flask or WTForms (the admin, the
CLI, the portal and the tests all call them the same way); and the migrations, which are
frozen history, import nothing of the application. Every import is read from the source
(lazy imports inside functions included), so nothing is run."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "crm"

# Bottom first. A module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("helpers", ("crm.permissions", "crm.personal_data", "crm.validation", "crm.security",
                 "crm.config", "crm.addressing", "crm.pdf", "crm.mail",
                 "crm.security_headers", "crm.after_commit", "crm.formatting",
                 "crm.portal_links")),
    ("models", ("crm.models",)),
    ("services", ("crm.extensions", "crm.ledger", "crm.ledger_totals", "crm.loyalty",
                  "crm.statements", "crm.documents", "crm.blocklist", "crm.search_index",
                  "crm.session_hooks", "crm.business")),
    ("actions", ("crm.actions",)),
    ("jobs", ("crm.jobs",)),
    ("read models", ("crm.customer_record", "crm.portal_scope", "crm.dashboard",
                     "crm.audit_sentences")),
    ("screens", ("crm.admin_views", "crm.auth", "crm.portal", "crm.inquiry")),
    ("entry", ("crm.cli",)),  # and the package itself, create_app (crm/__init__.py)
]
LEVEL = {name: level for level, (name, _) in enumerate(LAYERS)}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    if module == "crm":
        return "entry"
    best, found = -1, None
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), name
    if found is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to "
                             "docs/architecture.md)")
    return found


def imports_of(path: Path) -> set[str]:
    """Every module of the application that ``path`` imports, at the top or in a function.
    ``from crm import ledger`` counts as ``crm.ledger`` when that is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


def app_imports_of(path: Path) -> set[str]:
    return {m for m in imports_of(path) if m == "crm" or m.startswith("crm.")}


GRAPH = {module: app_imports_of(path) - {module} for module, path in MODULES.items()}


def test_every_module_has_a_layer():
    assert {module: layer_of(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_layer_and_those_below(module):
    mine = LEVEL[layer_of(module)]
    upward = sorted(f"{target} ({layer_of(target)})" for target in GRAPH[module]
                    if LEVEL[layer_of(target)] > mine)
    assert upward == [], f"{module} ({layer_of(module)}) imports from above"


def test_no_model_module_imports_actions_or_screens():
    offending = {
        module: sorted(t for t in targets
                       if t.startswith(("crm.actions", "crm.admin_views", "crm.portal")))
        for module, targets in GRAPH.items() if module.startswith("crm.models")
    }
    assert {m: t for m, t in offending.items() if t} == {}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_import_circle():
    assert _cycles(GRAPH) == []


def test_the_demo_package_has_no_import_circle():
    demo = {module_name(path): path for path in sorted((ROOT / "demo").rglob("*.py"))}
    graph = {module: {m for m in imports_of(path) if m in demo} - {module}
             for module, path in demo.items()}
    assert graph and _cycles(graph) == []


def test_the_circle_check_finds_a_circle():
    """The control for the test above: a made-up circle of three is found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_actions_never_import_flask_or_forms():
    web = ("flask", "flask_admin", "flask_login", "flask_wtf", "wtforms", "werkzeug")
    offending = {
        module: sorted(m for m in imports_of(MODULES[module]) if m.split(".")[0] in web)
        for module in MODULES if module.startswith("crm.actions")
    }
    assert {m: t for m, t in offending.items() if t} == {}


def test_migrations_import_nothing_of_the_application():
    """A migration is history: importing live code would change an old revision whenever
    that code changes."""
    offending = {
        str(path.relative_to(ROOT)): sorted(m for m in imports_of(path)
                                            if m.split(".")[0] in ("crm", "demo"))
        for path in sorted((ROOT / "migrations").rglob("*.py"))
    }
    assert {p: m for p, m in offending.items() if m} == {}


def test_the_application_never_imports_the_demo_data():
    offending = {module: sorted(m for m in imports_of(path) if m.split(".")[0] == "demo")
                 for module, path in MODULES.items()}
    assert {m: t for m, t in offending.items() if t} == {}
