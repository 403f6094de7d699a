"""``portal/accounts/rules.py`` imports the standard library only (docs/rules.md §2,
docs/architecture.md §5).

The module is read from disk and its ``ast`` walked, never imported, so a forbidden import is
reported even when the package it names happens to be installed.  Every import counts, including
those inside functions or ``if TYPE_CHECKING:`` blocks, relative imports (always project code),
and ``__import__("x")`` / ``importlib.import_module("x")`` calls.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

RULES_PY = Path(__file__).resolve().parents[2] / "portal" / "accounts" / "rules.py"
ALLOWED = frozenset(sys.stdlib_module_names) | {"__future__"}
_DYNAMIC_IMPORTERS = {"__import__", "import_module"}


def imported_modules(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``source``; relative ones keep their dots."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in _DYNAMIC_IMPORTERS:
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((node.lineno, arg.value))
                else:
                    found.append((node.lineno, "<dynamic>"))
    return found


def non_stdlib_imports(source: str, filename: str = "<string>") -> list[str]:
    """The imports of ``source`` whose top-level module is not in the standard library."""
    return [
        f"{filename}:{line}: {module}"
        for line, module in imported_modules(source, filename)
        if module.startswith(".") or module.split(".")[0] not in ALLOWED
    ]


def test_rules_module_imports_only_the_standard_library() -> None:
    source = RULES_PY.read_text(encoding="utf-8")
    assert imported_modules(source), "no imports found: is this the right file?"
    assert non_stdlib_imports(source, str(RULES_PY)) == []


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("import flask\n", "flask"),
        ("from flask import current_app\n", "flask"),
        ("import os, flask.json as fj\n", "flask.json"),
        ("from sqlalchemy.orm import Session\n", "sqlalchemy.orm"),
        ("from portal import clock\n", "portal"),
        ("from . import models\n", "."),
        ("from ..audit import record\n", "..audit"),
        ("def f():\n    import flask_login\n", "flask_login"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import flask\n", "flask"),
        ("flask = __import__('flask')\n", "flask"),
        ("import importlib\nf = importlib.import_module('flask')\n", "flask"),
        ("import importlib\nname = 'fl' + 'ask'\nimportlib.import_module(name)\n", "<dynamic>"),
    ],
)
def test_the_check_reports_a_non_stdlib_import(source: str, module: str) -> None:
    reported = non_stdlib_imports(source)
    assert len(reported) == 1
    assert reported[0].endswith(f": {module}")


def test_the_check_accepts_stdlib_imports() -> None:
    source = (
        "from __future__ import annotations\n"
        "import datetime\n"
        "from dataclasses import dataclass, replace\n"
        "from enum import StrEnum\n"
        "import zoneinfo as zi\n"
        "import importlib\n"
        "importlib.import_module('json')\n"
    )
    assert non_stdlib_imports(source) == []
