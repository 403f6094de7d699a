"""Set-based reads for the Console's users list: one query for the page, one for the count,
one for the latest disable event of the rows shown (never a query per row)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import date
from datetime import datetime
from typing import Any
from typing import NamedTuple

from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import aliased

from portal import paging
from portal import search_text
from portal.accounts import rules
from portal.accounts import search
from portal.accounts import states
from portal.accounts.models import PROFILE_LABELS
from portal.accounts.models import Organisation
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


class ListedUser(NamedTuple):
    """One row of the users list: the columns its row shows, read as a plain tuple (no ORM
    entity to build for each of 50 rows: issue 12 point 6). The row template reads the same
    names from an ORM ``User`` (a user's own page, the toggle's answer)."""

    id: int
    user_id: str
    full_name: str
    profile: str
    enabled: bool
    active: bool
    disabled_reason: str | None
    last_login_at: datetime | None
    expires_on: date | None

    @property
    def profile_label(self) -> str:
        return PROFILE_LABELS[self.profile]  # a StrEnum's key is found by its value


#: The columns of :class:`ListedUser`, in its order.
LISTED_COLUMNS = tuple(getattr(User, name) for name in ListedUser._fields)


@dataclass(frozen=True)
class UsersPage:
    rows: list[ListedUser]
    total: int
    #: True when there are more than COUNT_LIMIT matches (``total`` is then COUNT_LIMIT).
    more: bool
    page: int
    pages: int
    disabled_by: dict[int, DisableInfo]
    #: The users of this page that have a second factor (R10).
    second_factor: frozenset[int] = frozenset()
    #: The organisation's name (the page's heading), read with the page.
    organisation_name: str = ""


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


@dataclass(frozen=True)
class PageStatements:
    """The statements of one question to the list (its filters and sort), built once and run
    with parameters: building a statement and its cache key costs more than running it on the
    indexes (issue 12 point 6)."""

    #: The first match past COUNT_LIMIT, if any (no search).
    beyond: Select[Any]
    #: How many match (exact; run when ``beyond`` found nothing).
    count: Select[Any]
    #: How many match, up to COUNT_LIMIT + 1 (a search: one pass over the text index).
    count_limited: Select[Any]
    #: One page of :class:`ListedUser` rows, at the ``offset`` parameter.
    listed: Select[Any]


def page_statements(
    org_id: int, f: UserFilters, *, now: datetime, today: date, per_page: int
) -> PageStatements:
    """The list's statements for this question: remembered, unless they carry the time."""
    if f.dormant is not None:  # ``now`` is in the statement: a new one for each request
        return _build_statements(org_id, f, now, today, per_page)
    dialect = db.session.get_bind().dialect.name  # a search differs by database
    key = replace(f, page=1, errors=())
    return _remembered_statements(dialect, org_id, key, today, per_page)


@functools.lru_cache(maxsize=256)
def _remembered_statements(
    _dialect: str, org_id: int, f: UserFilters, today: date, per_page: int
) -> PageStatements:
    # ``now`` is only read by the dormant filter, which is never remembered.
    return _build_statements(org_id, f, datetime.min, today, per_page)


def _build_statements(
    org_id: int, f: UserFilters, now: datetime, today: date, per_page: int
) -> PageStatements:
    base = filtered(org_id, f, now, today)
    ids = base.with_only_columns(User.id)
    columns = SORTS[f.sort]
    first = columns[0].desc() if f.descending else columns[0].asc()
    order = [first.nulls_last(), *(c.asc() for c in columns[1:])]
    return PageStatements(
        beyond=ids.limit(1).offset(COUNT_LIMIT),
        count=ids.with_only_columns(func.count()),
        count_limited=select(func.count()).select_from(ids.limit(COUNT_LIMIT + 1).subquery()),
        listed=base.with_only_columns(*LISTED_COLUMNS)
        .order_by(*order)
        .limit(per_page)
        .offset(bindparam("offset", type_=Integer)),
    )


def users_page(
    org_id: int, f: UserFilters, *, now: datetime, today: date, per_page: int = PER_PAGE
) -> UsersPage:
    statements = page_statements(org_id, f, now=now, today=today, per_page=per_page)
    connection = db.session.connection()  # plain rows: no ORM layer on the list's reads
    total, more = count_matches(statements, searching=bool(f.q))
    pages = paging.page_count(total, per_page)
    page = min(f.page, pages)
    listed = connection.execute(statements.listed, {"offset": paging.offset(page, per_page)})
    rows = [ListedUser(*row) for row in listed.all()]
    details, second_factor = page_details([u.id for u in rows])
    disabled = {u.id for u in rows if not u.enabled}
    disabled_by = {pk: info for pk, info in details.items() if pk in disabled}
    name = connection.scalar(_ORGANISATION_NAME, {"org": org_id}) or ""
    return UsersPage(rows, total, more, page, pages, disabled_by, second_factor, name)


def count_matches(statements: PageStatements, *, searching: bool = False) -> tuple[int, bool]:
    """(how many users match, up to COUNT_LIMIT; whether there are more).

    Without a search, first one look past the limit (an index walk that stops there, with no
    counting: the whole organisation's first page answers here); only when it finds nothing is
    the count taken, which is then known to be small.  A search counts at once, up to the limit
    (each statement would match the text index again)."""
    connection = db.session.connection()
    if searching:
        counted = int(connection.scalar(statements.count_limited) or 0)
        return min(counted, COUNT_LIMIT), counted > COUNT_LIMIT
    if connection.scalar(statements.beyond) is not None:
        return COUNT_LIMIT, True
    return int(connection.scalar(statements.count) or 0), False


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


def latest_disable_id(user_id: Any) -> Any:
    """SQL: the id of the latest disable event of the user ``user_id`` (a column), or NULL;
    one seek of ``ix_audit_events_subject_kind_id`` per user."""
    return (
        select(func.max(AuditEvent.id))
        .where(AuditEvent.subject_id == user_id, AuditEvent.kind.in_(DISABLE_KINDS))
        .scalar_subquery()
    )


#: The audit event joined as a user's latest disable.
_LATEST_DISABLE = aliased(AuditEvent, name="latest_disable")


def page_details(user_ids: list[int]) -> tuple[dict[int, DisableInfo], frozenset[int]]:
    """For the users of a page, in one query: who disabled each (its latest disable event, if
    any) and which have a second factor (R10)."""
    if not user_ids:
        return {}, frozenset()
    found = db.session.connection().execute(_PAGE_DETAILS, {"ids": user_ids}).all()
    disabled_by: dict[int, DisableInfo] = {}
    factors: set[int] = set()
    for pk, has_factor, kind, actor, occurred_at in found:
        if has_factor:
            factors.add(pk)
        if kind is not None:
            disabled_by[pk] = DisableInfo(kind, actor, occurred_at)
    return disabled_by, frozenset(factors)


def latest_disables(user_ids: list[int]) -> dict[int, DisableInfo]:
    """Who disabled each of these users, and when: one query for the whole page."""
    return page_details(user_ids)[0]


#: :func:`page_details`' statement, built once (``ids``: the page's user ids).
_PAGE_DETAILS = (
    select(
        User.id,
        has_second_factor(),
        _LATEST_DISABLE.kind,
        _LATEST_DISABLE.actor,
        _LATEST_DISABLE.occurred_at,
    )
    .outerjoin(_LATEST_DISABLE, _LATEST_DISABLE.id == latest_disable_id(User.id))
    .where(User.id.in_(bindparam("ids", expanding=True)))
)

#: The organisation's name for the page's heading (one column: no ORM object to load).
_ORGANISATION_NAME = select(Organisation.name).where(Organisation.id == bindparam("org"))
