"""The account rules R1–R8 of docs/rules.md §2, as pure functions.

Standard library only: no Flask, no SQLAlchemy, no ``portal.*`` imports (a test walks this
module's imports and fails otherwise).  Every function takes a user's state snapshot and the
facts it needs (``now`` as an aware UTC datetime, ``today`` as a date in the portal's time
zone, actor facts as booleans) and returns a :class:`Decision`: the new state, the events to
record (R9's "what"; the service adds who, to whom and when) and an outcome code.  Refusals are
outcomes, never exceptions.  The login, the views, the nightly job and the CLI all call these;
none of them re-implements a rule.  The SQL that must be atomic (the R1 counter, the nightly
sweep) is built from the constants below, and tests check that it agrees with these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from datetime import date
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

#: R1: the fifth consecutive invalid password disables the account.
LOCKOUT_AFTER = 5
#: R1 as amended: once an account is without access, a right password shows the specific
#: reason only while fewer than this many wrong passwords were tried since access was lost;
#: then every attempt gets the generic answer until access is restored.  With the
#: ``LOCKOUT_AFTER`` wrong passwords that locked it, at most ``LOCKOUT_AFTER +
#: GUESSES_WITHOUT_ACCESS`` wrong guesses per lock cycle get an answer that depends on the
#: password.
GUESSES_WITHOUT_ACCESS = 5
#: The count of wrong passwords without access stops here (it only has to reach
#: GUESSES_WITHOUT_ACCESS; the cap keeps an endless attack from overflowing the column).
WITHOUT_ACCESS_COUNT_CAP = 1_000_000_000
#: R1: a locked-out user is told at its stored address at most once in this long.
USER_LOCKOUT_NOTICE_EVERY = timedelta(days=1)
#: R1: each Administrator gets at most one lockout email in this long (later lockouts wait
#: and are listed together in the next one).
ADMIN_LOCKOUT_ALERT_EVERY = timedelta(minutes=15)
#: R10: the fifth consecutive wrong second-factor code locks the account like R1 (its own
#: count, ``users.failed_codes``, which a right password does not reset).
CODE_LOCKOUT_AFTER = 5
#: R2: more than this long since the last use disables the account.
INACTIVITY = timedelta(days=90)


class Reason(StrEnum):
    """Why the *system* unchecked Enabled (stored only while system-disabled)."""

    LOCKOUT = "lockout"
    INACTIVITY = "inactivity"
    EXPIRY = "expiry"


class Access(StrEnum):
    """The three states of docs/rules.md §2."""

    HAS_ACCESS = "has_access"  # Enabled ✔ Active ✔
    SYSTEM_DISABLED = "system_disabled"  # Enabled ✘ Active ✔ (reason set)
    REMOVED = "access_removed"  # Enabled ✘ Active ✘


class EventKind(StrEnum):
    """What happened (R9).  Stored as the audit event's ``kind``."""

    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"  # wrong password
    LOGIN_REFUSED = "login_refused"  # right password, but no access
    LOCKED_OUT = "locked_out"  # R1
    SYSTEM_DISABLED = "system_disabled"  # R2 / R3 (reason says which)
    ACCESS_REMOVED = "access_removed"  # R4 / R5 step 3
    REMOVE_REFUSED = "remove_refused"
    ENABLED = "enabled"  # R6 / R5 step 2 / R7 restore
    ENABLE_REFUSED = "enable_refused"
    PASSWORD_RESET = "password_reset"  # R7 self-service reset completed
    EXPIRY_CHANGED = "expiry_changed"
    EXPIRY_REFUSED = "expiry_refused"
    # Not decided by a rule here, but recorded through the same audit trail:
    USER_CREATED = "user_created"
    ORGANISATION_CREATED = "organisation_created"
    ORGANISATION_ERASED = "organisation_erased"  # `portal org delete` (operator-level)
    PASSWORD_CHANGED = "password_changed"
    LOGGED_OUT = "logged_out"
    # R10: the second factor (decided by the functions at the end of this module).
    PASSWORD_ACCEPTED = "password_accepted"  # right password; the second factor is asked
    CODE_FAILED = "second_factor_failed"  # a wrong second-factor code
    FACTOR_RESET = "second_factor_reset"  # every factor removed (mfarecover's resets)


class Outcome(StrEnum):
    """The result of a decision, mapped to a message and guide entry by ``portal.messages``."""

    OK = "ok"
    NO_CHANGE = "no_change"
    BAD_PASSWORD = "bad_password"  # the generic login failure
    REFUSED_LOCKOUT = "refused_lockout"
    REFUSED_INACTIVITY = "refused_inactivity"
    REFUSED_EXPIRY = "refused_expiry"
    REFUSED_REMOVED = "refused_removed"
    REFUSED_SELF = "refused_self"  # R4: not your own access
    REFUSED_LAST_ADMIN = "refused_last_admin"  # R4: never the last Administrator with access
    REFUSED_EXPIRED = "refused_expired"  # R6: extend the expiry date first
    REFUSED_PAST_DATE = "refused_past_date"  # R3: a new expiry date not after today
    SECOND_FACTOR = "second_factor"  # R10: right password, now the code (not yet let in)
    BAD_CODE = "bad_code"  # R10: a wrong second-factor code
    CODE_LOCKOUT = "code_lockout"  # R10: the fifth wrong code locked the account


_REFUSED_FOR_REASON = {
    Reason.LOCKOUT: Outcome.REFUSED_LOCKOUT,
    Reason.INACTIVITY: Outcome.REFUSED_INACTIVITY,
    Reason.EXPIRY: Outcome.REFUSED_EXPIRY,
}


@dataclass(frozen=True, slots=True)
class AccountState:
    """A snapshot of the account columns the rules read and write."""

    enabled: bool
    active: bool
    reason: Reason | None
    failures: int
    last_login: datetime | None
    access_granted: datetime
    expires_on: date | None
    #: R1 as amended: wrong passwords tried since the account lost access (0 while it has
    #: access; back to 0 whenever access is restored).
    failures_without_access: int = 0
    #: R10: consecutive wrong second-factor codes (a right password does not reset it).
    code_failures: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """One thing to record (R9); the service adds actor, subject and time."""

    kind: EventKind
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    state: AccountState
    events: tuple[Event, ...]
    outcome: Outcome

    @property
    def changed(self) -> bool:
        return self.outcome is Outcome.OK


def new_account(*, now: datetime, expires_on: date | None) -> AccountState:
    """The state of a freshly created user: has access, the inactivity clock starting now."""
    return AccountState(
        enabled=True,
        active=True,
        reason=None,
        failures=0,
        last_login=None,
        access_granted=now,
        expires_on=expires_on,
    )


def access(s: AccountState) -> Access:
    """Which of the three states ``s`` is in."""
    if s.enabled:
        return Access.HAS_ACCESS
    return Access.SYSTEM_DISABLED if s.active else Access.REMOVED


def is_valid(s: AccountState) -> bool:
    """The invariants the database also enforces with CHECK constraints."""
    return (
        (s.active or not s.enabled)
        and ((s.reason is not None) == (s.active and not s.enabled))
        and 0 <= s.failures <= LOCKOUT_AFTER
        and (not s.enabled or s.failures < LOCKOUT_AFTER)
        and 0 <= s.failures_without_access <= WITHOUT_ACCESS_COUNT_CAP
        and (not s.enabled or s.failures_without_access == 0)
        and 0 <= s.code_failures <= CODE_LOCKOUT_AFTER
        and (not s.enabled or s.code_failures < CODE_LOCKOUT_AFTER)
    )


def last_use(s: AccountState) -> datetime:
    """R2: the later of the last successful login and the time access was last granted."""
    if s.last_login is None or s.last_login < s.access_granted:
        return s.access_granted
    return s.last_login


def expiry_reached(expires_on: date | None, today: date) -> bool:
    """R3 for a bare date: ``today`` is on or after ``expires_on`` (None never expires)."""
    return expires_on is not None and today >= expires_on


def is_expired(s: AccountState, today: date) -> bool:
    """R3: on or after the expiry date (a date in the portal's time zone)."""
    return expiry_reached(s.expires_on, today)


def inactivity_cutoff(now: datetime) -> datetime:
    """Last use strictly before this instant means inactive (R2; used by the sweep's SQL)."""
    return now - INACTIVITY


def due_disable(s: AccountState, now: datetime, today: date) -> Reason | None:
    """R2/R3: the reason an *enabled* account must be disabled now, if any.

    Shared by the login and the nightly sweep.  Expiry wins over inactivity because only an
    extension of the date can clear it.
    """
    if not s.enabled:
        return None
    if is_expired(s, today):
        return Reason.EXPIRY
    if last_use(s) < inactivity_cutoff(now):
        return Reason.INACTIVITY
    return None


def has_access(s: AccountState, now: datetime, today: date) -> bool:
    """R8: may this account use a session right now?"""
    return access(s) is Access.HAS_ACCESS and due_disable(s, now, today) is None


def refusal_for(s: AccountState) -> Outcome:
    """The specific refusal shown (after a correct password) for an account without access."""
    if s.reason is not None:
        return _REFUSED_FOR_REASON[s.reason]
    return Outcome.REFUSED_REMOVED


def reveals_reason(s: AccountState) -> bool:
    """R1 as amended: may a right password still show why this account has no access?

    Only while fewer than GUESSES_WITHOUT_ACCESS wrong passwords were tried since it lost
    access; after that every attempt gets the generic answer, so the lockout stops guessing.
    """
    return s.failures_without_access < GUESSES_WITHOUT_ACCESS


def counted_without_access(s: AccountState) -> AccountState:
    """One more wrong password tried while ``s`` is without access (capped; the service runs
    the same as one atomic UPDATE built from these constants)."""
    return replace(
        s, failures_without_access=min(s.failures_without_access + 1, WITHOUT_ACCESS_COUNT_CAP)
    )


def _system_disable(s: AccountState, reason: Reason) -> AccountState:
    return replace(s, enabled=False, active=True, reason=reason)


def _restore(s: AccountState, *, now: datetime) -> AccountState:
    """Access given back (R6 re-enable, R7 reset): Active on, reason and the failure counts
    (R1's two, R10's wrong codes) cleared, the inactivity clock restarted.  Every path that
    restores access comes here."""
    return replace(
        s,
        enabled=True,
        active=True,
        reason=None,
        failures=0,
        failures_without_access=0,
        code_failures=0,
        access_granted=now,
    )


def login_attempt(
    s: AccountState,
    *,
    password_ok: bool,
    now: datetime,
    today: date,
    second_factor: bool = False,
) -> Decision:
    """R1–R3 at login.

    * An account already without access changes nothing but the count of wrong passwords
      tried since it lost access (LK-02: ``failures`` stays, no new lock event).  A right
      password gets the specific reason only while :func:`reveals_reason` holds; otherwise,
      and for every wrong password, the generic answer (docs/security.md D-1, R1 as amended).
    * An enabled account that is due (R2/R3) is disabled first, whatever the password; a
      wrong password then is the first one tried without access.
    * A right password resets the failure count and records the login, unless the user has a
      second factor (``second_factor``): then it is not a login yet (R10, :func:`code_attempt`
      decides), the last login stays, and the count of wrong codes is not reset.
    * A wrong one adds one to the count; the fifth consecutive one disables (``lockout``).
    """
    login_event = Event(EventKind.LOGIN_SUCCEEDED if password_ok else EventKind.LOGIN_FAILED)
    if not s.enabled:
        return _attempt_without_access(s, password_ok=password_ok, events=())

    reason = due_disable(s, now, today)
    if reason is not None:
        return _attempt_without_access(
            _system_disable(s, reason),
            password_ok=password_ok,
            events=(Event(EventKind.SYSTEM_DISABLED, reason),),
        )

    if password_ok and second_factor:
        accepted = Event(EventKind.PASSWORD_ACCEPTED)
        return Decision(replace(s, failures=0), (accepted,), Outcome.SECOND_FACTOR)
    if password_ok:
        return Decision(replace(s, failures=0, last_login=now), (login_event,), Outcome.OK)

    failures = s.failures + 1
    if failures >= LOCKOUT_AFTER:
        locked = replace(_system_disable(s, Reason.LOCKOUT), failures=LOCKOUT_AFTER)
        return Decision(
            locked, (login_event, Event(EventKind.LOCKED_OUT, Reason.LOCKOUT)), Outcome.BAD_PASSWORD
        )
    return Decision(replace(s, failures=failures), (login_event,), Outcome.BAD_PASSWORD)


def _attempt_without_access(
    s: AccountState, *, password_ok: bool, events: tuple[Event, ...]
) -> Decision:
    """A login attempt on an account that is (now) without access: recorded, never let in."""
    if not password_ok:
        failed = Event(EventKind.LOGIN_FAILED, s.reason)
        return Decision(counted_without_access(s), (*events, failed), Outcome.BAD_PASSWORD)
    refused = Event(EventKind.LOGIN_REFUSED, s.reason)
    outcome = refusal_for(s) if reveals_reason(s) else Outcome.BAD_PASSWORD
    return Decision(s, (*events, refused), outcome)


def remove_access(s: AccountState, *, actor_is_self: bool, is_last_admin: bool) -> Decision:
    """R4 (and R5 step 3): uncheck Enabled *and* Active of another user that has access.

    Setting an already unchecked Enabled is no change: a system-disabled user must first be
    re-enabled (R5 step 2) before its access can be removed.
    """
    if access(s) is not Access.HAS_ACCESS:
        return Decision(s, (), Outcome.NO_CHANGE)
    if actor_is_self:
        return Decision(s, (Event(EventKind.REMOVE_REFUSED),), Outcome.REFUSED_SELF)
    if is_last_admin:
        return Decision(s, (Event(EventKind.REMOVE_REFUSED),), Outcome.REFUSED_LAST_ADMIN)
    removed = replace(s, enabled=False, active=False, reason=None)
    return Decision(removed, (Event(EventKind.ACCESS_REMOVED),), Outcome.OK)


def reenable(s: AccountState, *, now: datetime, today: date) -> Decision:
    """R6: check Enabled: Active back on, reason and failures cleared, inactivity clock restarted.

    Refused while the expiry date has been reached.
    """
    if access(s) is Access.HAS_ACCESS:
        return Decision(s, (), Outcome.NO_CHANGE)
    if is_expired(s, today):
        return Decision(
            s, (Event(EventKind.ENABLE_REFUSED, Reason.EXPIRY),), Outcome.REFUSED_EXPIRED
        )
    return Decision(_restore(s, now=now), (Event(EventKind.ENABLED),), Outcome.OK)


def expiry_allowed(new_date: date, *, today: date) -> bool:
    """R3: a new expiry date must be *after* today (a date in the portal's time zone).

    The one rule for every path that sets a date: create, edit, the Console's inline expiry, the
    operator area, the CLI.  Today itself is refused: it would expire the user at once, without
    the R4 question, and would let an organisation's last Administrator expire itself.  (An
    Administrator may still set its own date to tomorrow.)
    """
    return new_date > today


def set_expiry(s: AccountState, new_date: date, *, today: date) -> Decision:
    """Change the expiry date; one not after today is refused (:func:`expiry_allowed`)."""
    if not expiry_allowed(new_date, today=today):
        return Decision(s, (Event(EventKind.EXPIRY_REFUSED),), Outcome.REFUSED_PAST_DATE)
    if new_date == s.expires_on:
        return Decision(s, (), Outcome.NO_CHANGE)
    return Decision(replace(s, expires_on=new_date), (Event(EventKind.EXPIRY_CHANGED),), Outcome.OK)


def sweep(s: AccountState, *, now: datetime, today: date) -> Decision:
    """The nightly job's R2/R3 for one account (the job runs the equivalent set-based SQL)."""
    reason = due_disable(s, now, today)
    if reason is None:
        return Decision(s, (), Outcome.NO_CHANGE)
    return Decision(
        _system_disable(s, reason), (Event(EventKind.SYSTEM_DISABLED, reason),), Outcome.OK
    )


def password_issued(s: AccountState) -> AccountState:
    """R1: a one-time password issued by an Administrator (or the CLI) sets the failure count
    back to 0.  Access itself is not restored: a locked-out user stays disabled, its reason
    kept, until Enabled is ticked again (R6)."""
    return replace(s, failures=0)


def may_self_reset(s: AccountState, *, is_admin: bool) -> bool:
    """R7: Administrators only, and never after their access was manually removed."""
    return is_admin and access(s) is not Access.REMOVED


def after_password_reset(
    s: AccountState, *, is_admin: bool, now: datetime, today: date
) -> Decision:
    """R7: complete a self-service reset.

    The failure count goes to 0.  After ``lockout`` or ``inactivity`` access is restored (and
    the inactivity clock restarted, the count of wrong passwords without access cleared);
    after ``expiry`` the password changes but access stays off until the date is extended
    (and the count without access stays: access was not restored).  Refused (no change at
    all) when :func:`may_self_reset` is false.
    """
    if not may_self_reset(s, is_admin=is_admin):
        return Decision(s, (), Outcome.REFUSED_REMOVED)
    events: list[Event] = []
    due = due_disable(s, now, today)
    if due is not None:
        s = _system_disable(s, due)
        events.append(Event(EventKind.SYSTEM_DISABLED, due))
    events.append(Event(EventKind.PASSWORD_RESET))
    s = replace(s, failures=0)
    if s.reason in (Reason.LOCKOUT, Reason.INACTIVITY):
        if is_expired(s, today):  # the date was reached meanwhile: it now stays off for expiry
            s = _system_disable(s, Reason.EXPIRY)
            events.append(Event(EventKind.SYSTEM_DISABLED, Reason.EXPIRY))
        else:
            s = _restore(s, now=now)
            events.append(Event(EventKind.ENABLED))
    return Decision(s, tuple(events), Outcome.OK)


# --- R10: the second factor ---------------------------------------------------------------


def code_attempt(s: AccountState, *, code_ok: bool, now: datetime, today: date) -> Decision:
    """R10: a second-factor code after a right password.

    * An account that lost access meanwhile (or is due to, R2/R3) is never let in: a refusal,
      and nothing counted.
    * A right code is the login: the count of wrong codes goes to 0, the last login is now.
    * A wrong code adds one to its own count (which a right password never resets); the fifth
      consecutive one disables the account like R1 (reason ``lockout``).  The service runs the
      same as one atomic UPDATE built from ``CODE_LOCKOUT_AFTER``.
    """
    if not s.enabled:
        return Decision(s, (Event(EventKind.LOGIN_REFUSED, s.reason),), refusal_for(s))
    reason = due_disable(s, now, today)
    if reason is not None:
        disabled = _system_disable(s, reason)
        events = (Event(EventKind.SYSTEM_DISABLED, reason), Event(EventKind.LOGIN_REFUSED, reason))
        return Decision(disabled, events, refusal_for(disabled))
    if code_ok:
        ok = replace(s, code_failures=0, last_login=now)
        return Decision(ok, (Event(EventKind.LOGIN_SUCCEEDED),), Outcome.OK)
    failures = s.code_failures + 1
    failed = Event(EventKind.CODE_FAILED)
    if failures >= CODE_LOCKOUT_AFTER:
        locked = replace(_system_disable(s, Reason.LOCKOUT), code_failures=CODE_LOCKOUT_AFTER)
        return Decision(
            locked, (failed, Event(EventKind.LOCKED_OUT, Reason.LOCKOUT)), Outcome.CODE_LOCKOUT
        )
    return Decision(replace(s, code_failures=failures), (failed,), Outcome.BAD_CODE)


def factor_reset(s: AccountState) -> AccountState:
    """R10: every factor of the user was removed (by another Administrator, the Portal team's
    two-person rule or the break-glass command): the count of wrong codes starts again.
    Access itself is not restored (a locked-out user is re-enabled as usual, R6)."""
    return replace(s, code_failures=0)


def may_have_session(*, required: bool, has_factor: bool, passed_factor: bool) -> bool:
    """R10: may a session be fully logged in?  A user with a factor only after passing it; a
    user of a profile that requires one never without (it is sent to enrolment, where the
    session is limited to setting one up)."""
    if has_factor:
        return passed_factor
    return not required
