"""Small helpers the tests share: one home each, so that no test module copies them."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import date
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlalchemy import select

from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from tests.factories import PASSWORD
from tests.factories import login
from tests.factories import make_user

#: The portal's zone: expiry dates are its days (docs/rules.md R2).
LONDON = ZoneInfo("Europe/London")

#: An itsdangerous-signed value (payload.timestamp.signature), as Flask-WTF makes CSRF tokens.
#: Each carries the second it was signed, so two pages made a second apart differ there.
SIGNED_VALUE = re.compile(r"[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{16,}")
#: The request id an error page quotes ("quote this reference"): new for every request.
REQUEST_ID = re.compile(r"<code>[0-9a-f]{32}</code>")


def without_signed_tokens(page: str) -> str:
    """``page`` with every signed token blanked (the form fields' and the one in ``hx-headers``),
    and the request id an error page quotes.

    Compare two pages through this, never raw: a token signed in another second differs.
    """
    return REQUEST_ID.sub("<code></code>", SIGNED_VALUE.sub("", page))


class _CsrfFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name") == "csrf_token" and found.get("value"):
            self.tokens.append(str(found["value"]))


def csrf_token_in(page: str) -> str:
    """The first form CSRF token in ``page`` (read with an HTML parser, not a regex)."""
    finder = _CsrfFinder()
    finder.feed(page)
    if not finder.tokens:
        raise AssertionError("no csrf_token field on the page")
    return finder.tokens[0]


def today_at(now: datetime) -> date:
    """The portal-zone date at the aware UTC instant ``now`` (what ``clock.today()`` returns)."""
    assert now.tzinfo is UTC
    return now.astimezone(LONDON).date()


def door_of(profile: Profile) -> str:
    """Where ``profile`` logs in: Administrators at the Console, everyone else at the Portal."""
    return "console" if profile is Profile.ADMINISTRATOR else "portal"


def sign_in_as(
    client: FlaskClient, profile: Profile, org: Organisation | None = None, **fields: Any
) -> User:
    """A new user of ``profile`` (in ``org``; ``fields`` go to ``make_user``) logged in on
    ``client`` at its door; fails the test unless the login took it past the login page."""
    user = make_user(org, profile=profile, **fields)
    response = login(client, user.user_id, door=door_of(profile))
    assert response.status_code == 302
    assert "/login" not in response.headers["Location"]
    return user


def csrf_sign_in(client: FlaskClient, user: User, door: str = "console") -> None:
    """Log ``user`` in through the real form, its CSRF token included (for CSRF-on tests)."""
    page = client.get(f"/{door}/login")
    assert page.status_code == 200
    token = csrf_token_in(page.get_data(as_text=True))
    response = client.post(
        f"/{door}/login",
        data={"user_id": user.user_id, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert "/login" not in response.headers["Location"]


def audit_events(
    subject: User | None = None, kind: str | None = None, *, actor: User | None = None
) -> list[AuditEvent]:
    """The audit events (about ``subject``, of ``kind``, by ``actor``: each if given), oldest
    first, as the database has them now (the session's snapshot is ended first)."""
    db.session.rollback()
    query = select(AuditEvent)
    if subject is not None:
        query = query.where(AuditEvent.subject_id == subject.id)
    if kind is not None:
        query = query.where(AuditEvent.kind == kind)
    if actor is not None:
        query = query.where(AuditEvent.actor_id == actor.id)
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def audit_count(subject: User, kind: str) -> int:
    """How many audit events of ``kind`` are about ``subject`` now."""
    return len(audit_events(subject, kind))


def timeline(req: HelpdeskRequest) -> list[RequestEvent]:
    """The Helpdesk request's timeline events, oldest first, as the database has them now."""
    db.session.rollback()
    return list(
        db.session.scalars(
            select(RequestEvent).where(RequestEvent.request_id == req.id).order_by(RequestEvent.id)
        )
    )
