"""Find any user across organisations, by User ID, name or email (a bounded result)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case
from sqlalchemy import or_
from sqlalchemy import select

from portal import search_text
from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.extensions import db

#: At most this many users are listed; a longer result asks for a narrower search.
LIMIT = 50
MAX_QUERY = 100


def clean_query(text: str | None) -> str:
    """What was typed, printable characters only, trimmed and bounded."""
    return search_text.clean_query(text, MAX_QUERY)


def like_pattern(text: str) -> str:
    """A case-folded ``LIKE`` pattern for "contains ``text``" (``\\`` is the escape)."""
    return search_text.contains_pattern(normalise_key(text))


@dataclass(frozen=True, slots=True)
class Found:
    user: User
    organisation: str | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    q: str
    rows: list[Found]
    #: True when more users matched than are listed.
    more: bool


def search(text: str | None, *, limit: int | None = None) -> SearchResult:
    """Users whose User ID, name or email contains ``text`` (an exact User ID first).

    One query, the organisation's name joined in; no query per row.
    """
    limit = LIMIT if limit is None else limit
    q = clean_query(text)
    if not q:
        return SearchResult(q, [], False)
    like = like_pattern(q)
    stmt = (
        select(User, Organisation.name)
        .outerjoin(Organisation, Organisation.id == User.organisation_id)
        .where(
            or_(
                User.user_id_key.like(like, escape="\\"),
                User.full_name_key.like(like, escape="\\"),
                User.email_key.like(like, escape="\\"),
            )
        )
        .order_by(case((User.user_id_key == normalise_key(q), 0), else_=1), User.user_id_key)
        .limit(limit + 1)
    )
    rows = [Found(user, org) for user, org in db.session.execute(stmt)]
    return SearchResult(q, rows[:limit], len(rows) > limit)
