"""The import directions of docs/architecture.md §2, checked from the source (never imported).

- Nothing below the web layer imports ``flask.request``: services, queries, models, the audit
  writer, the mail queue and the jobs take what they need from a request as arguments.
- No module imports a route module (one that adds views to a blueprint) except the app factory,
  which registers them.
- ``portal/accounts/rules.py`` imports the standard library only: tests/rules/test_rules_is_pure.py.

The route modules and the request-hook modules are found in the code, not listed by hand.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PORTAL = Path(__file__).resolve().parent.parent / "portal"

#: The app factory: it imports every route module to register its blueprint.
FACTORY = "portal"

#: Web-layer modules that are neither route modules nor request hooks: the htmx reader, the
#: view decorators deciding who may open what, and the background runner, which copies a
#: request's facts into its thread.  Forms (``*forms.py``) are the web layer's input parsing
#: (Flask-WTF reads the request itself).
WEB_HELPERS = {
    "portal.htmx",
    "portal.access",
    "portal.console.decorators",
    "portal.background",
    "portal.url_cache",
}

#: Decorators that add a view to a blueprint.
_ROUTE_DECORATORS = {"route", "get", "post", "put", "patch", "delete"}
#: Calls that hook a module into every request (the web layer's own plumbing).
_HOOKS = {
    "before_request",
    "before_request_funcs",
    "after_request",
    "teardown_request",
    "register_error_handler",
    "errorhandler",
    "context_processor",
    "user_loader",
    "unauthorized_handler",
}


def _name(path: Path) -> str:
    parts = list(path.relative_to(PORTAL.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _trees() -> dict[str, ast.Module]:
    return {
        _name(path): ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for path in sorted(PORTAL.rglob("*.py"))
        if "migrations" not in path.parts
    }


def _imports(module: str, tree: ast.Module) -> set[str]:
    """Every portal module ``module`` imports, anywhere in its body (functions included)."""
    modules = _trees()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level or None]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            # ``from portal.x import y`` imports the module portal.x.y when there is one.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules}


def _calls_method(tree: ast.Module, names: set[str]) -> bool:
    return any(isinstance(node, ast.Attribute) and node.attr in names for node in ast.walk(tree))


def _is_route_module(tree: ast.Module) -> bool:
    """Adds a view to a blueprint: ``@bp.get(…)``, ``@bp.route(…)`` or ``add_url_rule``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr in _ROUTE_DECORATORS
                    and isinstance(deco.func.value, ast.Name)
                    and deco.func.value.id.endswith("bp")
                ):
                    return True
    return _calls_method(tree, {"add_url_rule"})


def route_modules() -> set[str]:
    return {name for name, tree in _trees().items() if _is_route_module(tree)}


def web_layer() -> set[str]:
    """Route modules, request-hook modules, forms and the few web helpers."""
    hooks = {name for name, tree in _trees().items() if _calls_method(tree, _HOOKS)}
    forms = {name for name in _trees() if name.rsplit(".", 1)[-1].endswith("forms")}
    return route_modules() | hooks | forms | WEB_HELPERS | {FACTORY}


def _reads_flask_request(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module in ("flask", "flask.globals")
            and any(alias.name == "request" for alias in node.names)
        ):
            return True
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "request"
            and isinstance(node.value, ast.Name)
            and node.value.id == "flask"
        ):
            return True
    return False


def test_the_route_modules_are_found() -> None:
    found = route_modules()
    for expected in (
        "portal.auth.views",
        "portal.console.audit",
        "portal.console.users",
        "portal.helpdesk.public",
        "portal.ops.views",
        "portal.cookies",
    ):
        assert expected in found
    assert "portal.console" not in found  # the package only defines the blueprint
    assert "portal.audit.queries" not in found


def test_nothing_below_the_web_layer_reads_flask_request() -> None:
    web = web_layer()
    assert {"portal.htmx", "portal.logs", "portal.request_facts"} <= web
    assert "portal.audit.record" not in web
    offenders = sorted(
        name for name, tree in _trees().items() if name not in web and _reads_flask_request(tree)
    )
    assert offenders == []


def test_no_module_imports_a_route_module_but_the_factory() -> None:
    routes = route_modules()
    wrong = sorted(
        (name, imported)
        for name, tree in _trees().items()
        if name != FACTORY
        for imported in _imports(name, tree) & routes
        if imported != name
    )
    assert wrong == []


def test_the_factory_registers_every_route_module() -> None:
    """Every route module is imported by the factory (else its views would silently vanish)."""
    assert route_modules() - {"portal.ops.views"} <= _imports(FACTORY, _trees()[FACTORY])
    assert "portal.ops.views" in _imports(FACTORY, _trees()[FACTORY])


def test_the_checks_can_fail() -> None:
    """The detectors see what they look for (so an empty list of offenders means something)."""
    source = "from flask import request\n@bp.post('/x')\ndef x(): ...\n"
    tree = ast.parse(source)
    assert _reads_flask_request(tree)
    assert _is_route_module(tree)
    assert not _reads_flask_request(ast.parse("from flask import g\n"))
    assert _reads_flask_request(ast.parse("import flask\nflask.request.args\n"))
