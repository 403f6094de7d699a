"""Emails to an organisation's Administrators about its users: the nightly expiry digest
(docs/rules.md §7).  The lockout emails are in ``lockout_notices``.

It goes through ``portal.mail_queue``: stored in the transaction that causes them, sent after
the commit, retried by the nightly job, never lost.  Recipients are the organisation's
Administrators *with access* as the rules say at the time of the run (``states``: Enabled, not
expired, not inactive); a User ID that is not one of them gets nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from datetime import datetime
from datetime import timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import select

from portal import emails
from portal import links
from portal import mail_queue
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.accounts.rules import Access
from portal.extensions import db

DIGEST_PURPOSE = "expiry.digest"
#: The digest lists the users whose expiry date falls within this many days after today.
DIGEST_DAYS = 14
#: A digest names at most this many users (then says how many more the Console shows).
DIGEST_MAX_LINES = 500


def _administrators(
    organisations: Any, *, now: datetime, today: date
) -> dict[int, list[tuple[int, str]]]:
    """(id, email) of the Administrators with access of each organisation in
    ``organisations`` (a list of ids, or a subquery of them)."""
    found: dict[int, list[tuple[int, str]]] = {}
    rows = db.session.execute(
        select(User.organisation_id, User.id, User.email)
        .where(
            User.organisation_id.in_(organisations),
            states.administrator_with_access(now, today),
        )
        .order_by(User.organisation_id, User.id)
    )
    for org_id, pk, email in rows:
        found.setdefault(org_id, []).append((pk, email))
    return found


def _expiring_condition(today: date) -> ColumnElement[bool]:
    """Users with access whose expiry date is within DIGEST_DAYS after today."""
    last = today + timedelta(days=DIGEST_DAYS)
    return (
        states.in_state(Access.HAS_ACCESS) & (User.expires_on > today) & (User.expires_on <= last)
    )


def _expiring(today: date) -> Iterator[tuple[int, str, str, str, date]]:
    """(organisation id, organisation name, User ID, full name, expiry date) of every user
    expiring soon, by organisation; one query, streamed."""
    query = (
        select(Organisation.id, Organisation.name, User.user_id, User.full_name, User.expires_on)
        .join(Organisation, Organisation.id == User.organisation_id)
        .where(_expiring_condition(today))
        .order_by(User.organisation_id, User.expires_on, User.user_id_key)
        .execution_options(yield_per=1000)
    )
    for org_id, org_name, user_id, full_name, expires_on in db.session.execute(query).tuples():
        assert expires_on is not None  # the condition compares it with dates
        yield org_id, org_name, user_id, full_name, expires_on


def _digest_body(name: str, users: list[tuple[str, str, date]], total: int, today: date) -> str:
    return emails.render(
        "expiry_digest.txt",
        name=name,
        days=DIGEST_DAYS,
        users=users,
        today=today,
        more=max(0, total - len(users)),
        users_link=links.absolute_url("/console/users?sort=expiry"),
    )


def queue_expiry_digests(*, now: datetime, today: date) -> dict[str, int]:
    """Inside the caller's write transaction: one digest per Administrator with access of each
    organisation that has users expiring within DIGEST_DAYS (no email when there are none)."""
    organisations = mails = 0
    expiring_orgs = (
        select(User.organisation_id).where(_expiring_condition(today)).distinct().scalar_subquery()
    )
    administrators = _administrators(expiring_orgs, now=now, today=today)
    for (org_id, name), rows in groupby(_expiring(today), key=lambda r: (r[0], r[1])):
        users: list[tuple[str, str, date]] = []
        total = 0
        for _org, _name, user_id, full_name, expires_on in rows:
            total += 1
            if len(users) < DIGEST_MAX_LINES:
                users.append((user_id, full_name, expires_on))
        admins = administrators.get(org_id, [])
        if not admins:
            continue
        subject = f"Claims Portal: {total} user{'s' if total != 1 else ''} of {name} expire soon"
        body = _digest_body(name, users, total, today)
        for _pk, email in admins:
            mail_queue.enqueue(email, subject[:200], body, purpose=DIGEST_PURPOSE)
            mails += 1
        organisations += 1
    return {"organisations": organisations, "digests": mails}
