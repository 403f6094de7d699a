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

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from typing import Any

from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import table
from sqlalchemy import text

from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.extensions import db
from portal.helpdesk import search_index
from portal.helpdesk.models import Console
from portal.helpdesk.models import Environment
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import RequestKind
from portal.helpdesk.models import StatedRole
from portal.helpdesk.models import Status
from portal.helpdesk.models import parse_reference

PER_PAGE = 50
#: Counting stops here: an exact count of 100,000 rows costs more than the page itself, and
#: past a thousand matches staff narrow the list rather than page through it.  Paging goes on
#: past the count ("Next" appears while there is a further row).
COUNT_LIMIT = 1_000
MAX_QUERY = 100
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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class QueueFilters:
    """The queue's query string, checked: unknown values are reported and ignored, never a 500."""

    q: str = ""
    kind: str = ""
    status: str = ""
    role: str = ""
    console: str = ""
    environment: str = ""
    page: int = 1
    errors: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QueueFilters:
        errors: list[str] = []
        chosen: dict[str, str] = {}
        for name, (_column, allowed) in FILTERS.items():
            value = (args.get(name) or "").strip()
            if value and value not in allowed:
                errors.append(f"Unknown {name} {value[:40]!r}: it was ignored")
                value = ""
            chosen[name] = value
        raw_page = (args.get("page") or "").strip()
        page = 1
        if raw_page:
            if re.fullmatch(r"[0-9]{1,7}", raw_page) and int(raw_page) >= 1:
                page = int(raw_page)
            else:
                errors.append("page must be a whole number from 1: it was ignored")
        q = "".join(ch for ch in (args.get("q") or "") if ch.isprintable()).strip()[:MAX_QUERY]
        return cls(q=q, page=page, errors=tuple(errors), **chosen)

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments for links (empty values and page 1 left out)."""
        values: dict[str, Any] = {
            "q": self.q,
            **{name: getattr(self, name) for name in FILTERS},
            "page": self.page,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None, 1)}

    @property
    def narrowed(self) -> bool:
        return bool(self.q or any(getattr(self, name) for name in FILTERS))


def _prefix(column: Any, key: str, dialect: str) -> Any:
    """``column`` starts with ``key``, answered from an index on each database."""
    if dialect == "postgresql":  # varchar_pattern_ops indexes (migration 0007)
        return column.like(_escape_like(key) + "%", escape="\\")
    # SQLite compares with BINARY (code points): this range is exactly "starts with key".
    return and_(column >= key, column < key + "\U0010ffff")


def _unindexed(column: Any) -> Any:
    """``column`` as an expression SQLite cannot answer from an index (``x || ''``)."""
    return column + ("" if column.type.python_type is str else 0)


def _error_text(q: str, dialect: str, *, by_index: bool = True) -> Any:
    """The error message contains ``q`` (any case): from the trigram index when it can be."""
    indexed = len(q) >= search_index.MIN_INDEXED and search_index.available()
    if indexed and dialect == "sqlite":
        fts = (
            select(literal_column("rowid"))
            .select_from(table(search_index.FTS_TABLE))
            .where(text("helpdesk_requests_fts MATCH :phrase"))  # FTS_TABLE
            .params(phrase=search_index.fts_phrase(q))
        )
        return (HelpdeskRequest.id if by_index else _unindexed(HelpdeskRequest.id)).in_(fts)
    # PostgreSQL's pg_trgm index is on exactly this expression; elsewhere it is a scan.
    return func.lower(HelpdeskRequest.error_message).like(
        "%" + _escape_like(q.lower()) + "%", escape="\\"
    )


def search_condition(q: str, *, by_index: bool = True) -> Any:
    """The WHERE condition for a search box value (see the module docstring).

    ``by_index=False`` (SQLite): the same condition, but in a form no index answers, so that
    the planner walks the newest-first index and stops after one page.  That is the faster
    plan when the search matches many requests; the count says when.
    """
    ref = parse_reference(q)
    if ref is not None:
        return HelpdeskRequest.id == ref
    dialect = db.engine.dialect.name
    key = normalise_key(q)
    email, user_id = HelpdeskRequest.email_key, HelpdeskRequest.user_id_key
    if not by_index:
        email, user_id = _unindexed(email), _unindexed(user_id)
    conditions = [_prefix(email, key, dialect), _prefix(user_id, key, dialect)]
    if "@" not in key:  # an address is never an error message worth searching for
        conditions.append(_error_text(q, dialect, by_index=by_index))
    return or_(*conditions)


def filtered(f: QueueFilters, *, by_index: bool = True) -> Select[Any]:
    """The requests ``f`` selects.  With a search, on SQLite, the filters are checked row by
    row: the search's indexes narrow far more than a status or a kind (SQLite has no
    statistics to know it)."""
    stmt = select(HelpdeskRequest)
    by_search = bool(f.q) and db.engine.dialect.name == "sqlite"
    for name, (column, _allowed) in FILTERS.items():
        value = getattr(f, name)
        if value:
            stmt = stmt.where((_unindexed(column) if by_search else column) == value)
    if f.q:
        stmt = stmt.where(search_condition(f.q, by_index=by_index))
    return stmt


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


def queue_page(f: QueueFilters, *, per_page: int = PER_PAGE) -> QueuePage:
    """One page of requests, newest first, and a count that stops at COUNT_LIMIT."""
    base = filtered(f)
    ids = base.with_only_columns(HelpdeskRequest.id).limit(COUNT_LIMIT + 1)
    counted = db.session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    more = counted > COUNT_LIMIT
    total = min(counted, COUNT_LIMIT)
    pages = None if more else max(1, -(-total // per_page))
    page = f.page if pages is None else min(f.page, pages)
    if more and f.q and db.engine.dialect.name == "sqlite":
        # Many matches: walking the newest-first index finds a page sooner than sorting them
        # all (PostgreSQL's planner makes this choice itself, from its statistics).
        base = filtered(f, by_index=False)
    rows = list(
        db.session.scalars(
            base.order_by(HelpdeskRequest.created_at.desc(), HelpdeskRequest.id.desc())
            .limit(per_page + 1)
            .offset((page - 1) * per_page)
        )
    )
    return QueuePage(rows[:per_page], total, more, page, pages, len(rows) > per_page)


def get_request(pk: int) -> HelpdeskRequest | None:
    return db.session.get(HelpdeskRequest, pk)


def timeline(request_id: int) -> list[RequestEvent]:
    """The request's events, oldest first."""
    return list(
        db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
            .limit(TIMELINE_LIMIT)
        )
    )


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

    @property
    def expired(self) -> bool:
        return self.disabled_reason == "expiry"

    @property
    def profile_label(self) -> str:
        return Profile(self.profile).label


def mentioned_account(req: HelpdeskRequest, *, today: date) -> MentionedAccount | None:
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
        organisation=user.organisation.name if user.organisation_id else None,
    )


def mentions_expired_user_id(account: MentionedAccount | None, *, today: date) -> bool:
    """The User ID was disabled for expiry, or its expiry date has been reached (R3)."""
    if account is None:
        return False
    return account.expired or (account.expires_on is not None and account.expires_on <= today)
