"""Second-factor operations (docs/rules.md R10): the login's code step, enrolment, removal,
recovery codes.  Like ``portal.accounts.service``: each loads the rows, asks ``rules``, applies
the decision, records the events.  :func:`attempt_code` manages its own write transaction (as
``attempt_login`` does); the others run inside the caller's.

The wrong-code count (``users.failed_codes``) is only ever raised by one atomic UPDATE …
RETURNING built from ``rules.CODE_LOCKOUT_AFTER`` (:func:`_count_wrong_code`), never by a
read-modify-write in Python, so the fifth wrong code locks exactly, under any concurrency.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from dataclasses import replace
from datetime import date
from datetime import datetime
from typing import Any
from typing import Protocol

from sqlalchemy import Exists
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.sql.dml import Update

from portal import clock
from portal import mail_queue
from portal import mail_secrets
from portal.accounts import lockout_notices
from portal.accounts import rules
from portal.accounts import service as accounts_service
from portal.accounts.models import STATE_COLUMNS
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import login_id
from portal.accounts.models import new_session_token
from portal.accounts.models import state_columns
from portal.accounts.models import state_of
from portal.audit import kinds
from portal.audit.record import record
from portal.audit.record import record_now
from portal.db import rowcount
from portal.db import write_transaction
from portal.extensions import db
from portal.ops import metrics
from portal.second_factor import recovery
from portal.second_factor import totp
from portal.second_factor.models import FactorKind
from portal.second_factor.models import SecondFactor

log = logging.getLogger(__name__)

EventKind = rules.EventKind
#: Audit details of a lockout by codes (the reason stays ``lockout``, as R10 asks).
LOCKED_BY_CODES = f"{rules.CODE_LOCKOUT_AFTER} wrong second-factor codes in a row"


@dataclass(frozen=True, slots=True)
class CodeUser:
    """The user's columns the code step reads: one Core row, not the ORM entity (PK-06).  Also
    what a right code logs in (Flask-Login's user protocol; the next request loads the
    ``User`` as usual) and the actor and subject of the audit events."""

    id: int
    user_id: str
    organisation_id: int | None
    profile: str
    must_change_password: bool
    session_token: str
    state: rules.AccountState

    @property
    def is_administrator(self) -> bool:
        return self.profile == Profile.ADMINISTRATOR

    @property
    def is_active(self) -> bool:
        return rules.has_access(self.state, clock.now(), clock.today())

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return login_id(self.id, self.session_token)


@dataclass(frozen=True)
class CodeResult:
    outcome: rules.Outcome
    user: CodeUser | None = None
    #: How the code was right: ``totp`` or ``recovery``.
    method: str | None = None
    #: For a refusal: may this user reset its own password (R7)?
    may_self_reset: bool = False


class Verifier(Protocol):
    """How a code is checked: ``verify_code`` (TOTP, recovery code) or a passkey answer
    (``passkeys.login_verifier``).  The method name when right (and spent), else None (a wrong
    code, counted)."""

    def __call__(self, user_pk: int, code: str, *, now: datetime) -> str | None: ...


class FactorError(ValueError):
    """A refused enrolment or removal, with a message fit to show."""


def has_factor_clause(user_id_column: Any) -> Exists:
    """SQL: the user (by its primary key column) has a second factor."""
    return exists().where(SecondFactor.user_id == user_id_column)


#: :func:`has_factor`'s statement, built once (one row of the users list asks it on every toggle).
_HAS_FACTOR = select(has_factor_clause(bindparam("pk")))


def has_factor(user_pk: int) -> bool:
    return bool(db.session.scalar(_HAS_FACTOR, {"pk": user_pk}))


def factors(user_pk: int) -> list[SecondFactor]:
    return list(
        db.session.scalars(
            select(SecondFactor)
            .where(SecondFactor.user_id == user_pk)
            .order_by(SecondFactor.created_at, SecondFactor.id)
        )
    )


# --- the code step of the login ---------------------------------------------------------------


def _count_wrong_code(user_pk: int) -> tuple[int, bool] | None:
    """R10: one more wrong code; the fifth disables the account (reason ``lockout``) and ends
    its sessions (the same atomic UPDATE as R1's, on ``failed_codes``)."""
    return accounts_service.count_towards_lockout(
        user_pk, User.failed_codes, rules.CODE_LOCKOUT_AFTER
    )


#: The code step's two statements, built once (the login's hot path, docs/security.md PK-06):
#: Core statements on the table, so that neither statement building nor the ORM's entity
#: loading and bulk-update machinery runs per request.
_factors_table = SecondFactor.__table__
_TOTP_FACTORS = select(
    _factors_table.c.id, _factors_table.c.totp_secret_sealed, _factors_table.c.totp_last_step
).where(
    _factors_table.c.user_id == bindparam("user_pk"),
    _factors_table.c.kind == FactorKind.TOTP.value,
)
_CLAIM_STEP = (
    update(_factors_table)
    .where(
        _factors_table.c.id == bindparam("factor_id"),
        or_(
            _factors_table.c.totp_last_step.is_(None),
            _factors_table.c.totp_last_step < bindparam("step"),
        ),
    )
    .values(totp_last_step=bindparam("step"), last_used_at=bindparam("now"))
)


_users = User.__table__
#: The user's columns the code step needs, locked against a concurrent change of its state (as
#: ``db.session.get`` with ``with_for_update`` would, without the ORM's entity loading).
_USER_FOR_CODE = (
    select(
        _users.c.id,
        _users.c.user_id,
        _users.c.organisation_id,
        _users.c.profile,
        _users.c.must_change_password,
        _users.c.session_token,
        *(_users.c[name] for name in STATE_COLUMNS),
    )
    .where(_users.c.id == bindparam("pk"))
    .with_for_update(key_share=True)
)


@functools.cache
def _apply_statement(columns: tuple[str, ...]) -> Update:
    """The UPDATE of these user columns (one per set of changed columns, built once)."""
    return (
        update(_users)
        .where(_users.c.id == bindparam("pk"))
        .values({name: bindparam(f"new_{name}") for name in columns})
    )


def _apply(user: CodeUser, state: rules.AccountState) -> None:
    """``User.apply`` for a Core row: write the columns the decision changed (only those, as
    the ORM's flush would), and end every session when access changed (D-5)."""
    before = state_columns(user.state)
    changed = {k: v for k, v in state_columns(state).items() if before[k] != v}
    if user.state.enabled != state.enabled:
        changed["session_token"] = new_session_token()
    if changed:
        params = {f"new_{name}": value for name, value in changed.items()}
        db.session.execute(_apply_statement(tuple(changed)), {"pk": user.id, **params})


def _spend_totp(user_pk: int, code: str, now: datetime) -> bool:
    """Is ``code`` a current code of one of the user's TOTP factors, at a later step than the
    last one used?  Then that step is claimed (conditional UPDATE: never twice)."""
    if not totp.could_be_code(code):
        return False  # neither read nor unsealed: it cannot match (still a wrong code)
    rows = db.session.execute(_TOTP_FACTORS, {"user_pk": user_pk}).all()
    for factor_id, sealed, last_step in rows:
        assert sealed is not None  # CHECK totp_secret_iff_totp
        try:
            secret = totp.unseal(sealed)
        except mail_secrets.Unreadable:
            # SECRET_KEY changed without SECRET_KEY_FALLBACKS: this factor cannot be checked
            # (its user needs a recovery code or a factor reset).
            log.error("TOTP secret of second factor %s cannot be decrypted", factor_id)
            continue
        step = totp.matching_step(secret, code, now, after=last_step)
        if step is None:
            continue
        claimed = db.session.execute(
            _CLAIM_STEP, {"factor_id": factor_id, "step": step, "now": now}
        )
        if rowcount(claimed) == 1:
            return True
    return False


def verify_code(user_pk: int, code: str, *, now: datetime) -> str | None:
    """``totp`` or ``recovery`` when ``code`` is right (and is now spent), else None."""
    code = code.strip()
    if not code or len(code) > 64:
        return None
    if recovery.looks_like_one(code):
        return "recovery" if recovery.spend(user_pk, code, now=now) else None
    return "totp" if _spend_totp(user_pk, code, now) else None


def attempt_code(
    pk: int,
    session_token: str,
    code: str,
    *,
    now: datetime,
    today: date,
    verify: Verifier | None = None,
) -> CodeResult:
    """The second step of a login; commits.  ``session_token`` is the user's token when the
    password was accepted: if it changed since (a lockout, a password change, a reset), the
    half-login is void."""
    queued: list[mail_queue.QueuedMail] = []
    with write_transaction(db.session):
        result = _decide_code(pk, session_token, code, now, today, queued, verify or verify_code)
    mail_queue.deliver_soon(queued)
    return result


def _decide_code(
    pk: int,
    session_token: str,
    code: str,
    now: datetime,
    today: date,
    queued: list[mail_queue.QueuedMail],
    verify: Verifier,
) -> CodeResult:
    row = db.session.execute(_USER_FOR_CODE, {"pk": pk}).first()
    if row is None or row.session_token != session_token:
        return CodeResult(rules.Outcome.BAD_PASSWORD)  # start again from the password
    state = state_of(row)
    user = CodeUser(
        row.id,
        row.user_id,
        row.organisation_id,
        row.profile,
        row.must_change_password,
        row.session_token,
        state,
    )
    if not rules.has_access(state, now, today):
        decision = rules.code_attempt(state, code_ok=False, now=now, today=today)
        _apply(user, decision.state)
        _record(decision, user, now)
        eligible = rules.may_self_reset(decision.state, is_admin=user.is_administrator)
        return CodeResult(decision.outcome, may_self_reset=eligible)
    method = verify(pk, code, now=now)
    if method is not None:
        decision = rules.code_attempt(state, code_ok=True, now=now, today=today)
        _apply(user, decision.state)
        _record(decision, user, now, details=f"second factor: {method}")
        if method == "recovery":
            record_now(kinds.RECOVERY_CODE_USED, actor=user, subject=user, now=now)
        return CodeResult(decision.outcome, replace(user, state=decision.state), method)
    counted = _count_wrong_code(pk)
    record_now(EventKind.CODE_FAILED, actor=user, subject=user, now=now)
    if counted is not None and not counted[1]:
        record_now(
            EventKind.LOCKED_OUT,
            actor=None,
            subject=user,
            now=now,
            reason="lockout",
            details=LOCKED_BY_CODES,
        )
        metrics.LOCKOUTS.inc()
        locked = db.session.get(User, pk)  # the lockout's notices (rare: the ORM is fine)
        assert locked is not None
        queued.extend(lockout_notices.on_lockout(locked, now=now, by_codes=True))
        return CodeResult(rules.Outcome.CODE_LOCKOUT)
    return CodeResult(rules.Outcome.BAD_CODE)


def _record(
    decision: rules.Decision, user: CodeUser, now: datetime, details: str | None = None
) -> None:
    for ev in decision.events:
        by_system = ev.kind in (EventKind.SYSTEM_DISABLED, EventKind.LOCKED_OUT)
        record_now(
            ev.kind,
            actor=None if by_system else user,
            subject=user,
            now=now,
            reason=ev.reason,
            details=None if by_system else details,
        )


def check_again(
    user: User, code: str, *, now: datetime, queued: list[mail_queue.QueuedMail]
) -> bool:
    """Ask for a current factor again (before adding or removing one).  A right code resets the
    wrong-code count; a wrong one counts like one at login (the fifth locks the account and
    ends this session).  Inside the caller's write transaction."""
    if verify_code(user.id, code, now=now) is not None:
        db.session.execute(
            update(User)
            .where(User.id == user.id)
            .values(failed_codes=0)
            .execution_options(synchronize_session=False)
        )
        return True
    counted = _count_wrong_code(user.id)
    db.session.expire(user)
    record(EventKind.CODE_FAILED, actor=user, subject=user, now=now, details="check again")
    if counted is not None and not counted[1]:
        record(
            EventKind.LOCKED_OUT,
            actor=None,
            subject=user,
            now=now,
            reason="lockout",
            details=LOCKED_BY_CODES,
        )
        metrics.LOCKOUTS.inc()
        queued.extend(lockout_notices.on_lockout(user, now=now, by_codes=True))
    return False


# --- enrolment ------------------------------------------------------------------------------


def add_totp(user: User, *, secret: str, code: str, name: str, now: datetime) -> list[str] | None:
    """Bind a TOTP authenticator once ``code`` proves the user's app has ``secret``.

    Returns None for a wrong code; else the new recovery codes to show once (a new set when
    the user has no unused one left, otherwise an empty list: the set it has keeps working).
    Inside the caller's write transaction.
    """
    step = totp.matching_step(secret, code, now, after=None)
    if step is None:
        return None
    name = " ".join(name.split())[:100] or "Authenticator app"
    db.session.add(
        SecondFactor(
            user_id=user.id,
            kind=FactorKind.TOTP.value,
            name=name,
            created_at=now,
            last_used_at=now,
            totp_secret_sealed=totp.seal(secret),
            totp_last_step=step,
        )
    )
    db.session.flush()
    record(kinds.SECOND_FACTOR_ADDED, actor=user, subject=user, now=now, details=f"totp: {name}")
    if recovery.remaining(user.id) == 0:
        return issue_recovery_codes(user, now=now)
    return []


def issue_recovery_codes(user: User, *, now: datetime) -> list[str]:
    codes = recovery.issue(user.id, now=now)
    record(kinds.RECOVERY_CODES_ISSUED, actor=user, subject=user, now=now)
    return codes


def remove_factor(user: User, factor_id: int, *, required: bool, now: datetime) -> None:
    """Remove one of the user's own factors; never the last while its profile requires one.
    Without any factor left its recovery codes go too (they recover nothing)."""
    factor = db.session.scalar(
        select(SecondFactor).where(SecondFactor.id == factor_id, SecondFactor.user_id == user.id)
    )
    if factor is None:
        raise FactorError("That second factor was not found.")
    others = [f for f in factors(user.id) if f.id != factor.id]
    if required and not others:
        raise FactorError(
            "This is your only second factor and your profile requires one: add another "
            "before you remove it."
        )
    details = f"{factor.kind}: {factor.name}"
    db.session.delete(factor)
    if not others:
        db.session.execute(
            delete(recovery.RecoveryCode).where(recovery.RecoveryCode.user_id == user.id)
        )
    db.session.flush()
    record(kinds.SECOND_FACTOR_REMOVED, actor=user, subject=user, now=now, details=details)
