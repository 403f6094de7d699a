"""The WebAuthn ceremonies of ``portal.second_factor.passkeys`` with a software authenticator:
the relying party is PORTAL_BASE_URL, challenges are single-use and short-lived, the sign
count must go up, and an answer for another origin or relying party is refused.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask

from portal.db import write_transaction
from portal.extensions import db
from portal.second_factor import passkeys
from portal.second_factor.passkeys import PasskeyError
from portal.second_factor.passkeys import StoredPasskey
from tests.factories import make_user
from tests.second_factor.soft_authenticator import SoftAuthenticator

BASE = "http://localhost:5000"
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)

pytestmark = pytest.mark.config(PORTAL_BASE_URL=BASE)


def register(user_id: int, key: SoftAuthenticator, *, now: datetime = NOW) -> StoredPasskey:
    with write_transaction(db.session):
        options = passkeys.registration_options(
            user_id=user_id,
            user_name="ada",
            display_name="Ada",
            user_handle=b"handle",
            existing=[],
            now=now,
        )
    with write_transaction(db.session):
        made = passkeys.verify_registration(user_id, key.create(options), now=now)
    return StoredPasskey(made.credential_id, made.public_key, made.sign_count)


def options_for(user_id: int, stored: StoredPasskey, *, now: datetime = NOW) -> str:
    with write_transaction(db.session):
        return passkeys.authentication_options(
            user_id=user_id, credentials=[stored.credential_id], now=now
        )


def verify(user_id: int, answer: str, stored: StoredPasskey, *, now: datetime = NOW) -> int:
    with write_transaction(db.session):
        return passkeys.verify_authentication(user_id, answer, stored, now=now)


def test_the_relying_party_is_the_base_url(app: Flask) -> None:
    rp = passkeys.relying_party()
    assert (rp.id, rp.origin) == ("localhost", BASE)


def test_register_then_authenticate(app: Flask) -> None:
    user = make_user()
    key = SoftAuthenticator(origin=BASE, rp_id="localhost")
    with write_transaction(db.session):
        options = json.loads(
            passkeys.registration_options(
                user_id=user.id,
                user_name=user.user_id,
                display_name=user.full_name,
                user_handle=b"h",
                existing=[b"old"],
                now=NOW,
            )
        )
    assert options["rp"]["id"] == "localhost"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["excludeCredentials"][0]["id"] == "b2xk"

    stored = register(user.id, key)
    assert stored.credential_id == key.credential_id
    answer = key.get(options_for(user.id, stored))
    assert verify(user.id, answer, stored) == 1


def test_a_challenge_is_used_once(app: Flask) -> None:
    user = make_user()
    key = SoftAuthenticator(origin=BASE, rp_id="localhost")
    stored = register(user.id, key)
    answer = key.get(options_for(user.id, stored))
    assert verify(user.id, answer, stored) == 1
    with pytest.raises(PasskeyError, match="challenge"):
        verify(user.id, answer, StoredPasskey(stored.credential_id, stored.public_key, 0))


def test_a_challenge_expires_after_five_minutes(app: Flask) -> None:
    user = make_user()
    key = SoftAuthenticator(origin=BASE, rp_id="localhost")
    stored = register(user.id, key)
    answer = key.get(options_for(user.id, stored))
    with pytest.raises(PasskeyError, match="challenge"):
        verify(user.id, answer, stored, now=NOW + timedelta(minutes=5))


def test_a_challenge_belongs_to_its_user_and_ceremony(app: Flask) -> None:
    ada, bob = make_user(), make_user()
    key = SoftAuthenticator(origin=BASE, rp_id="localhost")
    stored = register(ada.id, key)
    with pytest.raises(PasskeyError, match="challenge"):
        verify(bob.id, key.get(options_for(ada.id, stored)), stored)
    # A registration challenge does not do for a login.
    with write_transaction(db.session):
        options = passkeys.registration_options(
            user_id=ada.id, user_name="a", display_name="a", user_handle=b"h", existing=[], now=NOW
        )
    options_as_login = json.dumps(
        {"challenge": json.loads(options)["challenge"], "rpId": "localhost"}
    )
    with pytest.raises(PasskeyError, match="challenge"):
        verify(ada.id, key.get(options_as_login), stored)


def test_a_sign_count_that_does_not_go_up_is_refused(app: Flask) -> None:
    """A cloned key: the count it reports is not above the one stored."""
    user = make_user()
    key = SoftAuthenticator(origin=BASE, rp_id="localhost")
    stored = register(user.id, key)
    count = verify(user.id, key.get(options_for(user.id, stored)), stored)
    seen = StoredPasskey(stored.credential_id, stored.public_key, count)
    with pytest.raises(PasskeyError, match="sign count"):
        verify(user.id, key.get(options_for(user.id, seen), count_up=False), seen)


@pytest.mark.parametrize("where", ["origin", "rp id"])
def test_another_site_is_refused(app: Flask, where: str) -> None:
    user = make_user()
    key = SoftAuthenticator(origin=BASE, rp_id="localhost")
    stored = register(user.id, key)
    options = options_for(user.id, stored)
    if where == "origin":
        answer = key.get(options, origin="http://evil.example")
    else:
        answer = key.get(json.dumps({**json.loads(options), "rpId": "evil.example"}))
    with pytest.raises(PasskeyError):
        verify(user.id, answer, stored)


@pytest.mark.parametrize("junk", ["", "{", "[]", '{"response": {}}', "x" * 30_000])
def test_junk_is_refused(app: Flask, junk: str) -> None:
    user = make_user()
    with pytest.raises(PasskeyError), write_transaction(db.session):
        passkeys.verify_registration(user.id, junk, now=NOW)
