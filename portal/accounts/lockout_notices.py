"""The emails a lockout sends (R1): to the locked-out user and to its organisation's
Administrators, so that an attacker locking many users cannot flood anyone.

* The user is told at its stored address at most once in ``rules.USER_LOCKOUT_NOTICE_EVERY``
  (a day): the lockout claims ``users.lockout_notice_sent_at`` with one conditional UPDATE.
* Each Administrator with access of the organisation gets at most one email in
  ``rules.ADMIN_LOCKOUT_ALERT_EVERY`` (15 minutes).  A lockout adds one :class:`LockoutAlert`
  row per such Administrator (one INSERT … SELECT).  Then :func:`send_due` claims the
  Administrators whose window is open (an upsert of :class:`LockoutAlertWindow` that only
  succeeds when their last email is old enough, so two processes never both claim one), takes
  their pending alerts (DELETE … RETURNING) and queues one email each that lists them.  It
  runs in the lockout's own transaction (the first lockout is told at once) and from the
  scheduler every minute (what waited in a window goes out when it closes).

Everything goes through ``portal.mail_queue.enqueue`` in the caller's transaction: the emails
exist exactly when the lockout does.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import delete
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal import clock
from portal import emails
from portal import links
from portal import mail_queue
from portal.accounts import rules
from portal.accounts import states
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import UTCDateTime
from portal.db import write_transaction
from portal.extensions import db
from portal.mail_queue import QueuedMail

#: ``purpose`` of the queued emails (the Administrators' one is the lockout notice of before).
ADMIN_PURPOSE = "lockout.notice"
USER_PURPOSE = "lockout.user"
#: An Administrator's email names at most this many users (then says how many more).
MAX_LINES = 100


class LockoutAlert(db.Model):  # type: ignore[name-defined]
    """A lockout an Administrator has not been emailed about yet (deleted once it is)."""

    __tablename__ = "lockout_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    administrator_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    subject_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LockoutAlertWindow(db.Model):  # type: ignore[name-defined]
    """When an Administrator was last emailed about lockouts (one row per Administrator)."""

    __tablename__ = "lockout_alert_windows"

    administrator_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _insert() -> Any:
    """INSERT with ON CONFLICT for the session's database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def _local(moment: datetime) -> str:
    local = moment.astimezone(ZoneInfo(clock.configured_timezone()))
    return f"{local.day} {local:%b %Y %H:%M %Z}"


def on_lockout(user: User, *, now: datetime, by_codes: bool = False) -> list[QueuedMail]:
    """Inside the lockout's write transaction (``user``'s row locked): queue the user's notice
    if none went in the last day, record an alert for each Administrator with access of its
    organisation, and queue the emails of those whose window is open.  Returns the queued rows,
    for ``mail_queue.deliver_soon`` after the commit."""
    queued = []
    notice = _user_notice(user, now=now, by_codes=by_codes)
    if notice is not None:
        queued.append(notice)
    if user.organisation_id is not None:
        admins = select(User.id, literal(user.id), literal(now, UTCDateTime)).where(
            _has_access_as_administrator(now),
            User.organisation_id == user.organisation_id,
            User.id != user.id,
        )
        db.session.execute(
            LockoutAlert.__table__.insert().from_select(
                ["administrator_id", "subject_id", "locked_at"], admins
            )
        )
        queued += send_due(now=now, organisation_id=user.organisation_id)
    return queued


def _has_access_as_administrator(now: datetime) -> Any:
    """Administrators with access at ``now``, as the rules say (``states``)."""
    return states.administrator_with_access(now, clock.local_date(now))


def _user_notice(user: User, *, now: datetime, by_codes: bool = False) -> QueuedMail | None:
    """The locked-out user's own notice, claimed atomically: at most one a day.  ``by_codes``:
    the lock came from wrong second-factor codes (R10), after a right password."""
    claimed = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(
                User.lockout_notice_sent_at.is_(None),
                User.lockout_notice_sent_at <= now - rules.USER_LOCKOUT_NOTICE_EVERY,
            ),
        )
        .values(lockout_notice_sent_at=now)
        .returning(User.email, User.user_id, User.full_name, User.profile)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        return None
    email, user_id, full_name, profile = claimed
    body = emails.render(
        "lockout_user.txt",
        full_name=full_name,
        user_id=user_id,
        locked_at=_local(now),
        lockout_after=rules.LOCKOUT_AFTER,
        by_codes=by_codes,
        is_administrator=profile == Profile.ADMINISTRATOR.value,
        is_claims_handler=profile == Profile.CLAIMS_HANDLER.value,
    )
    return mail_queue.enqueue(
        email,
        "Claims Portal: your User ID is locked",
        body,
        purpose=USER_PURPOSE,
        ref=user_id[:40],
    )


def send_due(*, now: datetime, organisation_id: int | None = None) -> list[QueuedMail]:
    """Inside the caller's write transaction: one email to each Administrator with access who
    has pending alerts and was not emailed about lockouts in the last
    ``rules.ADMIN_LOCKOUT_ALERT_EVERY`` (only the Administrators of ``organisation_id``, when
    given).  Alerts for users that are no longer Administrators with access are dropped."""
    if organisation_id is None:
        still_admin = (
            select(User.id)
            .where(User.id == LockoutAlert.administrator_id, _has_access_as_administrator(now))
            .exists()
        )
        db.session.execute(delete(LockoutAlert).where(~still_admin))  # by primary key, per alert
    candidates = (
        select(User.id, literal(now, UTCDateTime))
        .where(
            _has_access_as_administrator(now),
            User.id.in_(select(LockoutAlert.administrator_id)),
        )
        .order_by(User.id)  # the same lock order in every transaction
    )
    if organisation_id is not None:
        candidates = candidates.where(User.organisation_id == organisation_id)
    insert = _insert()(LockoutAlertWindow).from_select(["administrator_id", "sent_at"], candidates)
    claim = insert.on_conflict_do_update(
        index_elements=["administrator_id"],
        set_={"sent_at": insert.excluded.sent_at},
        where=LockoutAlertWindow.sent_at <= now - rules.ADMIN_LOCKOUT_ALERT_EVERY,
    ).returning(LockoutAlertWindow.administrator_id)
    claimed = list(db.session.execute(claim).scalars())
    if not claimed:
        return []
    taken = db.session.execute(
        delete(LockoutAlert)
        .where(LockoutAlert.administrator_id.in_(claimed))
        .returning(LockoutAlert.administrator_id, LockoutAlert.subject_id, LockoutAlert.locked_at)
    ).all()
    by_admin: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for admin_id, subject_id, locked_at in taken:
        by_admin[admin_id].append((locked_at, subject_id))
    people = {
        pk: (user_id, full_name, email)
        for pk, user_id, full_name, email in db.session.execute(
            select(User.id, User.user_id, User.full_name, User.email).where(
                User.id.in_({subject for _, subject, _ in taken} | set(by_admin))
            )
        )
    }
    queued = []
    for admin_id, alerts in sorted(by_admin.items()):
        alerts.sort()
        locked = [(people[pk][0], people[pk][1], at, pk) for at, pk in alerts]
        queued.append(
            mail_queue.enqueue(
                people[admin_id][2],
                _subject(locked),
                _admin_body(locked),
                purpose=ADMIN_PURPOSE,
                ref=locked[0][0][:40] if len(locked) == 1 else None,
            )
        )
    return queued


#: (User ID, full name, locked at, primary key) of a locked-out user, for the emails.
Locked = tuple[str, str, datetime, int]


def _subject(locked: list[Locked]) -> str:
    if len(locked) == 1:
        return f"Claims Portal: {locked[0][0]} is locked out"[:200]
    return f"Claims Portal: {len(locked)} users of your organisation are locked out"


def _admin_body(locked: list[Locked]) -> str:
    return emails.render(
        "lockout_administrators.txt",
        lockout_after=rules.LOCKOUT_AFTER,
        locked=[
            (uid, name, _local(at), links.absolute_url(f"/console/users/{pk}"))
            for uid, name, at, pk in locked[:MAX_LINES]
        ],
        more=max(0, len(locked) - MAX_LINES),
        lockouts_link=links.absolute_url("/console/users?reason=lockout"),
        every=int(rules.ADMIN_LOCKOUT_ALERT_EVERY.total_seconds() // 60),
    )


def send_waiting(*, now: datetime) -> int:
    """The scheduler's frequent job: email every Administrator whose window has closed on
    lockouts that waited in it; commits, then delivers.  Returns how many emails it queued."""
    with write_transaction(db.session):
        queued = send_due(now=now)
    mail_queue.deliver_soon(queued)
    return len(queued)
