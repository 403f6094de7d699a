"""What Administrators (and the CLI) do to other users: the Enabled flag (R4–R6), expiry dates,
details, one-time password resets, ending sessions.  Every function asks ``rules``, applies
the decision, records the events with the actor, and flushes; the caller runs it inside
``write_transaction`` (which commits).  Refusals come back as decisions, never exceptions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime

from sqlalchemy import Update
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from portal import clock
from portal.accounts import queries
from portal.accounts import rules
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.service import AccountError
from portal.accounts.service import one_time_password
from portal.accounts.service import valid_email
from portal.accounts.service import valid_full_name
from portal.audit import kinds
from portal.audit.record import record
from portal.audit.record import record_now
from portal.extensions import db

EventKind = rules.EventKind


def lock_row(user: User) -> User:
    """Re-read ``user`` with its row locked for this write.

    On PostgreSQL the organisation's row is locked first, so that changes within one
    organisation are serialised (two Administrators removing each other at the same moment
    cannot both pass the last-Administrator check), and locks are ``FOR NO KEY UPDATE``, which
    does not block the key-share locks that inserting audit rows (foreign keys to users) takes.
    On SQLite the write transaction already began IMMEDIATE.
    """
    if user.organisation_id is not None and db.session.get_bind().dialect.name != "sqlite":
        db.session.execute(
            select(Organisation.id)
            .where(Organisation.id == user.organisation_id)
            .with_for_update(key_share=True)
        )
    locked = db.session.get(
        User, user.id, with_for_update={"key_share": True}, populate_existing=True
    )
    assert locked is not None  # users are never deleted
    return locked


def lock_organisation_user(org_id: int, pk: int) -> User | None:
    """The user ``pk`` of organisation ``org_id``, its row locked for this write (None: no such
    user there).  One statement where :func:`lock_row` needs a read first."""
    found = lock_listed_user(org_id, pk)
    return found[0] if found is not None else None


def lock_listed_user(org_id: int, pk: int) -> tuple[User, bool] | None:
    """:func:`lock_organisation_user` for a row of the users list (the Console's toggle, the
    hottest write): the user, and whether it has a second factor (R10), which the re-rendered
    row shows, read by the same statement."""
    if db.session.get_bind().dialect.name != "sqlite":
        db.session.execute(_LOCK_ORGANISATION, {"org": org_id})
    row = db.session.execute(_LOCK_ORGANISATION_USER, {"pk": pk, "org": org_id}).first()
    return (row[0], bool(row[1])) if row is not None else None


# :func:`lock_listed_user`'s statements, built once.
_LOCK_ORGANISATION = (
    select(Organisation.id)
    .where(Organisation.id == bindparam("org"))
    .with_for_update(key_share=True)
)
_LOCK_ORGANISATION_USER = (
    select(User, queries.has_second_factor())
    .where(User.id == bindparam("pk"), User.organisation_id == bindparam("org"))
    .with_for_update(key_share=True)
    .execution_options(populate_existing=True)
)


def lock_organisation_users(org_id: int, pks: list[int]) -> dict[int, User]:
    """The users ``pks`` of organisation ``org_id`` (others are left out), their rows locked
    for this write, in one statement (a bulk action's chunk; :func:`lock_organisation_user`
    for many)."""
    if not pks:
        return {}
    if db.session.get_bind().dialect.name != "sqlite":
        db.session.execute(
            select(Organisation.id).where(Organisation.id == org_id).with_for_update(key_share=True)
        )
    found = db.session.scalars(
        select(User)
        .where(User.id.in_(pks), User.organisation_id == org_id)
        .order_by(User.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return {user.id: user for user in found}


def is_last_admin_with_access(user: User, *, now: datetime, today: date) -> bool:
    """Would removing ``user``'s access leave its organisation without an Administrator with
    access?  "With access" as the rules say at ``now`` (``states``): an Administrator whose
    expiry date is reached, or inactive too long, no longer counts, swept or not."""
    if user.organisation_id is None or not states.is_administrator_with_access(user, now, today):
        return False
    others = db.session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.organisation_id == user.organisation_id,
            states.administrator_with_access(now, today),
            User.id != user.id,
        )
    )
    return not others


def _record(
    decision: rules.Decision,
    actor: User | None,
    user: User,
    now: datetime,
    details: str | None = None,
    *,
    at_once: bool = False,
) -> None:
    """The decision's audit events.  ``at_once``: one Core INSERT each now (a single change,
    the Console's toggle), rather than objects a later flush writes together (a bulk chunk)."""
    if at_once:
        db.session.flush()  # what came before (a due disable's event) keeps its place in order
    store = record_now if at_once else record
    for ev in decision.events:
        reason = ev.reason.value if ev.reason else None
        if decision.outcome not in (rules.Outcome.OK, rules.Outcome.NO_CHANGE):
            reason = decision.outcome.value  # refusals record why they were refused
        store(ev.kind, actor=actor, subject=user, now=now, reason=reason, details=details)


def _on_behalf_of(reference: str | None, note: str | None = None) -> str | None:
    """The audit details naming the helpdesk request an action was taken for, if any, and
    the caller's ``note`` (a bulk operation's id)."""
    parts = (f"helpdesk request {reference}" if reference else None, note)
    return "; ".join(p for p in parts if p) or None


def set_enabled(
    actor: User | None,
    user: User,
    *,
    enabled: bool,
    now: datetime,
    today: date,
    locked: bool = False,
    reference: str | None = None,
    note: str | None = None,
    flush: bool = True,
) -> rules.Decision:
    """Set (never flip) Enabled: R6 when checking, R4 (and R5 step 3) when unchecking.

    ``flush`` as for :func:`set_expiry`.  ``actor`` None is the break-glass CLI (there is no
    "self" and no last-Administrator rule
    for it: it exists to recover an organisation that locked itself out).  ``locked``: the
    caller already holds the row (:func:`lock_organisation_user`).  ``reference`` (a
    helpdesk request reference, e.g. ``HD-000123``) is recorded with the audit events.
    """
    if not locked:
        user = lock_row(user)
    state = user.to_state()
    if enabled:
        state = _apply_due(user, state, now=now, today=today)
        decision = rules.reenable(state, now=now, today=today)
    else:
        decision = rules.remove_access(
            state,
            actor_is_self=actor is not None and actor.id == user.id,
            is_last_admin=actor is not None
            and is_last_admin_with_access(user, now=now, today=today),
        )
    if decision.outcome is rules.Outcome.OK:
        if flush:
            _write_now(user, decision.state)
        else:
            user.apply(decision.state)
    _record(decision, actor, user, now, _on_behalf_of(reference, note), at_once=flush)
    return decision


def _write_now(user: User, state: rules.AccountState) -> None:
    """``user.apply(state)`` written at once by one UPDATE of the columns that change (built
    once for each set of them), their values then set on the entity as already stored: a
    single change (the Console's toggle, the hottest write) skips the unit of work's flush,
    which costs more than the statement.  What the session holds unwritten (a due account's
    disable and its event) is flushed first, in order.  The values set as committed are not
    undone by rolling back to a SAVEPOINT (nothing here uses ``begin_nested``); rolling back
    the transaction expires the entity as usual."""
    db.session.flush()
    changed = {k: v for k, v in user.changes(state).items() if getattr(user, k) != v}
    if not changed:
        return
    params = {f"new_{name}": value for name, value in changed.items()}
    result = db.session.connection().execute(_update_of(tuple(changed)), {"pk": user.id, **params})
    if result.rowcount != 1:  # as the ORM's flush would (the row is locked: never expected)
        raise StaleDataError(f"UPDATE of user {user.id} matched {result.rowcount} rows")
    for name, value in changed.items():
        set_committed_value(user, name, value)


@functools.lru_cache(maxsize=64)
def _update_of(columns: tuple[str, ...]) -> Update:
    """:func:`_write_now`'s UPDATE of these columns of one user, built once for each set (a
    handful occur: which of a state's columns differ from the row's)."""
    table = User.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("pk"))
        .values({name: bindparam(f"new_{name}", type_=table.c[name].type) for name in columns})
    )


def _apply_due(
    user: User, state: rules.AccountState, *, now: datetime, today: date
) -> rules.AccountState:
    """An account still Enabled but due (R2/R3: expiry date reached, or inactive too long) is
    disabled first, by the system, as a login or the nightly sweep would: so that re-enabling
    it restarts the inactivity clock (R6) or is refused for expiry, instead of "no change"
    for a user who cannot log in."""
    due = rules.sweep(state, now=now, today=today)
    if not due.changed:
        return state
    user.apply(due.state)
    _record(due, None, user, now)
    return due.state


def set_expiry(
    actor: User | None,
    user: User,
    new_date: date,
    *,
    now: datetime,
    today: date,
    reference: str | None = None,
    locked: bool = False,
    note: str | None = None,
    flush: bool = True,
) -> rules.Decision:
    """Change the expiry date (a past date is refused); ``reference``, ``locked`` and
    ``note`` as for set_enabled.  ``flush`` False: the caller flushes (a bulk action flushes
    a chunk of users at once; the session's autoflush still runs before any query, so a rule
    that counts, such as the last Administrator, sees every change before it)."""
    if not locked:
        user = lock_row(user)
    old = user.expires_on
    decision = rules.set_expiry(user.to_state(), new_date, today=today)
    if decision.outcome is rules.Outcome.OK:
        user.apply(decision.state)
    for ev in decision.events:
        record(
            ev.kind,
            actor=actor,
            subject=user,
            now=now,
            reason=None if decision.outcome is rules.Outcome.OK else decision.outcome.value,
            details="; ".join(
                filter(None, (f"{old or 'none'} -> {new_date}", _on_behalf_of(reference, note)))
            ),
        )
    if flush:
        db.session.flush()
    return decision


@dataclass(frozen=True, slots=True)
class DetailsChange:
    """What :func:`update_details` did: ``ok`` (``changed`` lists what changed, perhaps
    nothing), or a refusal (``refused_self``, ``refused_last_admin``) that changed nothing."""

    outcome: rules.Outcome
    changed: list[str] = field(default_factory=list)


def update_details(
    actor: User, user: User, *, full_name: str, email: str, profile: str, now: datetime
) -> DetailsChange:
    """Change name, email and profile.

    Input that is not a name, an address or one of the two profiles raises AccountError (it is
    the shape of the input); taking the Administrator profile from oneself, or from the
    organisation's last Administrator with access (R4's reasoning), is refused as an outcome.
    """
    user = lock_row(user)
    full_name = valid_full_name(full_name)
    email = valid_email(email)
    if profile not in (Profile.CLAIMS_HANDLER.value, Profile.ADMINISTRATOR.value):
        raise AccountError("Choose Claims Handler or Administrator")
    if user.is_administrator and profile != Profile.ADMINISTRATOR.value:
        if actor.id == user.id:
            return DetailsChange(rules.Outcome.REFUSED_SELF)
        if is_last_admin_with_access(user, now=now, today=clock.local_date(now)):
            return DetailsChange(rules.Outcome.REFUSED_LAST_ADMIN)
    changed = []
    for name, value in (("full_name", full_name), ("email", email), ("profile", profile)):
        if getattr(user, name) != value:
            changed.append(f"{name}: {getattr(user, name)} -> {value}")
            setattr(user, name, value)
    if changed:
        record(
            kinds.DETAILS_CHANGED, actor=actor, subject=user, now=now, details="; ".join(changed)
        )
    db.session.flush()
    return DetailsChange(rules.Outcome.OK, changed)


def reset_password(actor: User | None, user: User, *, now: datetime) -> str:
    """A new one-time password (shown once), to be changed at first login.

    The failure count goes to 0 (R1) and every session ends (R8).  Access itself is not
    restored: ticking Enabled does that (R6).
    """
    user = lock_row(user)
    plain = one_time_password()
    user.set_password(plain)
    user.must_change_password = True
    user.apply(rules.password_issued(user.to_state()))  # access itself stays as it is
    record(kinds.PASSWORD_RESET_BY_ADMIN, actor=actor, subject=user, now=now)
    db.session.flush()
    return plain


def sign_out_everywhere(actor: User | None, user: User, *, now: datetime) -> None:
    user = lock_row(user)
    user.rotate_session_token()
    record(kinds.SESSIONS_ENDED, actor=actor, subject=user, now=now)
    db.session.flush()
