"""Account operations: with ``management`` (what Administrators do to others) and
``password_reset`` (R7), the only code that writes users.  Each loads the row, asks ``rules``,
applies the decision, records the events, and flushes.  The caller (view, CLI, job) runs it
inside ``write_transaction`` (which commits).

The exceptions are :func:`attempt_login` and :func:`change_password`, which manage their own
short write transactions: a password hash is never computed while the write lock is held.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from dataclasses import replace
from datetime import date
from datetime import datetime
from enum import StrEnum

from email_validator import EmailNotValidError
from email_validator import validate_email
from sqlalchemy import case
from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute

from portal import clock
from portal import mail_queue
from portal.accounts import lockout_notices
from portal.accounts import passwords
from portal.accounts import rules
from portal.accounts import states
from portal.accounts.models import ORGANISATION_PROFILES
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import key_fits
from portal.accounts.models import new_session_token
from portal.accounts.models import normalise_key
from portal.audit.record import record
from portal.db import write_transaction
from portal.extensions import db
from portal.messages import EXPIRY_NOT_AFTER_TODAY
from portal.ops import metrics
from portal.second_factor.models import SecondFactor

log = logging.getLogger(__name__)

EventKind = rules.EventKind
#: Letters and digits that cannot be confused with each other when read aloud or copied.
_OTP_ALPHABET = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY346789"


class Door(StrEnum):
    PORTAL = "portal"
    CONSOLE = "console"


class AccountError(ValueError):
    """Bad input to an account operation, with a message fit to show the person, and the
    form field it is about (None: the whole form)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LoginResult:
    outcome: rules.Outcome | str
    user: User | None = None
    #: For a refusal: may this user reset its own password (R7)?  The web layer picks the
    #: message by the outcome and this (``messages.for_login``).
    may_self_reset: bool = False

    @property
    def ok(self) -> bool:
        return self.user is not None


#: The lengths of the stored columns (and of their case-folded ``*_key`` copies).
USER_ID_MAX = 64
NAME_MAX = 200
EMAIL_MAX = 254
ORGANISATION_NAME_TOO_LONG = (
    f"The organisation's name must be {NAME_MAX} characters or fewer "
    "(some letters count as more than one, such as ß as ss)"
)
FULL_NAME_TOO_LONG = (
    f"The full name must be {NAME_MAX} characters or fewer "
    "(some letters count as more than one, such as ß as ss)"
)
EMAIL_TOO_LONG = (
    f"The email address must be {EMAIL_MAX} characters or fewer "
    "(some letters count as more than one, such as ß as ss)"
)


#: Audit details of a right password answered with the generic failure (R1 as amended).
HIDDEN_REASON = (
    f"answered as a wrong password: {rules.GUESSES_WITHOUT_ACCESS} or more wrong passwords "
    "since access was lost"
)
GENERIC = LoginResult(rules.Outcome.BAD_PASSWORD)
#: The outcome of a right password at the Console's door from a user who is not an
#: Administrator.
REFUSED_CONSOLE = "refused_console"


def find_user(user_id: str) -> User | None:
    return db.session.scalar(select(User).where(User.user_id_key == normalise_key(user_id)))


def user_id_taken(user_id: str) -> bool:
    """Does a user have this User ID already (User IDs ignore case)?  The create forms ask
    before they are sent, so that every problem is reported at once; ``create_user`` asks
    again inside its transaction."""
    return find_user(user_id) is not None


def _lock_user(pk: int) -> User:
    """The user row, locked for this transaction (FOR UPDATE on PostgreSQL; on SQLite the
    transaction already began IMMEDIATE)."""
    user = db.session.get(User, pk, with_for_update={"key_share": True}, populate_existing=True)
    assert user is not None  # users are never deleted
    return user


def count_towards_lockout(
    user_pk: int, counter: InstrumentedAttribute[int], limit: int
) -> tuple[int, bool] | None:
    """One more failure on ``counter`` in one atomic UPDATE … RETURNING, built from the rules'
    constants (docs/security.md LK-04): the ``limit``-th disables the account (reason
    ``lockout``) and ends its sessions.  R1 counts wrong passwords on ``failed_attempts``, R10
    wrong codes on ``failed_codes``.  Only an enabled account counts; returns (the count,
    enabled) afterwards, or None when the account was no longer enabled."""
    will_lock = counter + 1 >= limit
    stmt = (
        update(User)
        .where(User.id == user_pk, User.enabled.is_(True))
        .values(
            {
                counter: counter + 1,
                User.enabled: case((will_lock, False), else_=User.enabled),
                User.disabled_reason: case((will_lock, rules.Reason.LOCKOUT.value), else_=None),
                User.session_token: case(
                    (will_lock, new_session_token()), else_=User.session_token
                ),
            }
        )
        .returning(counter, User.enabled)
        .execution_options(synchronize_session=False)
    )
    row = db.session.execute(stmt).first()
    return (row[0], row[1]) if row is not None else None


def _count_failure(user: User) -> tuple[int, bool] | None:
    """R1: one more wrong password (:func:`count_towards_lockout` on ``failed_attempts``)."""
    counted = count_towards_lockout(user.id, User.failed_attempts, rules.LOCKOUT_AFTER)
    db.session.expire(user)
    return counted


def _count_failure_without_access(user: User) -> int | None:
    """R1 as amended, in one atomic UPDATE … RETURNING: one more wrong password tried while the
    account is without access (``rules.counted_without_access`` in SQL, capped).

    Only an account that is not enabled counts; returns the new count, or None when the
    account was enabled (access came back meanwhile).
    """
    count = User.failed_attempts_without_access
    stmt = (
        update(User)
        .where(User.id == user.id, User.enabled.is_(False))
        .values(
            failed_attempts_without_access=case(
                (count < rules.WITHOUT_ACCESS_COUNT_CAP, count + 1), else_=count
            )
        )
        .returning(User.failed_attempts_without_access)
        .execution_options(synchronize_session=False)
    )
    row = db.session.execute(stmt).first()
    db.session.expire(user)
    return row[0] if row is not None else None


def attempt_login(
    user_id: str, password: str, *, door: Door, now: datetime, today: date
) -> LoginResult:
    """Log in through one of the two doors; commits.  One password verification per call.

    A user with a second factor gets ``Outcome.SECOND_FACTOR`` (and itself) after a right
    password: not logged in yet; ``portal.second_factor.service.attempt_code`` finishes."""
    found = None
    if _plausible_user_id(user_id):
        found = db.session.execute(
            select(User.id, User.password_hash, User.password_changed_at).where(
                User.user_id_key == normalise_key(user_id)
            )
        ).first()
    db.session.commit()  # end the read transaction before the slow part

    stored_hash = found.password_hash if found is not None else None
    password_ok = passwords.verify_password(stored_hash, password)
    if found is None:
        with write_transaction(db.session):  # audited like any failure (R9), same shape of work
            record(
                EventKind.LOGIN_FAILED,
                actor=None,
                actor_label="anonymous",
                subject=None,
                now=now,
                reason="unknown_user_id",  # the text typed is not kept: it may be a password
            )
        return GENERIC
    new_hash = (
        passwords.hash_password(password)
        if password_ok and passwords.needs_rehash(found.password_hash)
        else None
    )

    queued: list[mail_queue.QueuedMail] = []
    with write_transaction(db.session):
        result = _decide_login(
            found.id, found.password_changed_at, password_ok, new_hash, door, now, today, queued
        )
    mail_queue.deliver_soon(queued)  # after the commit, from a background thread
    return result


def _plausible_user_id(user_id: str) -> bool:
    """Could this be a stored User ID?  (Others are unknown without a query: PostgreSQL refuses
    NUL characters, and no User ID is longer than 64 characters.)"""
    return "\x00" not in user_id and len(user_id.strip()) <= 64


def _decide_login(
    pk: int,
    verified_password_changed_at: datetime | None,
    password_ok: bool,
    new_hash: str | None,
    door: Door,
    now: datetime,
    today: date,
    queued: list[mail_queue.QueuedMail],
) -> LoginResult:
    """The write half of a login, inside one write transaction with the user's row locked.
    A lockout's notices to the Administrators are queued in it and appended to ``queued``."""
    user = _lock_user(pk)
    if user.password_changed_at != verified_password_changed_at:
        return GENERIC  # the password changed meanwhile: this attempt is void (a rehash is not)
    state = user.to_state()
    # R10: with a second factor a right password is not a login yet (the code step decides).
    second_factor = password_ok and _has_second_factor(user.id)
    decision = rules.login_attempt(
        state, password_ok=password_ok, now=now, today=today, second_factor=second_factor
    )
    if not password_ok:
        _wrong_password(user, state, decision, now, today, queued)
        return GENERIC

    let_in = decision.outcome in (rules.Outcome.OK, rules.Outcome.SECOND_FACTOR)
    if let_in and door is Door.CONSOLE and not user.is_administrator:
        record(EventKind.LOGIN_REFUSED, actor=user, subject=user, now=now, reason="console")
        return LoginResult(REFUSED_CONSOLE)

    user.apply(decision.state)
    hidden = decision.outcome is rules.Outcome.BAD_PASSWORD  # a right password, not told why
    _record_decision(decision, user, now, details=HIDDEN_REASON if hidden else None)
    if let_in:
        if new_hash is not None:
            user.password_hash = new_hash  # rehash on parameter change (not a password change)
        return LoginResult(decision.outcome, user)
    if decision.outcome is rules.Outcome.BAD_PASSWORD:
        return GENERIC  # R1 as amended: too many guesses since access was lost
    eligible = rules.may_self_reset(decision.state, is_admin=user.is_administrator)
    return LoginResult(decision.outcome, None, may_self_reset=eligible)


def _has_second_factor(pk: int) -> bool:
    """Does the user have a second factor (R10)?  One indexed EXISTS."""
    return bool(db.session.scalar(select(exists().where(SecondFactor.user_id == pk))))


def _wrong_password(
    user: User,
    before: rules.AccountState,
    decision: rules.Decision,
    now: datetime,
    today: date,
    queued: list[mail_queue.QueuedMail],
) -> None:
    """A wrong password: the decision's events are recorded, and its counts are made by the
    atomic UPDATEs (never written back from Python), so they stay exact under concurrency.

    With access, it counts towards the lockout (R1).  Without access (or due to lose it now:
    the decision's disable is applied first), it counts as a guess without access.
    """
    if before.enabled and rules.due_disable(before, now, today) is None:
        counted = _count_failure(user)
        record(EventKind.LOGIN_FAILED, actor=user, subject=user, now=now)
        if counted is not None and not counted[1]:
            _locked_out(user, now, queued)
        return
    user.apply(replace(decision.state, failures_without_access=before.failures_without_access))
    _record_decision(decision, user, now)
    db.session.flush()
    _count_failure_without_access(user)


def _locked_out(user: User, now: datetime, queued: list[mail_queue.QueuedMail]) -> None:
    """R1 has just disabled ``user`` (in this transaction): audit it and queue the emails (to
    the user, to the organisation's Administrators), so that they exist exactly when the
    lockout does."""
    record(EventKind.LOCKED_OUT, actor=None, subject=user, now=now, reason="lockout")
    metrics.LOCKOUTS.inc()
    queued.extend(lockout_notices.on_lockout(user, now=now))


def _record_decision(
    decision: rules.Decision, user: User, now: datetime, details: str | None = None
) -> None:
    """Login events are the user's own; system disables are the system's."""
    for ev in decision.events:
        by_system = ev.kind in (EventKind.SYSTEM_DISABLED, EventKind.LOCKED_OUT)
        record(
            ev.kind,
            actor=None if by_system else user,
            subject=user,
            now=now,
            reason=ev.reason,
            details=None if by_system else details,
        )


# --- organisations and users ------------------------------------------------------------


def create_organisation(name: str, *, actor: User | None, now: datetime) -> Organisation:
    name = name.strip()
    if not name:
        raise AccountError("Enter the organisation's name")
    if len(name) > NAME_MAX or not key_fits(name, NAME_MAX):
        raise AccountError(ORGANISATION_NAME_TOO_LONG)
    if find_organisation(name) is not None:
        raise AccountError(f"An organisation called {name!r} already exists")
    org = Organisation(name=name, created_at=now)
    db.session.add(org)
    db.session.flush()
    record(
        EventKind.ORGANISATION_CREATED,
        actor=actor,
        subject=None,
        now=now,
        organisation_id=org.id,
        details=name,
    )
    return org


def find_organisation(name: str) -> Organisation | None:
    return db.session.scalar(
        select(Organisation).where(Organisation.name_key == normalise_key(name))
    )


def one_time_password() -> str:
    """A readable random password (20 characters, about 113 bits), to be changed at first login."""
    groups = ("".join(secrets.choice(_OTP_ALPHABET) for _ in range(5)) for _ in range(4))
    return "-".join(groups)


def create_user(
    *,
    user_id: str,
    full_name: str,
    email: str,
    profile: Profile | str,
    organisation: Organisation | None,
    expires_on: date | None,
    actor: User | None,
    now: datetime,
    password: str | None = None,
) -> tuple[User, str]:
    """Create a user with a one-time password (returned, shown once) unless one is given.

    A given password is taken as the user's own (no forced change); a generated one must be
    changed at first login.  An expiry date must be after the day of ``now`` (R3: the rules'
    ``expiry_allowed``), whoever creates the user.
    """
    try:
        profile = Profile(profile)
    except ValueError:
        choices = ", ".join(p.value for p in Profile)
        raise AccountError(
            f"Unknown profile {profile!r}: choose one of {choices}", "profile"
        ) from None
    if (profile in ORGANISATION_PROFILES) != (organisation is not None):
        raise AccountError(
            "Claims Handlers and Administrators belong to an organisation; "
            "Helpdesk and Portal team users do not"
        )
    user_id = user_id.strip()
    _check_user_id(user_id)
    if user_id_taken(user_id):
        raise AccountError(
            f"The User ID {user_id!r} is already taken (User IDs ignore case)", "user_id"
        )
    full_name = valid_full_name(full_name)
    email = valid_email(email)
    if expires_on is not None and not rules.expiry_allowed(expires_on, today=clock.local_date(now)):
        raise AccountError(EXPIRY_NOT_AFTER_TODAY, "expires_on")
    state = rules.new_account(now=now, expires_on=expires_on)
    plain = password or one_time_password()
    user = User(
        user_id=user_id,
        full_name=full_name,
        email=email,
        profile=profile.value,
        organisation_id=organisation.id if organisation else None,
        must_change_password=password is None,
        created_at=now,
    )
    user.apply(state)
    user.set_password(plain)
    db.session.add(user)
    db.session.flush()
    record(EventKind.USER_CREATED, actor=actor, subject=user, now=now, details=profile.value)
    return user, plain


def valid_full_name(full_name: str) -> str:
    """The name trimmed, or AccountError: empty, or too long for its column or its key."""
    full_name = full_name.strip()
    if not full_name:
        raise AccountError("Enter the user's full name", "full_name")
    if len(full_name) > NAME_MAX or not key_fits(full_name, NAME_MAX):
        raise AccountError(FULL_NAME_TOO_LONG, "full_name")
    return full_name


def valid_email(email: str) -> str:
    """The address in its normal form, or AccountError (syntax only: no DNS look-up).

    The length is checked on what is stored: the normal form and its case-folded key.
    """
    try:
        normal = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise AccountError(
            "Enter an email address in the correct format, like name@example.com", "email"
        ) from None
    if len(normal) > EMAIL_MAX or not key_fits(normal, EMAIL_MAX):
        raise AccountError(EMAIL_TOO_LONG, "email")
    return normal


def _check_user_id(user_id: str) -> None:
    if not 3 <= len(user_id) <= USER_ID_MAX or not key_fits(user_id, USER_ID_MAX):
        raise AccountError("A User ID is 3 to 64 characters long", "user_id")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")
    if not set(user_id) <= allowed:
        raise AccountError("A User ID may use only letters, digits and . _ - @", "user_id")


def is_current_password(user: User, text: str) -> bool:
    """Whether ``text`` is the user's password now (a new one must differ from it)."""
    return passwords.verify_password(user.password_hash, text)


def change_password(user: User, *, current: str | None, new: str, now: datetime) -> bool:
    """The user's own change; commits.  Ends every session (R8).

    ``current`` is the current password, checked; a wrong one counts as an invalid password
    (R1), so a stolen session cannot guess the password without limit.  ``None`` only when
    this very login just proved the one-time password that must now be changed (the web layer
    knows: auth/views.py), so it is not asked twice.
    """
    if current is not None and not passwords.verify_password(user.password_hash, current):
        queued: list[mail_queue.QueuedMail] = []
        with write_transaction(db.session):
            user = _lock_user(user.id)
            counted = _count_failure(user)
            record(EventKind.LOGIN_FAILED, actor=user, subject=user, now=now, reason="change")
            if counted is not None and not counted[1]:
                _locked_out(user, now, queued)
        mail_queue.deliver_soon(queued)
        return False
    new_hash = passwords.hash_password(new)
    with write_transaction(db.session):
        user = _lock_user(user.id)
        user.password_hash = new_hash
        user.password_changed_at = now
        user.rotate_session_token()
        user.must_change_password = False
        record(EventKind.PASSWORD_CHANGED, actor=user, subject=user, now=now)
    return True


def log_out(user: User, *, now: datetime) -> None:
    """Logout rotates the session token, so a replayed cookie is worthless (docs/security.md
    SE-02)."""
    user.rotate_session_token()
    record(EventKind.LOGGED_OUT, actor=user, subject=user, now=now)


def organisation_administrators(organisation_id: int, *, now: datetime, today: date) -> list[User]:
    """The organisation's Administrators with access at ``now`` (shown on the Portal home)."""
    return list(
        db.session.scalars(
            select(User)
            .where(
                User.organisation_id == organisation_id,
                states.administrator_with_access(now, today),
            )
            .order_by(User.full_name)
        )
    )


def check_user_id(user_id: str) -> None:
    """AccountError unless ``user_id`` has the shape of a User ID (the CSV import's preview)."""
    _check_user_id(user_id)
