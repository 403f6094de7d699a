"""The account states in one place: as SQL conditions over ``User``, in Python, and as words.

``rules`` decides (docs/rules.md §2, docs/architecture.md §5); this module only says the same
thing in the other forms the code needs, so that no query, service or template writes a state
predicate, a reason's label or the 90 days again:

* **SQL** (column expressions over ``User``, for ``select(...).where(...)``): the three stored
  states (:func:`in_state`), the R2/R3 conditions (:func:`expired`, :func:`inactive`), "has
  access at ``now``" as :func:`rules.has_access` decides it (:func:`with_access`), and
  "Administrator with access" (:func:`administrator_with_access`).  A test runs these over
  generated states and dates on the real database and compares them with ``rules``.
* **Python**, delegating to ``rules``: :func:`state_of`, :func:`has_access`,
  :func:`is_administrator_with_access`.
* **Labels**: :data:`STATE_LABELS`, :data:`REASON_LABELS`, :data:`REASON_CAUSES` and
  :data:`INACTIVITY_DAYS` (templates get them as the Jinja globals ``state_label``,
  ``reason_label`` and ``inactivity_days``; see :func:`template_globals`).

"Administrator with access" follows the rules, not the stored flag alone: an Administrator
whose expiry date is reached, or who is inactive too long, has no access even before a login
or the nightly sweep unticks Enabled (docs/rules.md R4, §7).
"""

from __future__ import annotations

from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import not_

from portal.accounts import rules
from portal.accounts.models import Profile
from portal.accounts.models import User

#: R2 in days, for text ("more than 90 days"); the rule itself is ``rules.INACTIVITY``.
INACTIVITY_DAYS = rules.INACTIVITY.days

#: How each of the three states is shown (docs/rules.md §2).
STATE_LABELS: dict[rules.Access, str] = {
    rules.Access.HAS_ACCESS: "Has access",
    rules.Access.SYSTEM_DISABLED: "System-disabled",
    rules.Access.REMOVED: "Access removed",
}

#: Why the system unticked Enabled, as a short label (the users list, the operator pages).
REASON_LABELS: dict[rules.Reason, str] = {
    rules.Reason.LOCKOUT: "Locked out",
    rules.Reason.INACTIVITY: f"Inactive {INACTIVITY_DAYS}+ days",
    rules.Reason.EXPIRY: "Expiry date reached",
}

#: The same reasons as the cause of the event (the audit log).
REASON_CAUSES: dict[rules.Reason, str] = {
    rules.Reason.LOCKOUT: f"{rules.LOCKOUT_AFTER} wrong passwords in a row",
    rules.Reason.INACTIVITY: f"no use for {INACTIVITY_DAYS} days",
    rules.Reason.EXPIRY: "expiry date reached",
}


def state_label(access: rules.Access | str) -> str:
    """The label of a state (``rules.Access`` or its stored value)."""
    return STATE_LABELS[rules.Access(access)]


def reason_label(reason: rules.Reason | str | None) -> str:
    """The short label of a system-disable reason ("" for none)."""
    return REASON_LABELS[rules.Reason(reason)] if reason else ""


def template_globals() -> dict[str, Any]:
    """What templates may use: ``state_label``, ``reason_label`` and ``inactivity_days``."""
    return {
        "state_label": state_label,
        "reason_label": reason_label,
        "inactivity_days": INACTIVITY_DAYS,
    }


# --- SQL ---------------------------------------------------------------------------------


def in_state(access: rules.Access, reason: rules.Reason | None = None) -> ColumnElement[bool]:
    """Users stored in ``access`` (``rules.access`` of the flags); with ``reason``, the
    system-disabled users with that reason."""
    if reason is not None:
        return and_(in_state(rules.Access.SYSTEM_DISABLED), User.disabled_reason == reason.value)
    if access is rules.Access.HAS_ACCESS:
        return User.enabled.is_(True)
    if access is rules.Access.SYSTEM_DISABLED:
        return and_(User.enabled.is_(False), User.active.is_(True))
    return and_(User.enabled.is_(False), User.active.is_(False))


def expired(today: date) -> ColumnElement[bool]:
    """R3, ``rules.is_expired``: the expiry date is on or before ``today``."""
    return and_(User.expires_on.is_not(None), User.expires_on <= today)


def inactive(now: datetime) -> ColumnElement[bool]:
    """R2, ``rules.due_disable``: last use strictly before ``rules.inactivity_cutoff(now)``."""
    return User.last_use_at < rules.inactivity_cutoff(now)


def with_access(now: datetime, today: date) -> ColumnElement[bool]:
    """``rules.has_access`` (R8): Enabled, and neither expired nor inactive at ``now``."""
    return and_(in_state(rules.Access.HAS_ACCESS), not_(expired(today)), not_(inactive(now)))


def administrator_with_access(now: datetime, today: date) -> ColumnElement[bool]:
    """Administrators that have access at ``now`` (R4's "last Administrator with access", the
    recipients of the Administrators' emails)."""
    return and_(User.profile == Profile.ADMINISTRATOR.value, with_access(now, today))


def expiring_within(today: date, days: int) -> ColumnElement[bool]:
    """Enabled users whose expiry date is between ``today`` and ``today + days`` inclusive."""
    return and_(
        in_state(rules.Access.HAS_ACCESS),
        User.expires_on >= today,
        User.expires_on <= today + timedelta(days=days),
    )


def dormant_for(now: datetime, days: int) -> ColumnElement[bool]:
    """Enabled users whose last use (``rules.last_use``) is more than ``days`` ago."""
    return and_(in_state(rules.Access.HAS_ACCESS), User.last_use_at < now - timedelta(days=days))


# --- Python ------------------------------------------------------------------------------


def state_of(user: User) -> rules.Access:
    """The stored state of ``user`` (``rules.access``)."""
    return rules.access(user.to_state())


def has_access(user: User, now: datetime, today: date) -> bool:
    """``rules.has_access``: may ``user`` use a session at ``now``?"""
    return rules.has_access(user.to_state(), now, today)


def is_administrator_with_access(user: User, now: datetime, today: date) -> bool:
    """The Python twin of :func:`administrator_with_access`."""
    return user.profile == Profile.ADMINISTRATOR.value and has_access(user, now, today)


def is_expired(expires_on: date | None, today: date) -> bool:
    """R3 for a bare expiry date (``rules.expiry_reached``)."""
    return rules.expiry_reached(expires_on, today)
