"""Access reviews: start (or resume), decide, sign off; and what the dashboard says about them.

Every function runs inside the caller's ``write_transaction`` (or a read) and flushes; none
commits.  Removing access goes through ``accounts.management.set_enabled``: the same rules, the
same refusals (R4: not yourself, not the organisation's last Administrator with access) and the
same audit events as the users list, plus an ``access_review_decision`` event naming the review.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta

from sqlalchemy import ColumnElement
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import update

from portal import clock
from portal import messages
from portal import paging
from portal.accounts import management
from portal.accounts import queries
from portal.accounts import rules
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit import kinds
from portal.audit.record import record
from portal.db import rowcount
from portal.extensions import db
from portal.reviews.models import AccessReview
from portal.reviews.models import AccessReviewItem
from portal.reviews.models import Decision
from portal.reviews.models import Outcome

PER_PAGE = 50
#: What the review page can show: every user, or those with one decision (or none yet).
SHOW = ("all", "undecided", "keep", "remove")
#: At most this many items in one decision (a page, or a few pages' worth of ticks).
MAX_ITEMS_PER_DECISION = 1000


def _state_at_start() -> ColumnElement[str]:
    return case(
        (User.enabled.is_(True), rules.Access.HAS_ACCESS.value),
        (User.active.is_(True), rules.Access.SYSTEM_DISABLED.value),
        else_=rules.Access.REMOVED.value,
    )


def scope_words(f: queries.UserFilters) -> str:
    """The users list's filter in words ("All users" when there is none)."""
    parts = []
    if f.q:
        parts.append(f"matching “{f.q}”")
    if f.profile:
        parts.append(f"profile {Profile(f.profile).label}")
    if f.reason:
        parts.append(f"disabled by the system: {states.reason_label(f.reason)}")
    elif f.state:
        parts.append(f"state {states.state_label(f.state)}")
    if f.expiring is not None:
        parts.append(f"expiring within {f.expiring} days")
    if f.dormant is not None:
        parts.append(f"no login for {f.dormant}+ days")
    return "Users " + ", ".join(parts) if parts else "All users"


def open_review(organisation_id: int) -> AccessReview | None:
    """The organisation's review in progress, if any (there is at most one)."""
    return db.session.scalar(
        select(AccessReview).where(
            AccessReview.organisation_id == organisation_id, AccessReview.finished_at.is_(None)
        )
    )


def review_of(organisation_id: int, pk: int) -> AccessReview | None:
    """Review ``pk`` if it is the organisation's (another firm's review does not exist here)."""
    return db.session.scalar(
        select(AccessReview).where(
            AccessReview.id == pk, AccessReview.organisation_id == organisation_id
        )
    )


def start(
    actor: User, f: queries.UserFilters, *, now: datetime, today: date
) -> tuple[AccessReview, bool]:
    """Start a review of the users ``f`` selects (the users list's filter; none: every user),
    or return the one in progress.  Returns (review, started now?).

    The users are copied in one INSERT … SELECT: users created afterwards are not part of it.
    """
    org_id = actor.organisation_id
    assert org_id is not None  # Administrators belong to an organisation
    if db.session.get_bind().dialect.name != "sqlite":  # one start at a time per organisation
        db.session.execute(
            select(Organisation.id).where(Organisation.id == org_id).with_for_update(key_share=True)
        )
    current = open_review(org_id)
    if current is not None:
        return current, False
    review = AccessReview(
        organisation_id=org_id,
        started_at=now,
        started_by_id=actor.id,
        started_by=actor.user_id,
        scope=scope_words(f)[:400],
        users_total=0,
    )
    db.session.add(review)
    db.session.flush()
    users = queries.filtered(org_id, f, now, today).with_only_columns(
        literal(review.id),
        User.id,
        User.user_id,
        User.user_id_key,
        User.full_name,
        User.profile,
        _state_at_start(),
    )
    columns = [
        "review_id",
        "user_pk",
        "user_id",
        "user_id_key",
        "full_name",
        "profile",
        "state_at_start",
    ]
    db.session.execute(insert(AccessReviewItem).from_select(columns, users))
    total = progress(review.id).total  # (rowcount of INSERT … SELECT is -1 with psycopg)
    review.users_total = total
    record(
        kinds.ACCESS_REVIEW_STARTED,
        actor=actor,
        subject=None,
        now=now,
        organisation_id=org_id,
        details=f"access review {review.id}: {review.scope}; {total} user{'s' * (total != 1)}",
    )
    db.session.flush()
    return review, True


@dataclass
class DecisionResult:
    """What one decision (about one user or several) did."""

    #: Items decided now.
    changed: list[AccessReviewItem] = field(default_factory=list)
    #: Items already decided this way (nothing to do).
    unchanged: list[AccessReviewItem] = field(default_factory=list)
    #: (item, why) for the removals the rules refused (R4) and other refusals.
    refused: list[tuple[AccessReviewItem, str]] = field(default_factory=list)
    #: Ids that are not items of this review.
    not_found: int = 0


#: A removal is final in the review: access came back only by ticking Enabled on the users list.
REMOVED_IS_FINAL = (
    "Access was removed in this review: the decision cannot change "
    "(tick Enabled on the users list to restore access)."
)
FINISHED = "This review is signed off: its decisions cannot change."


def decide(
    actor: User,
    review: AccessReview,
    item_ids: Iterable[int],
    decision: Decision,
    *,
    now: datetime,
    today: date,
) -> DecisionResult:
    """Decide ``decision`` for each of ``item_ids`` (items of ``review``), in their User ID
    order, so that a batch with two Administrators removes the first and refuses the second
    when it is the last one with access."""
    result = DecisionResult()
    wanted = list(dict.fromkeys(item_ids))[:MAX_ITEMS_PER_DECISION]
    # The review's row first (a sign-off waits for this decision, or this decision sees it),
    # then its items, in User ID order (two decisions never wait for each other crosswise).
    db.session.execute(
        select(AccessReview.id).where(AccessReview.id == review.id).with_for_update(key_share=True)
    )
    db.session.refresh(review)
    items = items_of(review.id, wanted, lock=True)
    if review.finished:
        result.refused = [(item, FINISHED) for item in items]
        result.not_found = len(wanted) - len(items)
        return result
    result.not_found = len(wanted) - len(items)
    for item in items:
        if item.decision == decision.value:
            result.unchanged.append(item)
            continue
        if item.decision == Decision.REMOVE.value:
            result.refused.append((item, REMOVED_IS_FINAL))
            continue
        if decision is Decision.KEEP:
            outcome = Outcome.KEPT
        else:
            user = management.lock_organisation_user(review.organisation_id, item.user_pk)
            if user is None:  # users are never moved between organisations; defensive
                result.refused.append((item, "This user is no longer in your organisation."))
                continue
            removal = management.set_enabled(
                actor, user, enabled=False, now=now, today=today, locked=True
            )
            refusal = messages.CONSOLE_REFUSALS.get(removal.outcome)
            if refusal is not None:
                result.refused.append((item, refusal))
                continue
            outcome = Outcome.REMOVED if removal.changed else Outcome.NO_ACCESS
        item.decision = decision.value
        item.outcome = outcome.value
        item.decided_at = now
        item.decided_by_id = actor.id
        item.decided_by = actor.user_id
        record(
            kinds.ACCESS_REVIEW_DECISION,
            actor=actor,
            subject=db.session.get(User, item.user_pk),
            now=now,
            reason=decision.value,
            details=f"access review {review.id}: {outcome.value}",
        )
        result.changed.append(item)
    db.session.flush()
    return result


def items_of(review_id: int, ids: list[int], *, lock: bool = False) -> list[AccessReviewItem]:
    """The items ``ids`` of the review, by User ID (others are left out); ``lock``: their rows
    locked for this write (PostgreSQL; SQLite's write transaction is IMMEDIATE already)."""
    if not ids:
        return []
    query = (
        select(AccessReviewItem)
        .where(AccessReviewItem.review_id == review_id, AccessReviewItem.id.in_(ids))
        .order_by(AccessReviewItem.user_id_key, AccessReviewItem.id)
    )
    if lock:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    return list(db.session.scalars(query))


@dataclass(frozen=True)
class Progress:
    total: int
    kept: int
    removed: int  # decided "remove" (access removed now, or already without access)

    @property
    def decided(self) -> int:
        return self.kept + self.removed

    @property
    def undecided(self) -> int:
        return self.total - self.decided


def progress(review_id: int) -> Progress:
    kept, removed, total = db.session.execute(
        select(
            func.count().filter(AccessReviewItem.decision == Decision.KEEP.value),
            func.count().filter(AccessReviewItem.decision == Decision.REMOVE.value),
            func.count(),
        ).where(AccessReviewItem.review_id == review_id)
    ).one()
    return Progress(int(total), int(kept), int(removed))


NOT_ALL_DECIDED = "Decide about every user first: {n} still to decide."
NOT_CONFIRMED = "Tick the box to confirm the review before you sign it off."


def sign_off(actor: User, review: AccessReview, *, confirmed: bool, now: datetime) -> str | None:
    """Finish ``review`` and sign it off as ``actor``; returns why not (None: done)."""
    if review.finished:
        return FINISHED
    left = progress(review.id).undecided
    if left:
        return NOT_ALL_DECIDED.format(n=left)
    if not confirmed:
        return NOT_CONFIRMED
    done = db.session.execute(
        update(AccessReview)
        .where(AccessReview.id == review.id, AccessReview.finished_at.is_(None))
        .values(
            finished_at=now,
            signed_off_by_id=actor.id,
            signed_off_by=actor.user_id,
            signed_off_name=actor.full_name,
        )
        .execution_options(synchronize_session=False)
    )
    if not rowcount(done):
        return FINISHED
    db.session.expire(review)
    record(
        kinds.ACCESS_REVIEW_SIGNED_OFF,
        actor=actor,
        subject=None,
        now=now,
        organisation_id=review.organisation_id,
        details=f"access review {review.id}",
    )
    db.session.flush()
    return None


def items_page(
    review_id: int, show: str, page: int, per_page: int = PER_PAGE
) -> tuple[list[AccessReviewItem], int]:
    """One page of the review's items (by User ID) and the number of pages."""
    query = select(AccessReviewItem).where(AccessReviewItem.review_id == review_id)
    if show == "undecided":
        query = query.where(AccessReviewItem.decision.is_(None))
    elif show in (Decision.KEEP.value, Decision.REMOVE.value):
        query = query.where(AccessReviewItem.decision == show)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = paging.page_count(total, per_page)
    page = min(max(page, 1), pages)
    rows = db.session.scalars(
        query.order_by(AccessReviewItem.user_id_key, AccessReviewItem.id)
        .limit(per_page)
        .offset(paging.offset(page, per_page))
    )
    return list(rows), pages


def reviews_of(organisation_id: int, limit: int = 200) -> list[AccessReview]:
    """The organisation's reviews, newest first."""
    return list(
        db.session.scalars(
            select(AccessReview)
            .where(AccessReview.organisation_id == organisation_id)
            .order_by(AccessReview.started_at.desc(), AccessReview.id.desc())
            .limit(limit)
        )
    )


def last_signed_off(organisation_id: int) -> AccessReview | None:
    return db.session.scalar(
        select(AccessReview)
        .where(
            AccessReview.organisation_id == organisation_id, AccessReview.finished_at.is_not(None)
        )
        .order_by(AccessReview.finished_at.desc(), AccessReview.id.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class ReviewStatus:
    """What the dashboard and the digest say: the last review signed off, when the next is
    due, and whether it is due now."""

    last: AccessReview | None
    in_progress: AccessReview | None
    next_due: date
    due: bool
    overdue_days: int


def next_due_on(last_finished: datetime | None, created_at: datetime, days: int) -> date:
    """The last review's day (or, before the first, the organisation's creation day) plus
    ``days`` (``PORTAL_ACCESS_REVIEW_DAYS``), in the portal's time zone."""
    return clock.local_date(last_finished or created_at) + timedelta(days=days)


def status(organisation: Organisation, *, today: date, days: int) -> ReviewStatus:
    last = last_signed_off(organisation.id)
    due_on = next_due_on(last.finished_at if last else None, organisation.created_at, days)
    return ReviewStatus(
        last=last,
        in_progress=open_review(organisation.id),
        next_due=due_on,
        due=due_on <= today,
        overdue_days=max(0, (today - due_on).days),
    )


def due_dates(*, days: int) -> dict[int, date]:
    """Every organisation's next review date, in one grouped query (the nightly digest)."""
    last = (
        select(
            AccessReview.organisation_id.label("org_id"),
            func.max(AccessReview.finished_at).label("finished_at"),
        )
        .where(AccessReview.finished_at.is_not(None))
        .group_by(AccessReview.organisation_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Organisation.id, Organisation.created_at, last.c.finished_at).outerjoin(
            last, last.c.org_id == Organisation.id
        )
    )
    return {
        org_id: next_due_on(finished_at, created_at, days)
        for org_id, created_at, finished_at in rows
    }
