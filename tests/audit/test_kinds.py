"""One registry of audit event kinds (docs/rules.md R9): every kind the code records has a label
in portal/audit/kinds.py, and ``record`` refuses any other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.accounts.rules import EventKind
from portal.audit import kinds
from portal.audit.models import AuditEvent
from portal.audit.record import record
from portal.extensions import db

PORTAL = Path(__file__).resolve().parents[2] / "portal"

#: First arguments of ``record(…)`` that are neither a literal nor a registry constant: the
#: events of a rules decision (``rules.Event.kind`` is a ``rules.EventKind``).
DECISION_KINDS = {"ev.kind"}


def _record_calls() -> list[tuple[str, int, ast.expr]]:
    """Every ``record(kind, …)`` call in portal/ (file, line, first argument)."""
    found = []
    for path in sorted(PORTAL.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if isinstance(node.func, ast.Name):
                name = node.func.id
            if name == "record":
                found.append((str(path.relative_to(PORTAL)), node.lineno, node.args[0]))
    return found


def test_every_rules_event_kind_has_a_label() -> None:
    assert {k.value for k in EventKind} <= set(kinds.LABELS)


def test_every_kind_constant_of_the_registry_has_a_label() -> None:
    constants = {
        name: value
        for name, value in vars(kinds).items()
        if name.isupper() and isinstance(value, str)
    }
    assert len(constants) >= 9
    assert set(constants.values()) <= set(kinds.LABELS)


def test_labels_are_distinct() -> None:
    labels = list(kinds.LABELS.values())
    assert len(labels) == len(set(labels))


def test_every_recorded_kind_is_a_registered_constant() -> None:
    """The code records kinds by name only: ``kinds.X`` or ``EventKind.X`` (both registered),
    or a rules decision's ``ev.kind``; never a string typed in place."""
    calls = _record_calls()
    assert len(calls) >= 20  # the scan found the recorders
    wrong = []
    for where, line, arg in calls:
        text = ast.unparse(arg)
        if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name):
            if arg.value.id == "kinds" and getattr(kinds, arg.attr, None) in kinds.LABELS:
                continue
            if arg.value.id == "EventKind" and arg.attr in EventKind.__members__:
                continue
        if text in DECISION_KINDS:
            continue
        wrong.append(f"{where}:{line}: record({text}, …)")
    assert wrong == []


def test_the_sweep_records_a_registered_kind() -> None:
    """The nightly sweep writes its events with INSERT … SELECT, not ``record``."""
    source = (PORTAL / "jobs" / "nightly.py").read_text(encoding="utf-8")
    assert "literal(rules.EventKind.SYSTEM_DISABLED.value)" in source
    assert EventKind.SYSTEM_DISABLED.value in kinds.LABELS


def test_a_stored_kind_we_no_longer_record_reads_as_words() -> None:
    assert kinds.label("made_up_kind") == "Made up kind"
    assert kinds.label(kinds.HELPDESK_USER_ID_SENT) == "User ID sent by the Helpdesk"


def test_record_refuses_an_unregistered_kind(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(kinds.UnknownKind):
            record("made_up_kind", actor=None, subject=None, now=clock.now())
        db.session.flush()
        count = db.session.scalar(select(func.count()).select_from(AuditEvent))
        assert count == 0
        db.session.rollback()
