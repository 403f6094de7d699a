"""Organisations with the counts of their users by state: one grouped query per page.

The page of organisations is chosen first (a subquery: name filter, order, limit, offset), then
joined to its users and grouped, so the aggregate never reads users of organisations that are
not shown, and the number of queries does not grow with the number of organisations (no N+1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import select

from portal import paging
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.accounts.rules import Access
from portal.extensions import db
from portal.operator.directory import like_pattern

PER_PAGE = 50


@dataclass(frozen=True, slots=True)
class OrganisationSummary:
    id: int
    name: str
    created_at: datetime
    total: int
    has_access: int
    system_disabled: int
    access_removed: int
    #: Administrators with access: 0 means nobody can manage the firm's users.
    administrators: int


@dataclass(frozen=True, slots=True)
class OrganisationsPage:
    rows: list[OrganisationSummary]
    total: int
    page: int
    pages: int
    q: str


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many of the group's users meet ``condition`` (COUNT of a CASE: NULL otherwise)."""
    return func.count(case((condition, User.id)))


def _state_counts() -> tuple[ColumnElement[int], ...]:
    """Users with access, system-disabled, access removed, and Administrators with Enabled
    ticked (the stored states, as the Console's counts)."""
    enabled = states.in_state(Access.HAS_ACCESS)
    return (
        _count(enabled),
        _count(states.in_state(Access.SYSTEM_DISABLED)),
        _count(states.in_state(Access.REMOVED)),
        _count(and_(enabled, User.profile == Profile.ADMINISTRATOR.value)),
    )


def summaries(*, q: str = "", page: int = 1, per_page: int = PER_PAGE) -> OrganisationsPage:
    """Organisations whose name contains ``q``, by name, with their users counted by state."""
    q = q.strip()[:200]
    chosen = select(Organisation.id, Organisation.name, Organisation.created_at)
    if q:
        chosen = chosen.where(Organisation.name_key.like(like_pattern(q), escape="\\"))
    total = db.session.scalar(select(func.count()).select_from(chosen.subquery())) or 0
    pages = paging.page_count(total, per_page)
    page = min(max(page, 1), pages)
    shown = (
        chosen.order_by(Organisation.name_key).limit(per_page).offset(paging.offset(page, per_page))
    ).subquery()
    stmt = (
        select(
            shown.c.id,
            shown.c.name,
            shown.c.created_at,
            func.count(User.id),
            *_state_counts(),
        )
        .select_from(shown)
        .outerjoin(User, User.organisation_id == shown.c.id)
        .group_by(shown.c.id, shown.c.name, shown.c.created_at)
    )
    rows = [OrganisationSummary(*row) for row in db.session.execute(stmt)]
    rows.sort(key=lambda r: normalise_key(r.name))
    return OrganisationsPage(rows, total, page, pages, q)


def summary(org_id: int) -> OrganisationSummary | None:
    """One organisation's counts (the same query, for its page)."""
    stmt = (
        select(
            Organisation.id,
            Organisation.name,
            Organisation.created_at,
            func.count(User.id),
            *_state_counts(),
        )
        .outerjoin(User, User.organisation_id == Organisation.id)
        .where(Organisation.id == org_id)
        .group_by(Organisation.id, Organisation.name, Organisation.created_at)
    )
    row = db.session.execute(stmt).first()
    return OrganisationSummary(*row) if row is not None else None


def administrators(org_id: int) -> list[User]:
    """The organisation's Administrators, whatever their state (the Portal team's view)."""
    return list(
        db.session.scalars(
            select(User)
            .where(User.organisation_id == org_id, User.profile == Profile.ADMINISTRATOR.value)
            .order_by(User.user_id_key)
        )
    )


def page_number(args: Mapping[str, str]) -> int:
    return paging.whole_number(args.get("page"), 0, 999_999_999) or 1
