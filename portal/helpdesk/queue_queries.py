"""Reads for the staff queue: the filtered, searched page of requests (newest first) with a
bounded count, one request with its timeline, and what the request page needs to know about
the accounts it mentions.

Search (``q``) takes one box and decides by the shape of what was typed:

* a reference (``HD-000123``, ``hd123``) → that request, by id;
* anything else → a prefix (or all) of the indexed, case-folded ``email_key`` or
  ``user_id_key``, or a case-insensitive substring of the error message (not for text with
  an ``@``: that is an address).

Every part is answered from an index: the error text from a trigram index (SQLite FTS5 /
PostgreSQL pg_trgm, :mod:`portal.helpdesk.search_index`) when the text has 3+ characters; a
shorter one is a scan.  ``bench/helpdesk.py`` has the figures on 100,000 requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import column
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import table
from sqlalchemy import text
from sqlalchemy import union
from sqlalchemy import union_all

from portal import messages
from portal import paging
from portal import search_text
from portal.accounts import queries
from portal.accounts import states
from portal.accounts.models import PROFILE_LABELS
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.accounts.rules import Reason
from portal.extensions import db
from portal.helpdesk import search_index
from portal.helpdesk import suggestions
from portal.helpdesk.models import Console
from portal.helpdesk.models import Environment
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import RequestKind
from portal.helpdesk.models import StatedRole
from portal.helpdesk.models import Status
from portal.helpdesk.models import parse_reference
from portal.input_guard import MAX_ID

PER_PAGE = 50
#: Counting stops here: an exact count of 100,000 rows costs more than the page itself, and
#: past a thousand matches staff narrow the list rather than page through it.  Paging goes on
#: past the count ("Next" appears while there is a further row).
COUNT_LIMIT = 1_000
MAX_QUERY = 100
#: Seven digits: a deeper page is refused as a typing error.
MAX_PAGE = 9_999_999
#: The timeline shows at most this many events (newest last); a request rarely has 20.
TIMELINE_LIMIT = 500

#: Filter name in the URL → the column it narrows and its allowed values.
FILTERS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "kind": (HelpdeskRequest.kind, tuple(k.value for k in RequestKind)),
    "status": (HelpdeskRequest.status, tuple(s.value for s in Status)),
    "role": (HelpdeskRequest.stated_role, tuple(r.value for r in StatedRole)),
    "console": (HelpdeskRequest.console, tuple(c.value for c in Console)),
    "environment": (HelpdeskRequest.environment, tuple(e.value for e in Environment)),
}


#: The queue's views (``?view=``): a working day's lists.  "Mine" and "Unassigned" leave out
#: resolved requests.
VIEWS = {
    "": "All requests",
    "mine": "Mine",
    "unassigned": "Unassigned",
    "waiting": "Waiting on requester",
    "referred": "Referred",
}
#: The orders (``?sort=``): newest first (the default) or oldest by age in business hours.
SORTS = {"": "Newest first", "age": "Oldest first (age in business hours)"}
_PAUSED = (Status.WAITING.value, Status.RESOLVED.value)
#: The views that are one status.
_VIEW_STATUS = {"waiting": Status.WAITING.value, "referred": Status.REFERRED.value}


@dataclass(frozen=True)
class QueueFilters:
    """The queue's query string, checked: unknown values are reported and ignored, never a 500."""

    q: str = ""
    kind: str = ""
    status: str = ""
    role: str = ""
    console: str = ""
    environment: str = ""
    view: str = ""
    sort: str = ""
    page: int = 1
    errors: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QueueFilters:
        errors: list[str] = []
        chosen: dict[str, str] = {}
        for name, allowed_names in (("view", VIEWS), ("sort", SORTS)):
            value = (args.get(name) or "").strip()
            if value not in allowed_names:
                errors.append(f"Unknown {name} {value[:40]!r}: it was ignored")
                value = ""
            chosen[name] = value
        for name, (_column, allowed) in FILTERS.items():
            value = (args.get(name) or "").strip()
            if value and value not in allowed:
                errors.append(f"Unknown {name} {value[:40]!r}: it was ignored")
                value = ""
            chosen[name] = value
        raw_page = (args.get("page") or "").strip()
        page = paging.whole_number(raw_page, 1, MAX_PAGE)
        if raw_page and page is None:
            errors.append("page must be a whole number from 1: it was ignored")
        q = search_text.clean_query(args.get("q"), MAX_QUERY)
        return cls(q=q, page=page or 1, errors=tuple(errors), **chosen)

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments for links (empty values and page 1 left out)."""
        values: dict[str, Any] = {
            "q": self.q,
            **{name: getattr(self, name) for name in FILTERS},
            "view": self.view,
            "sort": self.sort,
            "page": self.page,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None, 1)}

    @property
    def narrowed(self) -> bool:
        return bool(self.q or any(getattr(self, name) for name in FILTERS))


def _prefix(col: Any, key: str, dialect: str) -> Any:
    """``col`` starts with ``key``, answered from an index on each database."""
    if dialect == "postgresql":  # varchar_pattern_ops indexes (migration 0007)
        return col.like(search_text.starts_with_pattern(key), escape=search_text.LIKE_ESCAPE)
    # SQLite compares with BINARY (code points): this range is exactly "starts with key".
    return and_(col >= key, col < key + "\U0010ffff")


def _unindexed(col: Any) -> Any:
    """``col`` as an expression SQLite cannot answer from an index (``x || ''``)."""
    return col + ("" if col.type.python_type is str else 0)


def _filter_conditions(f: QueueFilters, *, under_search: bool, me: int | None = None) -> list[Any]:
    """The filters and the view as WHERE conditions.  Under a search, on SQLite, they are
    checked row by row: the search's own index narrows far more than a status or a kind, and
    SQLite (no statistics) would otherwise prefer the equality."""
    unindexed = under_search and db.engine.dialect.name == "sqlite"

    def col_(col: Any) -> Any:
        return _unindexed(col) if unindexed else col

    conditions = [
        col_(col) == getattr(f, name)
        for name, (col, _allowed) in FILTERS.items()
        if getattr(f, name)
    ]
    return conditions + _view_conditions(f.view, me, col_)


def _view_conditions(view: str, me: int | None, col_: Any) -> list[Any]:
    assigned, status = HelpdeskRequest.assigned_to_id, HelpdeskRequest.status
    if view == "mine":
        return [col_(assigned) == (me or -1), col_(status) != Status.RESOLVED.value]
    if view == "unassigned":
        return [col_(assigned).is_(None), col_(status) != Status.RESOLVED.value]
    if view in _VIEW_STATUS:
        return [col_(status) == _VIEW_STATUS[view]]
    return []


def _possible_statuses(f: QueueFilters) -> set[str]:
    """The statuses the filters and the view leave possible."""
    possible = {s.value for s in Status}
    if f.status:
        possible &= {f.status}
    if f.view in ("mine", "unassigned"):
        possible.discard(Status.RESOLVED.value)
    elif f.view == "waiting":
        possible &= {Status.WAITING.value}
    elif f.view == "referred":
        possible &= {Status.REFERRED.value}
    return possible


def age_expression(now_clock: int) -> Any:
    """A request's age in business seconds, given the business clock now (ageing.py)."""
    return case(
        (HelpdeskRequest.age_origin.is_(None), HelpdeskRequest.age_seconds),
        else_=literal(now_clock) - HelpdeskRequest.age_origin,
    )


def _oldest(f: QueueFilters, me: int | None, limit: int, now_clock: int) -> Any:
    """The ids and ages of the ``limit`` oldest requests ``f`` selects (no search), as one
    SELECT: the running requests in ``age_origin`` order and the paused ones in
    ``age_seconds`` order, each from its index and cut at ``limit``, merged by the caller's
    ORDER BY age (portal/helpdesk/ageing.py)."""
    base = _filter_conditions(f, under_search=False, me=me)
    possible = _possible_statuses(f)
    running = possible - set(_PAUSED)
    paused = possible & set(_PAUSED)
    branches = []
    if running:
        branches.append(
            select(
                HelpdeskRequest.id.label("id"),
                (literal(now_clock) - HelpdeskRequest.age_origin).label("age"),
            )
            .where(*base, HelpdeskRequest.age_origin.is_not(None))
            .order_by(HelpdeskRequest.age_origin, HelpdeskRequest.id)
            .limit(limit)
        )
    if paused:
        where = (
            [HelpdeskRequest.status == next(iter(paused))]
            if len(paused) == 1
            else [HelpdeskRequest.age_origin.is_(None)]
        )
        branches.append(
            select(HelpdeskRequest.id.label("id"), HelpdeskRequest.age_seconds.label("age"))
            .where(*base, *where)
            .order_by(HelpdeskRequest.age_seconds.desc(), HelpdeskRequest.id.desc())
            .limit(limit)
        )
    if not branches:
        return select(HelpdeskRequest.id.label("id"), literal(0).label("age")).where(false())
    wrapped = []
    for b in branches:
        sub = b.subquery()
        wrapped.append(select(sub.c.id, sub.c.age))
    return union_all(*wrapped) if len(wrapped) > 1 else wrapped[0]


def _newest(conditions: list[Any], limit: int, ordered: bool) -> Select[Any]:
    """The ids of the newest ``limit`` requests meeting ``conditions`` (any ``limit`` of them
    when not ``ordered``: enough to count up to ``limit``, by the cheapest plan)."""
    stmt = select(HelpdeskRequest.id).where(*conditions)
    if ordered:
        stmt = stmt.order_by(HelpdeskRequest.id.desc())
    return stmt.limit(limit)


def _fts_filters(f: QueueFilters, me: int | None) -> tuple[list[str], list[Any]]:
    """The filters and the view split for the SQLite FTS5 table: FTS5 terms for those it
    indexes (migration 0026: a status, a kind…), and row checks for the rest (the assignee,
    or a database whose table has only the error text)."""
    indexed = search_index.fts_columns()
    terms: list[str] = []
    rest: list[Any] = []

    def equal(col: Any, value: str, allowed: tuple[str, ...]) -> None:
        if col.key in indexed and search_index.exact_by_trigrams(value, allowed):
            terms.append(search_index.column_term(col.key, value))
        else:
            rest.append(_unindexed(col) == value)

    for name, (col, allowed) in FILTERS.items():
        if getattr(f, name):
            equal(col, getattr(f, name), allowed)
    statuses = FILTERS["status"][1]
    if f.view in ("waiting", "referred"):
        equal(HelpdeskRequest.status, _VIEW_STATUS[f.view], statuses)
    elif f.view in ("mine", "unassigned"):
        resolved = Status.RESOLVED.value
        if "status" in indexed and search_index.exact_by_trigrams(resolved, statuses):
            terms.append("NOT " + search_index.column_term("status", resolved))
        else:
            rest.append(_unindexed(HelpdeskRequest.status) != resolved)
        assigned = _unindexed(HelpdeskRequest.assigned_to_id)
        rest.append(assigned == (me or -1) if f.view == "mine" else assigned.is_(None))
    return terms, rest


def _error_text_ids(
    q: str, f: QueueFilters, me: int | None, filters: list[Any], limit: int, ordered: bool
) -> Select[Any]:
    """The newest ``limit`` requests whose error message contains ``q`` (any case)."""
    indexed = len(q) >= search_index.MIN_INDEXED and search_index.available()
    if indexed and db.engine.dialect.name == "sqlite":
        # FTS5 hands out its matches newest first (rowid DESC) and stops at the limit; the
        # filters it indexes narrow inside it, and only the rest needs the request's row.
        terms, rest = _fts_filters(f, me)
        match = " ".join(
            [f"{{error_message}}: {search_text.fts_phrase(q)}"]
            + [t if t.startswith("NOT ") else f"AND {t}" for t in terms]
        )
        fts = table(search_index.FTS_TABLE, column("rowid"))
        stmt = (
            select(fts.c.rowid.label("id"))
            .where(text("helpdesk_requests_fts MATCH :match"))  # FTS_TABLE
            .params(match=match)
        )
        if rest:
            stmt = stmt.join(HelpdeskRequest, HelpdeskRequest.id == fts.c.rowid).where(*rest)
        if ordered:
            stmt = stmt.order_by(fts.c.rowid.desc())
        return stmt.limit(limit)
    # PostgreSQL's pg_trgm index is on exactly this expression; elsewhere it is a scan.
    contains = func.lower(HelpdeskRequest.error_message).like(
        search_text.contains_pattern(q.lower()), escape=search_text.LIKE_ESCAPE
    )
    return _newest([contains, *filters], limit, ordered)


def matching_ids(
    f: QueueFilters, limit: int, *, ordered: bool = True, me: int | None = None
) -> Select[Any]:
    """The ids of (at least) the newest ``limit`` requests ``f`` selects, as one SELECT.

    A search is the union of one branch per key (reference, email, User ID, error text), each
    answered from its own index and cut at ``limit``: the newest ``limit`` of the union are
    among them, and the union has ``limit`` or more rows exactly when the matches do (so a
    count needs no order: ``ordered=False``).
    """
    filters = _filter_conditions(f, under_search=bool(f.q), me=me)
    if not f.q:
        return _newest(filters, limit, ordered)
    ref = parse_reference(f.q)
    if ref is not None:
        # Beyond any id, no request has it (and PostgreSQL's integer would refuse the number).
        found = HelpdeskRequest.id == ref if ref <= MAX_ID else false()
        return _newest([found, *filters], limit, ordered)
    dialect = db.engine.dialect.name
    key = normalise_key(f.q)
    branches = [
        _newest([_prefix(HelpdeskRequest.email_key, key, dialect), *filters], limit, ordered),
        _newest([_prefix(HelpdeskRequest.user_id_key, key, dialect), *filters], limit, ordered),
        _newest([_prefix(HelpdeskRequest.name_key, key, dialect), *filters], limit, ordered),
    ]
    if "@" not in key:  # an address is never an error message worth searching for
        branches.append(_error_text_ids(f.q, f, me, filters, limit, ordered))
    # SQLite takes no LIMIT inside a compound SELECT: each branch becomes a subquery.
    wrapped = [select(b.subquery().c.id) for b in branches]
    return union(*wrapped)  # type: ignore[return-value]


@dataclass(frozen=True)
class QueuePage:
    rows: list[HelpdeskRequest]
    total: int
    #: True when there are more than COUNT_LIMIT matches (``total`` is then COUNT_LIMIT).
    more: bool
    page: int
    #: The number of pages, or None when the matches were not all counted.
    pages: int | None
    has_next: bool


def queue_page(
    f: QueueFilters,
    *,
    per_page: int = PER_PAGE,
    me: int | None = None,
    now_clock: int = 0,
) -> QueuePage:
    """One page of requests, newest first (by reference: issued in order of arrival) or oldest
    first by age (``now_clock``: the business clock now), and a count that stops at
    COUNT_LIMIT."""
    counted = (
        db.session.scalar(
            select(func.count()).select_from(
                matching_ids(f, COUNT_LIMIT + 1, ordered=False, me=me).subquery()
            )
        )
        or 0
    )
    more = counted > COUNT_LIMIT
    total = min(counted, COUNT_LIMIT)
    pages = None if more else paging.page_count(total, per_page)
    page = f.page if pages is None else min(f.page, pages)
    offset = paging.offset(page, per_page)
    if f.sort == "age":
        if f.q:  # the matches (at most COUNT_LIMIT + 1 of the newest), ordered by age
            ids = matching_ids(f, COUNT_LIMIT + 1, me=me).subquery()
            stmt = (
                select(HelpdeskRequest)
                .where(HelpdeskRequest.id.in_(select(ids.c.id)))
                .order_by(age_expression(now_clock).desc(), HelpdeskRequest.id)
            )
        else:
            oldest = _oldest(f, me, offset + per_page + 1, now_clock).subquery()
            stmt = (
                select(HelpdeskRequest)
                .join(oldest, oldest.c.id == HelpdeskRequest.id)
                .order_by(oldest.c.age.desc(), HelpdeskRequest.id)
            )
        rows = list(db.session.scalars(stmt.limit(per_page + 1).offset(offset)))
        return QueuePage(rows[:per_page], total, more, page, pages, len(rows) > per_page)
    wanted = matching_ids(f, offset + per_page + 1, me=me).subquery()
    rows = list(
        db.session.scalars(
            select(HelpdeskRequest)
            .where(HelpdeskRequest.id.in_(select(wanted.c.id)))
            .order_by(HelpdeskRequest.id.desc())
            .limit(per_page + 1)
            .offset(offset)
        )
    )
    return QueuePage(rows[:per_page], total, more, page, pages, len(rows) > per_page)


def staff_names(ids: set[int]) -> dict[int, str]:
    """User ID by row id, for the assignees shown on a page."""
    if not ids:
        return {}
    rows = db.session.execute(select(User.id, User.user_id).where(User.id.in_(ids)))
    return {pk: user_id for pk, user_id in rows}


def colleagues(now: datetime, today: date) -> list[tuple[int, str, str]]:
    """The staff a request can be given to: Helpdesk and Portal team users with access (id,
    User ID, name), by name."""
    rows = db.session.execute(
        select(User.id, User.user_id, User.full_name)
        .where(
            User.profile.in_((Profile.HELPDESK.value, Profile.PORTAL_TEAM.value)),
            states.with_access(now, today),
        )
        .order_by(User.full_name, User.id)
        .limit(500)
    )
    return [(pk, user_id, name) for pk, user_id, name in rows]


def quoted_code(error_message: str | None) -> str | None:
    """The message code the requester quoted, or whose whole text they pasted."""
    if not error_message:
        return None
    mentioned = suggestions.codes_mentioned(error_message)
    if mentioned:
        return mentioned[0].code
    exact = messages.for_text(error_message)
    return exact.code if exact else None


@dataclass(frozen=True)
class SuggestedEntry:
    code: str
    text: str
    anchor: str


def suggested_entries(codes: str | None) -> list[SuggestedEntry]:
    """The Troubleshooting Guide entries shown to the requester while typing (known codes)."""
    found = []
    for code in (codes or "").split():
        if code in messages.BY_CODE:
            m = messages.get(code)
            found.append(SuggestedEntry(m.code, m.text, m.anchor))
    return found


def get_request(pk: int) -> HelpdeskRequest | None:
    return db.session.get(HelpdeskRequest, pk)


def timeline(request_id: int) -> list[RequestEvent]:
    """The request's newest TIMELINE_LIMIT events, oldest first."""
    newest = db.session.scalars(
        select(RequestEvent)
        .where(RequestEvent.request_id == request_id)
        .order_by(RequestEvent.id.desc())
        .limit(TIMELINE_LIMIT)
    )
    return list(reversed(list(newest)))


@dataclass(frozen=True)
class MentionedAccount:
    """The account whose User ID the request mentions, as staff may see it (read-only)."""

    user_id: str
    profile: str
    enabled: bool
    active: bool
    disabled_reason: str | None
    expires_on: date | None
    organisation: str | None
    #: Who took access away, and when (the latest disabling audit event), while not enabled.
    disabled_by: queries.DisableInfo | None = None

    @property
    def expired(self) -> bool:
        return self.disabled_reason == Reason.EXPIRY

    @property
    def profile_label(self) -> str:
        return PROFILE_LABELS[self.profile]


def mentioned_account(req: HelpdeskRequest) -> MentionedAccount | None:
    """The user whose User ID the request gives (case-insensitive), if there is one."""
    if not req.user_id_key:
        return None
    user = db.session.scalar(select(User).where(User.user_id_key == req.user_id_key))
    if user is None:
        return None
    return MentionedAccount(
        user_id=user.user_id,
        profile=user.profile,
        enabled=user.enabled,
        active=user.active,
        disabled_reason=user.disabled_reason,
        expires_on=user.expires_on,
        organisation=user.organisation.name if user.organisation else None,
        disabled_by=None if user.enabled else queries.latest_disables([user.id]).get(user.id),
    )


def mentions_expired_user_id(account: MentionedAccount | None, *, today: date) -> bool:
    """The User ID was disabled for expiry, or its expiry date has been reached (R3)."""
    if account is None:
        return False
    return account.expired or states.is_expired(account.expires_on, today)
