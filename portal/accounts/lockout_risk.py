"""The firm never drifts into lockout (docs/rules.md §4): which organisations are at risk of
having no Administrator with access.

An organisation is at risk when

* it has **no** Administrator with access (it is locked out already: only the Portal team can
  register one);
* it has exactly **one** Administrator with access left; or
* **every** Administrator with access reaches its expiry date (``expires_on`` within
  :data:`HORIZON_DAYS` days, today included) or goes inactive (its last use plus the R2
  90 days falls within :data:`HORIZON_DAYS` days) within that horizon.

"With access" is ``states.administrator_with_access``: an Administrator whose expiry date is
reached, or inactive too long, no longer counts even before the nightly sweep unticks Enabled.
One grouped query answers for one organisation or for all of them (never a loop over users).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select

from portal import clock
from portal.accounts import rules
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.extensions import db

#: How far ahead the warning looks (docs/rules.md §4: "within 30 days").
HORIZON_DAYS = 30


class Risk(StrEnum):
    #: No Administrator with access at all.
    NONE_LEFT = "none_left"
    #: Exactly one Administrator with access.
    ONE_LEFT = "one_left"
    #: Several, but every one of them expires or goes inactive within the horizon.
    ALL_ENDING = "all_ending"


RISK_LABELS = {
    Risk.NONE_LEFT: "No Administrator with access",
    Risk.ONE_LEFT: "One Administrator with access left",
    Risk.ALL_ENDING: f"Every Administrator's access ends within {HORIZON_DAYS} days",
}


@dataclass(frozen=True, slots=True)
class OrganisationRisk:
    organisation_id: int
    name: str
    risk: Risk
    #: Administrators with access now, and how many of them keep it beyond the horizon.
    administrators: int
    lasting: int

    @property
    def label(self) -> str:
        return RISK_LABELS[self.risk]

    @property
    def ending(self) -> bool:
        """Does every Administrator with access lose it within the horizon?"""
        return self.administrators > 0 and self.lasting == 0


@dataclass(frozen=True, slots=True)
class AdministratorEnding:
    """One Administrator with access, and the day its access ends without action (None: not
    within the horizon), and why (``expiry`` or ``inactivity``)."""

    id: int
    user_id: str
    full_name: str
    ends_on: date | None
    why: str | None


def ending_within(now: datetime, today: date, days: int = HORIZON_DAYS) -> ColumnElement[bool]:
    """SQL: an Administrator with access today loses it within ``days`` days (R3 at
    ``today + days``, or R2 at ``now + days``)."""
    return or_(
        states.expired(today + timedelta(days=days)),
        states.inactive(now + timedelta(days=days)),
    )


def at_risk(
    *, now: datetime, today: date, organisation_id: int | None = None
) -> list[OrganisationRisk]:
    """Every organisation at risk (or only ``organisation_id``'s, if it is), by name; one
    grouped query."""
    with_access = states.administrator_with_access(now, today)
    ending = ending_within(now, today)
    admins = func.count(User.id)
    lasting = func.coalesce(func.sum(case((User.id.is_(None), 0), (ending, 0), else_=1)), 0)
    query = (
        select(Organisation.id, Organisation.name, admins, lasting)
        .select_from(Organisation)
        .outerjoin(User, and_(User.organisation_id == Organisation.id, with_access))
        .group_by(Organisation.id, Organisation.name)
        .having(or_(admins <= 1, lasting == 0))
        .order_by(Organisation.name_key)
    )
    if organisation_id is not None:
        query = query.where(Organisation.id == organisation_id)
    found = []
    for org_id, name, count, kept in db.session.execute(query):
        risk = Risk.NONE_LEFT if count == 0 else Risk.ONE_LEFT if count == 1 else Risk.ALL_ENDING
        found.append(OrganisationRisk(org_id, name, risk, int(count), int(kept)))
    return found


def organisation_risk(
    organisation_id: int, *, now: datetime, today: date
) -> OrganisationRisk | None:
    """The risk of one organisation, or None when it has Administrators enough."""
    found = at_risk(now=now, today=today, organisation_id=organisation_id)
    return found[0] if found else None


def administrators_ending(
    organisation_id: int, *, now: datetime, today: date
) -> list[AdministratorEnding]:
    """The organisation's Administrators with access, the soonest to lose it first (for the
    warning's one-click fixes: a few rows, never the whole table)."""
    rows = db.session.execute(
        select(User.id, User.user_id, User.full_name, User.expires_on, User.last_use_at)
        .where(
            User.organisation_id == organisation_id,
            states.administrator_with_access(now, today),
        )
        .order_by(User.user_id_key)
    )
    horizon = today + timedelta(days=HORIZON_DAYS)
    found = []
    for pk, user_id, full_name, expires_on, last_use_at in rows:
        inactive_on = clock.local_date(last_use_at + rules.INACTIVITY)
        candidates = []
        if expires_on is not None and expires_on <= horizon:
            candidates.append((expires_on, "expiry"))
        if last_use_at < rules.inactivity_cutoff(now + timedelta(days=HORIZON_DAYS)):
            candidates.append((inactive_on, "inactivity"))
        ends_on, why = min(candidates) if candidates else (None, None)
        found.append(AdministratorEnding(pk, user_id, full_name, ends_on, why))
    found.sort(key=lambda a: (a.ends_on is None, a.ends_on or today, a.user_id.casefold()))
    return found
