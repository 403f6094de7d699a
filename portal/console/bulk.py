"""Bulk actions on the Console's users list (docs/rules.md §4 "Housekeeping at scale").

An Administrator picks users (their primary keys, or "all that match" the list's filters) and
one action: remove access (R4), re-enable (R6), set the expiry date, or extend it by 3, 6 or 12
months (from the later of the current expiry date and today).  Each user goes through the same
``management`` function as one at a time, in order, inside the operation's transaction, so the
rules re-check as the batch goes: two Administrators in one batch cannot leave the firm
without an Administrator with access.

The operation and one row per selected user are stored first; the work then fills in each
row's outcome (changed / refused with the rule's reason / already so / not found).  Up to
PORTAL_BULK_BACKGROUND_OVER users are worked in the request; more are queued as a background
job (``portal.jobs.queue``) that the scheduler claims, and the result page shows its progress.
Every per-user audit event names the operation ("bulk operation 12").
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal import clock
from portal import messages
from portal.accounts import management
from portal.accounts import queries
from portal.accounts import rules
from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.audit import kinds
from portal.audit.record import record
from portal.db import UTCDateTime
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import queue

REMOVE_ACCESS = "remove_access"
ENABLE = "enable"
SET_EXPIRY = "set_expiry"
EXTEND_EXPIRY = "extend_expiry"
ACTIONS: dict[str, str] = {
    REMOVE_ACCESS: "Remove access",
    ENABLE: "Re-enable (tick Enabled)",
    SET_EXPIRY: "Set the expiry date",
    EXTEND_EXPIRY: "Extend the expiry date",
}
MONTHS = (3, 6, 12)

PENDING = "pending"
CHANGED = "changed"
REFUSED = "refused"
ALREADY = "already"
NOT_FOUND = "not_found"
OUTCOMES: dict[str, str] = {
    CHANGED: "Changed",
    REFUSED: "Refused",
    ALREADY: "Already so",
    NOT_FOUND: "Not found",
}
#: Users worked per transaction (and between two progress updates).
CHUNK = 500
#: How many raw ids one request may name (select_all has no limit: it is a query).
MAX_IDS = 100_000

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"


class BulkOperation(db.Model):  # type: ignore[name-defined]
    __tablename__ = "bulk_operations"
    __table_args__ = (
        CheckConstraint(
            "action IN ('remove_access', 'enable', 'set_expiry', 'extend_expiry')",
            name="bulk_operation_action",
        ),
        CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="bulk_operation_status"
        ),
        CheckConstraint(
            "(action = 'set_expiry') = (expires_on IS NOT NULL)", name="bulk_operation_date"
        ),
        CheckConstraint(
            "(action = 'extend_expiry') = (months IS NOT NULL) "
            "AND (months IS NULL OR months IN (3, 6, 12))",
            name="bulk_operation_months",
        ),
        CheckConstraint("processed >= 0 AND processed <= total", name="bulk_operation_progress"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(20))
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    months: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default=QUEUED)
    #: True when it runs as a background job (more than PORTAL_BULK_BACKGROUND_OVER users).
    background: Mapped[bool] = mapped_column(default=False)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def label(self) -> str:
        return f"bulk operation {self.id}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.processed * 100 // self.total

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)


class BulkItem(db.Model):  # type: ignore[name-defined]
    __tablename__ = "bulk_operation_items"
    __table_args__ = (
        UniqueConstraint("operation_id", "position", name="uq_bulk_item_position"),
        CheckConstraint(
            "outcome IN ('pending', 'changed', 'refused', 'already', 'not_found')",
            name="bulk_item_outcome",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("bulk_operations.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    #: The primary key asked for; not a foreign key: it may be no user, or another firm's.
    user_pk: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The User ID once found (the result page never shows another firm's User ID).
    user_label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(12), default=PENDING)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class BulkError(ValueError):
    """A request that cannot become an operation (unknown action, bad date, nothing chosen)."""


@dataclass(frozen=True)
class Request:
    """What the Administrator asked for, checked."""

    action: str
    expires_on: date | None = None
    months: int | None = None


def parse_request(action: str, expires_on: str, months: str, *, today: date) -> Request:
    """Check the action and its parameter; a date not after today is *not* refused here: each
    user gets the rule's own refusal (R3), as one at a time would."""
    if action not in ACTIONS:
        raise BulkError("Choose an action")
    if action == SET_EXPIRY:
        try:
            return Request(action, expires_on=date.fromisoformat(expires_on.strip()))
        except ValueError:
            raise BulkError("Enter the new expiry date as YYYY-MM-DD") from None
    if action == EXTEND_EXPIRY:
        if months.strip() not in {str(m) for m in MONTHS}:
            raise BulkError("Choose 3, 6 or 12 months")
        return Request(action, months=int(months))
    return Request(action)


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months; the 31st becomes the month's last day where there is none."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def extended(expires_on: date | None, months: int, *, today: date) -> date:
    """``extend_expiry``: counted from the later of the current expiry date and today."""
    start = max(expires_on, today) if expires_on is not None else today
    return add_months(start, months)


def parse_ids(raw: Iterable[str]) -> list[int | str]:
    """The ``user`` values in order, without repeats: ints, or the raw text (not found)."""
    seen: dict[int | str, None] = {}
    for value in raw:
        value = value.strip()[:64]
        if not value:
            continue
        key: int | str = int(value) if value.isdigit() and len(value) < 12 else value
        seen.setdefault(key, None)
        if len(seen) >= MAX_IDS:
            break
    return list(seen)


def matching_ids(org_id: int, filters: queries.UserFilters) -> list[int]:
    """Every user of the organisation the list's filters match ("select all that match"), in
    the list's order (User ID)."""
    now, today = clock.now(), clock.today()
    stmt = (
        queries.filtered(org_id, filters, now, today)
        .with_only_columns(User.id)
        .order_by(User.user_id_key)
    )
    return list(db.session.scalars(stmt))


def count_matching(org_id: int, filters: queries.UserFilters) -> int:
    now, today = clock.now(), clock.today()
    ids = queries.filtered(org_id, filters, now, today).with_only_columns(User.id)
    return int(db.session.scalar(select(func.count()).select_from(ids.subquery())) or 0)


def create(
    actor: User,
    req: Request,
    ids: Sequence[int | str],
    *,
    now: datetime,
    background_over: int,
) -> BulkOperation:
    """Store the operation and a pending row per id (inside the caller's write transaction);
    queue it as a background job when it is larger than ``background_over``."""
    background = len(ids) > background_over
    op = BulkOperation(
        organisation_id=actor.organisation_id,
        actor_id=actor.id,
        action=req.action,
        expires_on=req.expires_on,
        months=req.months,
        status=QUEUED,
        background=background,
        total=len(ids),
        processed=0,
        created_at=now,
    )
    db.session.add(op)
    db.session.flush()
    db.session.execute(
        BulkItem.__table__.insert(),
        [
            {
                "operation_id": op.id,
                "position": n,
                "user_pk": value if isinstance(value, int) else None,
                "outcome": PENDING if isinstance(value, int) else NOT_FOUND,
            }
            for n, value in enumerate(ids)
        ],
    ) if ids else None
    record(
        kinds.BULK_ACTION_STARTED,
        actor=actor,
        subject=None,
        now=now,
        details=f"{op.label}: {req.action}, {len(ids)} user(s)"
        + (f", to {req.expires_on}" if req.expires_on else "")
        + (f", by {req.months} months" if req.months else ""),
    )
    if background:
        queue.enqueue("bulk_operation", op.id, now=now)
    return op


def _one(
    op: BulkOperation, actor: User, user: User | None, now: datetime, today: date
) -> tuple[str, str | None, str | None]:
    """One user through the rules: (outcome, reason text, User ID)."""
    if user is None:
        return NOT_FOUND, None, None  # another firm's user is not found here (AC-02)
    note = op.label
    if op.action in (REMOVE_ACCESS, ENABLE):
        decision = management.set_enabled(
            actor,
            user,
            enabled=op.action == ENABLE,
            now=now,
            today=today,
            locked=True,
            note=note,
            flush=False,
        )
    else:
        new_date = (
            op.expires_on
            if op.action == SET_EXPIRY
            else extended(user.expires_on, op.months or 0, today=today)
        )
        assert new_date is not None  # the CHECK constraint: set_expiry has a date
        decision = management.set_expiry(
            actor, user, new_date, now=now, today=today, locked=True, note=note, flush=False
        )
    if decision.outcome is rules.Outcome.OK:
        return CHANGED, None, user.user_id
    if decision.outcome is rules.Outcome.NO_CHANGE:
        return ALREADY, None, user.user_id
    return REFUSED, messages.CONSOLE_REFUSALS.get(decision.outcome), user.user_id


def work(op_id: int, *, job_id: int | None = None) -> BulkOperation:
    """Work the operation's pending rows, a chunk per transaction, until none is left
    (resumable: a job taken over after a crash goes on where it stopped)."""
    while True:
        now, today = clock.now(), clock.today()
        with write_transaction(db.session):
            op = db.session.get(BulkOperation, op_id, populate_existing=True)
            assert op is not None
            actor = db.session.get(User, op.actor_id)
            assert actor is not None
            pending = list(
                db.session.scalars(
                    select(BulkItem)
                    .where(BulkItem.operation_id == op_id, BulkItem.outcome == PENDING)
                    .order_by(BulkItem.position)
                    .limit(CHUNK)
                )
            )
            if not pending:
                _finish(op, actor, now)
                return op
            op.status = RUNNING
            users = management.lock_organisation_users(
                op.organisation_id, [i.user_pk for i in pending if i.user_pk is not None]
            )
            for item in pending:
                assert item.user_pk is not None  # raw text ids are not found from the start
                item.outcome, item.reason, item.user_label = _one(
                    op, actor, users.get(item.user_pk), now, today
                )
            op.processed = _done_count(op_id)
            if job_id is not None:
                queue.heartbeat(job_id)


def _done_count(op_id: int) -> int:
    db.session.flush()
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(BulkItem)
            .where(BulkItem.operation_id == op_id, BulkItem.outcome != PENDING)
        )
        or 0
    )


def _finish(op: BulkOperation, actor: User, now: datetime) -> None:
    if op.status in (DONE, FAILED):
        return
    counts = summary_counts(op.id)
    op.status = DONE
    op.processed = op.total
    op.finished_at = now
    record(
        kinds.BULK_ACTION_FINISHED,
        actor=actor,
        subject=None,
        now=now,
        details=f"{op.label}: "
        + ", ".join(f"{OUTCOMES[k].lower()} {counts.get(k, 0)}" for k in OUTCOMES),
    )


def run_job(job_id: int, op_id: int) -> None:
    """The background job's handler (``portal.jobs.queue``)."""
    work(op_id, job_id=job_id)


def summary_counts(op_id: int) -> dict[str, int]:
    rows = db.session.execute(
        select(BulkItem.outcome, func.count())
        .where(BulkItem.operation_id == op_id)
        .group_by(BulkItem.outcome)
    )
    return {outcome: int(n) for outcome, n in rows}


def items(op_id: int, outcome: str | None = None, *, limit: int = 1000) -> list[BulkItem]:
    """The operation's rows (of one outcome), in the order asked for."""
    stmt = select(BulkItem).where(BulkItem.operation_id == op_id)
    if outcome:
        stmt = stmt.where(BulkItem.outcome == outcome)
    return list(db.session.scalars(stmt.order_by(BulkItem.position).limit(limit)))


def find(org_id: int, op_id: int) -> BulkOperation | None:
    """An operation of this organisation (another firm's does not exist here)."""
    return db.session.scalar(
        select(BulkOperation).where(
            BulkOperation.id == op_id, BulkOperation.organisation_id == org_id
        )
    )


def organisation_of(op: BulkOperation) -> Organisation | None:
    return db.session.get(Organisation, op.organisation_id)


def mark_failed(op_id: int) -> None:
    with write_transaction(db.session):
        db.session.execute(
            update(BulkOperation)
            .where(BulkOperation.id == op_id)
            .values(status=FAILED, finished_at=clock.now())
        )
