"""Set-based counts of one organisation's users, for the Console dashboard (docs/rules.md §4).

A fixed number of queries whatever the number of users: one aggregate ``SELECT`` with a
conditional ``COUNT`` per figure, and one small ``LIMIT`` query per list.  No per-row Python
loop.  The filters here are the ones the users list applies for the same query parameters
(``state``, ``reason``, ``expiring=30``, ``dormant=60``), so a count and the list it links to
agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.accounts import states
from portal.accounts.models import User
from portal.accounts.rules import Access
from portal.accounts.rules import Reason
from portal.extensions import db

#: "Expires in the next 30 days" (the users list's ``expiring=30``).
EXPIRING_DAYS = 30
#: "Has not logged in for 60+ days" (the users list's ``dormant=60``).
DORMANT_DAYS = 60
#: How many users each dashboard list shows.
LIST_SIZE = 10


@dataclass(frozen=True, slots=True)
class UserCounts:
    total: int
    has_access: int
    lockout: int
    inactivity: int
    expiry: int
    access_removed: int
    expiring: int
    dormant: int

    @property
    def system_disabled(self) -> int:
        return self.lockout + self.inactivity + self.expiry

    def by_reason(self, reason: Reason) -> int:
        return int(getattr(self, reason.value))


@dataclass(frozen=True, slots=True)
class ListedUser:
    """One row of a dashboard list: the user and the date that put it there."""

    id: int
    user_id: str
    full_name: str
    on: date


# --- the conditions, shared by the counts and the lists (one home: ``states``) -------------


def has_access() -> ColumnElement[bool]:
    return states.in_state(Access.HAS_ACCESS)


def system_disabled(reason: Reason | None = None) -> ColumnElement[bool]:
    return states.in_state(Access.SYSTEM_DISABLED, reason)


def access_removed() -> ColumnElement[bool]:
    return states.in_state(Access.REMOVED)


def expiring_within(today: date, days: int = EXPIRING_DAYS) -> ColumnElement[bool]:
    """Enabled users whose expiry date is between today and today + ``days`` (inclusive)."""
    return states.expiring_within(today, days)


def dormant_for(now: datetime, days: int = DORMANT_DAYS) -> ColumnElement[bool]:
    """Enabled users whose last use (the later of last login and access granted) is more than
    ``days`` ago."""
    return states.dormant_for(now, days)


# --- the queries -----------------------------------------------------------------------


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # COUNT ignores NULLs: a CASE without ELSE counts the rows that match.  Portable (SQLite,
    # PostgreSQL), and 0 rather than NULL for an empty organisation.
    return func.count(case((condition, 1)))


def user_counts(
    organisation_id: int, *, now: datetime | None = None, today: date | None = None
) -> UserCounts:
    """Every dashboard figure for one organisation, in one query."""
    now = now or clock.now()
    today = today or clock.local_date(now)
    row = db.session.execute(
        select(
            func.count(User.id),
            _count(has_access()),
            _count(system_disabled(Reason.LOCKOUT)),
            _count(system_disabled(Reason.INACTIVITY)),
            _count(system_disabled(Reason.EXPIRY)),
            _count(access_removed()),
            _count(expiring_within(today)),
            _count(dormant_for(now)),
        ).where(User.organisation_id == organisation_id)
    ).one()
    return UserCounts(*(int(value or 0) for value in row))


def next_expiring(
    organisation_id: int, *, today: date | None = None, limit: int = LIST_SIZE
) -> list[ListedUser]:
    """The next ``limit`` enabled users to reach their expiry date within 30 days."""
    today = today or clock.today()
    rows = db.session.execute(
        select(User.id, User.user_id, User.full_name, User.expires_on)
        .where(User.organisation_id == organisation_id, expiring_within(today))
        .order_by(User.expires_on, User.user_id_key)
        .limit(limit)
    ).all()
    return [ListedUser(pk, uid, name, on) for pk, uid, name, on in rows]


def longest_dormant(
    organisation_id: int, *, now: datetime | None = None, limit: int = LIST_SIZE
) -> list[ListedUser]:
    """The ``limit`` enabled users unused for 60+ days, longest unused first (``on`` is the
    date of last use in the portal's time zone)."""
    now = now or clock.now()
    rows = db.session.execute(
        select(User.id, User.user_id, User.full_name, User.last_use_at)
        .where(User.organisation_id == organisation_id, dormant_for(now))
        .order_by(User.last_use_at, User.user_id_key)
        .limit(limit)
    ).all()
    return [ListedUser(pk, uid, name, clock.local_date(used)) for pk, uid, name, used in rows]
