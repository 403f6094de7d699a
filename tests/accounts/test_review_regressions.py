"""Regression tests for defects found in review (each failed before its fix)."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text

from portal import ConfigError
from portal import clock
from portal import create_app
from portal.accounts import passwords
from portal.accounts import rules
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import nightly
from tests.conftest import base_settings
from tests.factories import PASSWORD
from tests.factories import apply
from tests.factories import login
from tests.factories import make_user
from tests.factories import message_codes
from tests.factories import refresh

WRONG = "not the right password at all"
NEW = "a perfectly good new passphrase"


def test_a_session_from_before_a_sweep_disable_does_not_return_after_re_enabling(
    client: FlaskClient,
) -> None:
    login_at = datetime(2026, 6, 10, 22, 50, tzinfo=UTC)  # 23:50 in London, the day before
    user = make_user(created_at=login_at - timedelta(days=5), expires_on=date(2026, 6, 11))
    with clock.frozen(login_at):
        login(client, user.user_id)
        assert client.get("/portal/").status_code == 200
        clock.advance(timedelta(minutes=15))  # 00:05: the expiry date is reached
        with write_transaction(db.session):
            assert nightly.sweep(now=clock.now(), today=clock.today())["expiry"] == 1
        user = refresh(user)
        apply(user, rules.set_expiry(user.to_state(), date(2026, 7, 11), today=clock.today()))
        apply(user, rules.reenable(user.to_state(), now=clock.now(), today=clock.today()))
        assert refresh(user).enabled
        clock.advance(timedelta(minutes=5))  # well within the idle timeout
        assert client.get("/portal/").status_code == 302  # the old session stays dead


def test_an_unparsable_next_does_not_break_a_login(client: FlaskClient) -> None:
    user = make_user()
    response = client.post(
        "/portal/login?next=/%09/%5B", data={"user_id": user.user_id, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/portal/"


@pytest.mark.parametrize("user_id", ["a\x00b", "x" * 5000])
def test_impossible_user_ids_are_unknown_not_errors(client: FlaskClient, user_id: str) -> None:
    response = login(client, user_id, WRONG)
    assert response.status_code == 200
    assert message_codes(response) == ["LOGIN-01"]


def test_unknown_user_ids_are_audited_without_what_was_typed(client: FlaskClient) -> None:
    login(client, "my secret password typed in the wrong box", WRONG)
    db.session.rollback()
    events = db.session.scalars(select(AuditEvent)).all()
    assert [(e.kind, e.actor, e.reason, e.subject) for e in events] == [
        ("login_failed", "anonymous", "unknown_user_id", None)
    ]
    assert "secret" not in repr([(e.details, e.subject, e.actor) for e in events])


def test_a_rehash_between_verify_and_write_does_not_void_a_right_password(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another login rehashed the password meanwhile: only a real change voids an attempt."""
    user = make_user()
    pk, url = user.id, app.config["SQLALCHEMY_DATABASE_URI"]
    original = passwords.verify_password

    def verify_then_rehash_elsewhere(stored: str | None, plain: str) -> bool:
        ok = original(stored, plain)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE users SET password_hash = :h WHERE id = :id"),
                {"h": passwords.hash_password(plain), "id": pk},
            )
        engine.dispose()
        return ok

    monkeypatch.setattr(passwords, "verify_password", verify_then_rehash_elsewhere)
    assert login(client, user.user_id).status_code == 302


def test_a_password_change_between_verify_and_write_voids_the_attempt(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user()
    pk, url = user.id, app.config["SQLALCHEMY_DATABASE_URI"]
    original = passwords.verify_password

    def verify_then_change_elsewhere(stored: str | None, plain: str) -> bool:
        ok = original(stored, plain)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE users SET password_changed_at = :t WHERE id = :id"),
                {
                    "t": clock.now().replace(tzinfo=None) if "sqlite" in url else clock.now(),
                    "id": pk,
                },
            )
        engine.dispose()
        return ok

    monkeypatch.setattr(passwords, "verify_password", verify_then_change_elsewhere)
    assert message_codes(login(client, user.user_id)) == ["LOGIN-01"]


def test_field_messages_on_the_login_page_have_codes_and_links(client: FlaskClient) -> None:
    page = login(client, "", "").get_data(as_text=True)
    assert 'href="/guides/troubleshooting#LOGIN-11"' in page
    assert 'href="/guides/troubleshooting#LOGIN-12"' in page


@pytest.mark.config(PORTAL_PASSWORD_MAX_LENGTH=200)
def test_the_login_length_limit_follows_the_policy_setting(client: FlaskClient) -> None:
    long_password = "a long passphrase, " * 8  # 152 characters
    user = make_user(password=long_password)
    assert login(client, user.user_id, long_password).status_code == 302


def test_wrong_current_passwords_count_towards_the_lockout(client: FlaskClient) -> None:
    user = make_user()
    login(client, user.user_id)
    for _ in range(rules.LOCKOUT_AFTER):
        client.post(
            "/account/password",
            data={"current_password": WRONG, "password": NEW, "confirm": NEW},
        )
    user = refresh(user)
    assert (user.enabled, user.disabled_reason) == (False, "lockout")
    assert client.get("/portal/").status_code == 302  # and that session is over


@pytest.mark.config(RATELIMIT_ENABLED=True, PORTAL_LOGIN_RATE_LIMIT="4 per minute")
def test_both_doors_share_one_rate_limit(client: FlaskClient) -> None:
    for door in ("portal", "console", "portal", "console"):
        assert login(client, "someone", WRONG, door=door).status_code == 200
    assert login(client, "someone", WRONG, door="console").status_code == 429
    assert login(client, "someone", WRONG, door="portal").status_code == 429


def test_sql_parameters_are_kept_out_of_error_messages(app: Flask) -> None:
    assert db.engine.hide_parameters


def test_write_transaction_refuses_changes_made_before_it(app: Flask) -> None:
    user = make_user()
    user.full_name = "changed outside"
    with pytest.raises(RuntimeError, match="inside the block"), write_transaction(db.session):
        pass
    db.session.rollback()


def test_a_short_secret_key_is_refused_in_production(database_url: str) -> None:
    settings = {**base_settings(database_url), "TESTING": False, "SECRET_KEY": "too short"}
    with pytest.raises(ConfigError, match="too short"):
        create_app(settings)
