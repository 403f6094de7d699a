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
from portal.accounts import lockout_risk
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.accounts.rules import Access
from portal.config import DEFAULTS
from portal.extensions import db
from portal.reviews import service as review_service

DIGEST_PURPOSE = "expiry.digest"
#: The digest lists the users whose expiry date falls within this many days after today.
DIGEST_DAYS = 14
#: A digest names at most this many users (then says how many more the Console shows).
DIGEST_MAX_LINES = 500
DEFAULT_REVIEW_DAYS: int = DEFAULTS["PORTAL_ACCESS_REVIEW_DAYS"]


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


#: An overdue access review is repeated in a digest of its own on the day it falls due and
#: every this many days after (a digest sent for expiring users always carries it).
REVIEW_REMINDER_EVERY_DAYS = 7


def _digest_body(
    name: str,
    users: list[tuple[str, str, date]],
    total: int,
    today: date,
    *,
    risk: lockout_risk.OrganisationRisk | None,
    admins_ending: list[lockout_risk.AdministratorEnding],
    review_due_on: date | None,
) -> str:
    return emails.render(
        "expiry_digest.txt",
        name=name,
        days=DIGEST_DAYS,
        users=users,
        today=today,
        more=max(0, total - len(users)),
        users_link=links.absolute_url("/console/users?sort=expiry"),
        risk=risk,
        admins_ending=[a for a in admins_ending if a.ends_on is not None],
        horizon_days=lockout_risk.HORIZON_DAYS,
        create_admin_link=links.absolute_url("/console/users/new?profile=administrator"),
        user_link=lambda pk: links.absolute_url(f"/console/users/{pk}#expiry"),
        review_due_on=review_due_on,
        review_link=links.absolute_url("/console/reviews/new"),
    )


def _review_reminder_today(due_on: date, today: date) -> bool:
    """A digest of its own for an overdue review: on the due day, then once a week."""
    return due_on <= today and (today - due_on).days % REVIEW_REMINDER_EVERY_DAYS == 0


def queue_expiry_digests(
    *, now: datetime, today: date, review_days: int = DEFAULT_REVIEW_DAYS
) -> dict[str, int]:
    """Inside the caller's write transaction: one digest per Administrator with access of each
    organisation that has users expiring within DIGEST_DAYS, or whose Administrators all lose
    access within ``lockout_risk.HORIZON_DAYS`` (docs/rules.md §4), or whose access review fell
    due today (or a multiple of REVIEW_REMINDER_EVERY_DAYS days ago).  Each digest also warns
    when the organisation is at risk of lockout and reminds when its access review is due.
    Nothing to say: no email."""
    organisations = mails = 0
    expiring: dict[int, tuple[str, list[tuple[str, str, date]], int]] = {}
    for (org_id, name), rows in groupby(_expiring(today), key=lambda r: (r[0], r[1])):
        users: list[tuple[str, str, date]] = []
        total = 0
        for _org, _name, user_id, full_name, expires_on in rows:
            total += 1
            if len(users) < DIGEST_MAX_LINES:
                users.append((user_id, full_name, expires_on))
        expiring[org_id] = (name, users, total)
    risks = {r.organisation_id: r for r in lockout_risk.at_risk(now=now, today=today)}
    due = review_service.due_dates(days=review_days)
    names = {org_id: r.name for org_id, r in risks.items()}
    names.update({org_id: entry[0] for org_id, entry in expiring.items()})
    wanted = set(expiring)
    wanted |= {org_id for org_id, r in risks.items() if r.ending}
    wanted |= {org_id for org_id, on in due.items() if _review_reminder_today(on, today)}
    missing = wanted - set(names)
    if missing:
        names.update(
            db.session.execute(
                select(Organisation.id, Organisation.name).where(Organisation.id.in_(missing))
            ).tuples()
        )
    administrators = _administrators(sorted(wanted), now=now, today=today)
    for org_id in sorted(wanted, key=lambda o: names[o].casefold()):
        admins = administrators.get(org_id, [])
        if not admins:
            continue
        name = names[org_id]
        _name, users, total = expiring.get(org_id, (name, [], 0))
        risk = risks.get(org_id)
        due_on = due.get(org_id)
        review_due_on = due_on if due_on is not None and due_on <= today else None
        if total:
            subject = (
                f"Claims Portal: {total} user{'s' if total != 1 else ''} of {name} expire soon"
            )
        elif risk is not None and risk.ending:
            subject = f"Claims Portal: every Administrator of {name} loses access soon"
        else:
            subject = f"Claims Portal: an access review of {name} is due"
        body = _digest_body(
            name,
            users,
            total,
            today,
            risk=risk,
            admins_ending=(
                lockout_risk.administrators_ending(org_id, now=now, today=today) if risk else []
            ),
            review_due_on=review_due_on,
        )
        for _pk, email in admins:
            mail_queue.enqueue(email, subject[:200], body, purpose=DIGEST_PURPOSE)
            mails += 1
        organisations += 1
    return {"organisations": organisations, "digests": mails}
