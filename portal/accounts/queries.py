"""Set-based reads for the Console's users list: one query for the page, one for the count,
one for the latest disable event of the rows shown (never a query per row)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import select

from portal import paging
from portal import search_text
from portal.accounts import rules
from portal.accounts import search
from portal.accounts import states
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.second_factor.models import SecondFactor

PER_PAGE = 50
MAX_QUERY = 100
#: Counting stops here: an exact count of 100,000 rows costs more than the page itself.
COUNT_LIMIT = 10_000
STATES = {a.value: a for a in rules.Access}
REASONS = {r.value for r in rules.Reason}
SORTS = {
    "user_id": (User.user_id_key,),
    "last_login": (User.last_login_at, User.user_id_key),
    "expiry": (User.expires_on, User.user_id_key),
}
PROFILES = (Profile.CLAIMS_HANDLER.value, Profile.ADMINISTRATOR.value)
#: The "second factor" filter (R10): ``none`` lists the users without one, ``yes`` with one.
SECOND_FACTOR = ("none", "yes")
DISABLE_KINDS = (
    rules.EventKind.ACCESS_REMOVED.value,
    rules.EventKind.SYSTEM_DISABLED.value,
    rules.EventKind.LOCKED_OUT.value,
)


@dataclass(frozen=True)
class UserFilters:
    """The list's query string, checked: unknown values are reported, never a 500."""

    q: str = ""
    profile: str = ""
    state: str = ""
    reason: str = ""
    expiring: int | None = None
    dormant: int | None = None
    second_factor: str = ""
    sort: str = "user_id"
    descending: bool = False
    page: int = 1
    errors: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> UserFilters:
        errors: list[str] = []

        def choice(name: str, allowed: Any) -> str:
            value = (args.get(name) or "").strip()
            if value and value not in allowed:
                errors.append(f"Unknown {name} {value!r}: it was ignored")
                return ""
            return value

        def number(name: str, low: int, high: int) -> int | None:
            raw = (args.get(name) or "").strip()
            if not raw:
                return None
            found = paging.whole_number(raw, low, high)
            if found is not None:
                return found
            errors.append(f"{name} must be a whole number from {low} to {high}: it was ignored")
            return None

        raw_sort = (args.get("sort") or "user_id").strip()
        sort = choice("sort", {*SORTS, *(f"-{s}" for s in SORTS)}) or "user_id"
        return cls(
            q=search_text.clean_query(args.get("q"), MAX_QUERY),
            profile=choice("profile", PROFILES),
            state=choice("state", STATES),
            reason=choice("reason", REASONS),
            expiring=number("expiring", 0, 3650),
            dormant=number("dormant", 0, 3650),
            second_factor=choice("second_factor", SECOND_FACTOR),
            sort=sort.removeprefix("-"),
            descending=raw_sort.startswith("-") and sort.startswith("-"),
            page=number("page", 1, 1_000_000) or 1,
            errors=tuple(errors),
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments for links (empty values left out)."""
        values: dict[str, Any] = {
            "q": self.q,
            "profile": self.profile,
            "state": self.state,
            "reason": self.reason,
            "expiring": self.expiring,
            "dormant": self.dormant,
            "second_factor": self.second_factor,
            "sort": ("-" if self.descending else "") + self.sort,
            "page": self.page,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None, "user_id", 1)}


@dataclass(frozen=True)
class DisableInfo:
    kind: str
    actor: str
    occurred_at: datetime


@dataclass(frozen=True)
class UsersPage:
    rows: list[User]
    total: int
    #: True when there are more than COUNT_LIMIT matches (``total`` is then COUNT_LIMIT).
    more: bool
    page: int
    pages: int
    disabled_by: dict[int, DisableInfo]
    #: The users of this page that have a second factor (R10).
    second_factor: frozenset[int] = frozenset()


def has_second_factor() -> Any:
    """SQL: the user of the row has a second factor (R10); one indexed EXISTS."""
    return exists().where(SecondFactor.user_id == User.id)


def filtered(org_id: int, f: UserFilters, now: datetime, today: date) -> Select[Any]:
    """The list's query for these filters, unordered and unpaged (the list's page, bulk
    "select all that match", the CSV export)."""
    stmt = select(User).where(User.organisation_id == org_id)
    if f.q:
        stmt = stmt.where(search.matches(f.q))
    if f.profile:
        stmt = stmt.where(User.profile == f.profile)
    state = STATES.get(f.state)
    reason = None
    if f.reason:
        state, reason = rules.Access.SYSTEM_DISABLED, rules.Reason(f.reason)
    if state is not None:
        stmt = stmt.where(states.in_state(state, reason))
    if f.expiring is not None:
        stmt = stmt.where(states.expiring_within(today, f.expiring))
    if f.dormant is not None:
        stmt = stmt.where(states.dormant_for(now, f.dormant))
    if f.second_factor:
        has = has_second_factor()
        stmt = stmt.where(has if f.second_factor == "yes" else ~has)
    return stmt


def users_page(
    org_id: int, f: UserFilters, *, now: datetime, today: date, per_page: int = PER_PAGE
) -> UsersPage:
    base = filtered(org_id, f, now, today)
    ids = base.with_only_columns(User.id).limit(COUNT_LIMIT + 1)  # index-only where possible
    counted = db.session.scalar(select(func.count()).select_from(ids.subquery()))
    more = (counted or 0) > COUNT_LIMIT
    total = min(counted or 0, COUNT_LIMIT)
    pages = paging.page_count(total, per_page)
    page = min(f.page, pages)
    columns = SORTS[f.sort]
    first = columns[0].desc() if f.descending else columns[0].asc()
    order = [first.nulls_last(), *(c.asc() for c in columns[1:])]
    rows = list(
        db.session.scalars(
            base.order_by(*order).limit(per_page).offset(paging.offset(page, per_page))
        )
    )
    return UsersPage(
        rows,
        total,
        more,
        page,
        pages,
        latest_disables([u.id for u in rows if not u.enabled]),
        with_second_factor([u.id for u in rows]),
    )


def with_second_factor(user_ids: list[int]) -> frozenset[int]:
    """Which of these users have a second factor: one query for the whole page."""
    if not user_ids:
        return frozenset()
    found = db.session.scalars(
        select(SecondFactor.user_id).where(SecondFactor.user_id.in_(user_ids)).distinct()
    )
    return frozenset(found)


def audit_trail(subject_id: int, *, limit: int) -> list[AuditEvent]:
    """The newest ``limit`` audit events about one user, newest first (a user's page)."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject_id == subject_id)
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
    )


def latest_disables(user_ids: list[int]) -> dict[int, DisableInfo]:
    """Who disabled each of these users, and when: one query for the whole page."""
    if not user_ids:
        return {}
    latest = (
        select(func.max(AuditEvent.id))
        .where(AuditEvent.subject_id.in_(user_ids), AuditEvent.kind.in_(DISABLE_KINDS))
        .group_by(AuditEvent.subject_id)
    )
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.id.in_(latest)))
    return {
        e.subject_id: DisableInfo(e.kind, e.actor, e.occurred_at)
        for e in events
        if e.subject_id is not None
    }
