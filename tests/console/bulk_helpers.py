"""Helpers for the bulk action and CSV tests: many users at once without hashing a password
each (one hash, set-based inserts, valid states), and the bulk POST."""

from __future__ import annotations

import re
import secrets
from datetime import date
from datetime import timedelta
from functools import cache
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import insert
from sqlalchemy import select
from werkzeug.test import TestResponse

from portal import clock
from portal.accounts import passwords
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import PASSWORD

BULK_RESULT = re.compile(r"^/console/users/bulk/(\d+)$")


@cache
def _hash() -> str:
    return passwords.hash_password(PASSWORD)


def fast_users(
    org: Organisation,
    count: int,
    prefix: str,
    *,
    profile: Profile = Profile.CLAIMS_HANDLER,
    expires_on: date | None = None,
) -> list[int]:
    """``count`` users with access, inserted in one statement; their primary keys in order."""
    now = clock.now()
    expiry = expires_on or clock.today() + timedelta(days=365)
    rows: list[dict[str, Any]] = []
    for n in range(count):
        uid = f"{prefix}{n:05d}"
        name, email = f"Person {uid}", f"{uid}@example.com"
        rows.append(
            {
                "user_id": uid,
                "user_id_key": normalise_key(uid),
                "full_name": name,
                "full_name_key": normalise_key(name),
                "email": email,
                "email_key": normalise_key(email),
                "profile": profile.value,
                "organisation_id": org.id,
                "password_hash": _hash(),
                "enabled": True,
                "active": True,
                "disabled_reason": None,
                "failed_attempts": 0,
                "access_granted_at": now,
                "last_use_at": now,
                "expires_on": expiry,
                "must_change_password": False,
                "session_token": secrets.token_hex(16),
                "created_at": now,
            }
        )
    with write_transaction(db.session):
        db.session.execute(insert(User), rows)
    return list(
        db.session.scalars(
            select(User.id)
            .where(User.organisation_id == org.id, User.user_id.like(f"{prefix}%"))
            .order_by(User.user_id_key)
        )
    )


def bulk(
    client: FlaskClient, action: str, users: list[Any] | None = None, **fields: Any
) -> TestResponse:
    data: dict[str, Any] = {"action": action, "confirmed": "yes", **fields}
    if users is not None:
        data["user"] = [str(u) for u in users]
    return client.post("/console/users/bulk", data=data)


def result_id(response: TestResponse) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    found = BULK_RESULT.match(response.headers["Location"])
    assert found is not None, response.headers["Location"]
    return int(found.group(1))
