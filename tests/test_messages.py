"""``portal/messages.py`` is the one home of the account messages, and the arrows point one way:
nothing in ``portal/accounts`` imports ``portal.guides`` (docs/architecture.md §2), and the
login service returns outcomes that the web layer turns into messages."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

from portal import messages
from portal.accounts import rules
from portal.accounts.service import LoginResult

PORTAL = Path(__file__).resolve().parent.parent / "portal"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_accounts_never_imports_guides() -> None:
    offenders = {
        str(path.relative_to(PORTAL)): sorted(m for m in _imports(path) if "guides" in m)
        for path in sorted((PORTAL / "accounts").glob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_login_service_returns_outcomes_not_messages() -> None:
    assert [f.name for f in fields(LoginResult)] == ["outcome", "user", "may_self_reset"]


def test_every_login_outcome_has_a_message() -> None:
    shown = {
        outcome: messages.for_login(outcome, may_self_reset=eligible)
        for outcome in rules.Outcome
        if outcome.value.startswith("refused_")
        and outcome
        not in (
            rules.Outcome.REFUSED_SELF,
            rules.Outcome.REFUSED_LAST_ADMIN,
            rules.Outcome.REFUSED_EXPIRED,
            rules.Outcome.REFUSED_PAST_DATE,
        )
        for eligible in (True, False)
    }
    assert all(m is not None and m.code.startswith("LOGIN-") for m in shown.values())
    assert messages.for_login(rules.Outcome.OK, may_self_reset=False) is None
    generic = messages.for_login(rules.Outcome.BAD_PASSWORD, may_self_reset=True)
    assert generic is not None
    assert generic.code == messages.GENERIC_FAILURE
    console = messages.for_login("refused_console", may_self_reset=False)
    assert console is not None
    assert console.code == messages.CONSOLE_NOT_ALLOWED


def test_the_refusal_texts_cover_what_the_rules_refuse() -> None:
    console = {rules.Outcome.REFUSED_SELF, rules.Outcome.REFUSED_LAST_ADMIN}
    console |= {rules.Outcome.REFUSED_EXPIRED, rules.Outcome.REFUSED_PAST_DATE}
    assert set(messages.CONSOLE_REFUSALS) == console
    assert set(messages.PROFILE_REFUSALS) == {
        rules.Outcome.REFUSED_SELF,
        rules.Outcome.REFUSED_LAST_ADMIN,
    }
    assert set(messages.CLI_DUE) == {rules.Reason.EXPIRY, rules.Reason.INACTIVITY}
    text = messages.cli_refusal(
        rules.Outcome.REFUSED_EXPIRED, user_id="u1", expires_on="2026-01-01", due=True
    )
    assert text.startswith("u1: due: its expiry date 2026-01-01 has been reached")
