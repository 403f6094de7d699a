"""Table-driven tests of the account rules R1–R8 (docs/rules.md §2), as ``portal.accounts.rules``
has them.

Only the pure module is imported: no Flask, no database.  ``now`` is always an aware UTC datetime
and ``today`` is computed from it in Europe/London (the portal's default zone), the way
``portal.clock`` does, so the R3 rows around the 2026 clock changes test the real boundary.

States are reached *through the rules* (five wrong passwords, a login 90 days + 1 s later, …),
never written by hand, so every starting point is one the product can actually be in.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest

from portal.accounts import rules
from portal.accounts.rules import Access
from portal.accounts.rules import AccountState
from portal.accounts.rules import Decision
from portal.accounts.rules import Event
from portal.accounts.rules import EventKind
from portal.accounts.rules import Outcome
from portal.accounts.rules import Reason
from tests.helpers import today_at

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)

#: A winter Monday; GMT, so London's date is the UTC date.
T0 = datetime(2026, 1, 12, 9, 30, tzinfo=UTC)
#: The expiry date of the account used for the ``expiry`` starting point.
EXPIRES = date(2026, 2, 2)
FAR_FUTURE = date(2030, 12, 31)

DISABLED_KINDS = ["lockout", "inactivity", "expiry", "removed"]
ALL_KINDS = ["has_access", *DISABLED_KINDS]


# --------------------------------------------------------------------------------------------
# helpers


def fresh(*, now: datetime = T0, expires_on: date | None = None) -> AccountState:
    s = rules.new_account(now=now, expires_on=expires_on)
    assert rules.access(s) is Access.HAS_ACCESS
    assert rules.is_valid(s)
    return s


def login(s: AccountState, *, ok: bool, now: datetime) -> Decision:
    return rules.login_attempt(s, password_ok=ok, now=now, today=today_at(now))


def reenable(s: AccountState, *, now: datetime) -> Decision:
    return rules.reenable(s, now=now, today=today_at(now))


def reset(s: AccountState, *, now: datetime, is_admin: bool = True) -> Decision:
    return rules.after_password_reset(s, is_admin=is_admin, now=now, today=today_at(now))


def remove(s: AccountState) -> Decision:
    return rules.remove_access(s, actor_is_self=False, is_last_admin=False)


def sweep(s: AccountState, *, now: datetime) -> Decision:
    return rules.sweep(s, now=now, today=today_at(now))


def kinds(d: Decision) -> list[EventKind]:
    return [e.kind for e in d.events]


def wrong_logins(
    s: AccountState, n: int, *, start: datetime
) -> tuple[AccountState, list[Decision]]:
    decisions = []
    for i in range(n):
        d = login(s, ok=False, now=start + i * MINUTE)
        decisions.append(d)
        s = d.state
    return s, decisions


def reach(kind: str, *, expires_on: date | None = None) -> tuple[AccountState, datetime]:
    """A state of ``kind`` reached through the rules, and the instant it was reached.

    ``expires_on`` applies to every kind but ``expiry`` (which always uses :data:`EXPIRES`).
    """
    if kind == "has_access":
        return fresh(expires_on=expires_on), T0
    if kind == "lockout":
        s, _ = wrong_logins(fresh(expires_on=expires_on), rules.LOCKOUT_AFTER, start=T0)
        now = T0 + rules.LOCKOUT_AFTER * MINUTE
    elif kind == "inactivity":
        now = T0 + rules.INACTIVITY + SECOND
        s = login(fresh(expires_on=expires_on), ok=True, now=now).state
    elif kind == "expiry":
        now = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
        s = login(fresh(expires_on=EXPIRES), ok=True, now=now).state
    elif kind == "removed":
        now = T0 + MINUTE
        s = remove(fresh(expires_on=expires_on)).state
    else:  # pragma: no cover - a typo in a table
        raise AssertionError(kind)
    expected = Access.REMOVED if kind == "removed" else Access.SYSTEM_DISABLED
    assert rules.access(s) is expected
    assert s.reason == (None if kind == "removed" else Reason(kind))
    assert rules.is_valid(s)
    return s, now


def test_reach_builds_the_states_it_names() -> None:
    for kind in ALL_KINDS:
        s, now = reach(kind)
        assert now.tzinfo is UTC
        assert rules.is_valid(s)


# --------------------------------------------------------------------------------------------
# R1 lockout


@pytest.mark.parametrize(
    ("wrong", "enabled", "failures", "reason", "lock_events"),
    [
        (1, True, 1, None, 0),
        (2, True, 2, None, 0),
        (3, True, 3, None, 0),
        (4, True, 4, None, 0),
        (5, False, 5, Reason.LOCKOUT, 1),
        (6, False, 5, Reason.LOCKOUT, 1),
        (15, False, 5, Reason.LOCKOUT, 1),
    ],
)
def test_r1_consecutive_wrong_passwords(
    wrong: int, enabled: bool, failures: int, reason: Reason | None, lock_events: int
) -> None:
    s, decisions = wrong_logins(fresh(), wrong, start=T0)
    assert s.enabled is enabled
    assert s.active is True
    assert s.failures == failures
    assert s.reason == reason
    assert sum(kinds(d).count(EventKind.LOCKED_OUT) for d in decisions) == lock_events
    assert all(d.outcome is Outcome.BAD_PASSWORD for d in decisions)


@pytest.mark.parametrize(
    ("attempt", "events", "enabled_after"),
    [
        (1, (Event(EventKind.LOGIN_FAILED),), True),
        (2, (Event(EventKind.LOGIN_FAILED),), True),
        (3, (Event(EventKind.LOGIN_FAILED),), True),
        (4, (Event(EventKind.LOGIN_FAILED),), True),
        (5, (Event(EventKind.LOGIN_FAILED), Event(EventKind.LOCKED_OUT, Reason.LOCKOUT)), False),
    ],
)
def test_r1_events_of_each_wrong_attempt(
    attempt: int, events: tuple[Event, ...], enabled_after: bool
) -> None:
    s, _ = wrong_logins(fresh(), attempt - 1, start=T0)
    d = login(s, ok=False, now=T0 + attempt * MINUTE)
    assert d.events == events
    assert d.outcome is Outcome.BAD_PASSWORD  # the generic failure, even on the fifth
    assert d.state.enabled is enabled_after
    assert d.state.failures == attempt


@pytest.mark.parametrize(
    ("attempts", "enabled", "failures", "lock_events"),
    [
        # "x" = wrong password, "." = right password
        ("xxxx.", True, 0, 0),
        ("xxxx.xxxx", True, 4, 0),
        ("xxxx.xxxxx", False, 5, 1),
        ("x.x.x.x.x.x.", True, 0, 0),
        ("xx.xx.xx.xx.xx", True, 2, 0),
        (".....xxxxx", False, 5, 1),
        ("xxxxx.", False, 5, 1),
        ("xxxxx.....", False, 5, 1),
        ("xxxxxxxxxx", False, 5, 1),
        ("xxxxx.x.x.x.x.", False, 5, 1),
    ],
)
def test_r1_only_consecutive_failures_count(
    attempts: str, enabled: bool, failures: int, lock_events: int
) -> None:
    s = fresh()
    seen_locks = 0
    for i, ch in enumerate(attempts):
        d = login(s, ok=ch == ".", now=T0 + i * MINUTE)
        seen_locks += kinds(d).count(EventKind.LOCKED_OUT)
        s = d.state
    assert s.enabled is enabled
    assert s.failures == failures
    assert s.reason == (None if enabled else Reason.LOCKOUT)
    assert seen_locks == lock_events


@pytest.mark.parametrize("failures_before", [0, 1, 2, 3, 4])
def test_r1_success_resets_failures(failures_before: int) -> None:
    s, _ = wrong_logins(fresh(), failures_before, start=T0)
    assert s.failures == failures_before
    now = T0 + DAY
    d = login(s, ok=True, now=now)
    assert d.outcome is Outcome.OK
    assert d.events == (Event(EventKind.LOGIN_SUCCEEDED),)
    assert d.state.failures == 0
    assert d.state.last_login == now
    assert d.state.enabled is True


@pytest.mark.parametrize(
    ("kind", "password_ok", "outcome", "event_kind"),
    [
        ("lockout", True, Outcome.REFUSED_LOCKOUT, EventKind.LOGIN_REFUSED),
        ("lockout", False, Outcome.BAD_PASSWORD, EventKind.LOGIN_FAILED),
        ("inactivity", True, Outcome.REFUSED_INACTIVITY, EventKind.LOGIN_REFUSED),
        ("inactivity", False, Outcome.BAD_PASSWORD, EventKind.LOGIN_FAILED),
        ("expiry", True, Outcome.REFUSED_EXPIRY, EventKind.LOGIN_REFUSED),
        ("expiry", False, Outcome.BAD_PASSWORD, EventKind.LOGIN_FAILED),
        ("removed", True, Outcome.REFUSED_REMOVED, EventKind.LOGIN_REFUSED),
        ("removed", False, Outcome.BAD_PASSWORD, EventKind.LOGIN_FAILED),
    ],
)
def test_r1_attempt_on_disabled_account_changes_nothing(
    kind: str, password_ok: bool, outcome: Outcome, event_kind: EventKind
) -> None:
    """LK-02 and D-1: no count but the one without access, no second lock event; the reason
    only after a right password."""
    s, reached = reach(kind)
    d = login(s, ok=password_ok, now=reached + MINUTE)
    assert d.state == replace(s, failures_without_access=0 if password_ok else 1)
    assert d.outcome is outcome
    assert kinds(d) == [event_kind]
    assert not d.changed


def test_r1_lk02_ten_more_attempts_after_lockout() -> None:
    """After the lockout only the count without access moves; a right password shows the
    reason until the fifth wrong one since (R1 as amended), then gets the generic answer."""
    s, decisions = wrong_logins(fresh(), rules.LOCKOUT_AFTER, start=T0)
    locked = s
    wrong = 0
    for i in range(10):
        ok = i % 2 == 1
        d = login(s, ok=ok, now=T0 + (10 + i) * MINUTE)
        decisions.append(d)
        reveals = ok and wrong < rules.GUESSES_WITHOUT_ACCESS
        assert d.outcome is (Outcome.REFUSED_LOCKOUT if reveals else Outcome.BAD_PASSWORD), i
        wrong += not ok
        s = d.state
        assert s == replace(locked, failures_without_access=wrong)
    assert s.failures == rules.LOCKOUT_AFTER
    assert sum(kinds(d).count(EventKind.LOCKED_OUT) for d in decisions) == 1


@pytest.mark.parametrize("kind", DISABLED_KINDS)
@pytest.mark.parametrize("wrong", [0, 4, 5, 6, 50])
def test_r1_a_lockout_stops_guessing(kind: str, wrong: int) -> None:
    """R1 as amended, for every way of being without access: after ``wrong`` wrong passwords
    the right one shows the reason only while fewer than 5; every attempt is still an event."""
    s, reached = reach(kind)
    specific = login(s, ok=True, now=reached + MINUTE).outcome
    assert specific not in (Outcome.OK, Outcome.BAD_PASSWORD)
    for i in range(wrong):
        d = login(s, ok=False, now=reached + (i + 2) * MINUTE)
        assert d.outcome is Outcome.BAD_PASSWORD
        assert kinds(d) == [EventKind.LOGIN_FAILED]
        s = d.state
    assert s.failures_without_access == wrong
    d = login(s, ok=True, now=reached + (wrong + 2) * MINUTE)
    assert d.outcome is (specific if wrong < rules.GUESSES_WITHOUT_ACCESS else Outcome.BAD_PASSWORD)
    assert kinds(d) == [EventKind.LOGIN_REFUSED]  # recorded as refused, whatever the answer
    assert d.state == s


def test_r1_the_count_without_access_is_capped() -> None:
    s, _ = reach("lockout")
    s = replace(s, failures_without_access=rules.WITHOUT_ACCESS_COUNT_CAP)
    assert rules.counted_without_access(s) == s
    assert rules.is_valid(s)


def test_r1_a_due_account_counts_the_wrong_password_that_disables_it() -> None:
    """Enabled but past its expiry date: the wrong password that disables it is the first one
    tried without access (the lockout's failure count is not touched)."""
    s = fresh(expires_on=EXPIRES)
    s = login(s, ok=False, now=T0).state
    d = login(s, ok=False, now=datetime(2026, 2, 2, 9, 0, tzinfo=UTC))
    assert (d.state.reason, d.state.failures, d.state.failures_without_access) == (
        Reason.EXPIRY,
        1,
        1,
    )
    assert kinds(d) == [EventKind.SYSTEM_DISABLED, EventKind.LOGIN_FAILED]


@pytest.mark.parametrize("kind", DISABLED_KINDS)
def test_r1_restoring_access_clears_the_count_without_access(kind: str) -> None:
    """Every path that gives access back starts a new lock cycle: R6 re-enable and, after a
    lockout or inactivity, R7's reset; a reset after expiry restores nothing and keeps it."""
    s, reached = reach(kind)
    for i in range(7):
        s = login(s, ok=False, now=reached + (i + 1) * MINUTE).state
    assert s.failures_without_access == 7
    later = reached + DAY
    if kind == "expiry":
        later_today = today_at(later)
        s = rules.set_expiry(s, later_today + DAY, today=later_today).state
    enabled = reenable(s, now=later)
    assert enabled.outcome is Outcome.OK
    assert (enabled.state.enabled, enabled.state.failures_without_access) == (True, 0)
    if kind != "removed":
        done = reset(s, now=later)
        assert done.outcome is Outcome.OK
        restored = kind in ("lockout", "inactivity")
        assert done.state.enabled is restored
        assert done.state.failures_without_access == (0 if restored else 7)


# --------------------------------------------------------------------------------------------
# R2 inactivity


INACTIVITY_BOUNDARY = [
    pytest.param(timedelta(days=89, hours=23, minutes=59, seconds=59), None, id="89d23h59m59s"),
    pytest.param(timedelta(days=90) - timedelta(microseconds=1), None, id="90d-1us"),
    pytest.param(timedelta(days=90), None, id="exactly-90d"),
    pytest.param(timedelta(days=90, microseconds=1), Reason.INACTIVITY, id="90d+1us"),
    pytest.param(timedelta(days=90, seconds=1), Reason.INACTIVITY, id="90d+1s"),
    pytest.param(timedelta(days=200), Reason.INACTIVITY, id="200d"),
]


def test_r2_inactivity_constant() -> None:
    assert timedelta(days=90) == rules.INACTIVITY
    assert rules.inactivity_cutoff(T0) == T0 - timedelta(days=90)


@pytest.mark.parametrize(("elapsed", "due"), INACTIVITY_BOUNDARY)
def test_r2_due_disable_boundary(elapsed: timedelta, due: Reason | None) -> None:
    s = fresh()
    now = T0 + elapsed
    assert rules.due_disable(s, now, today_at(now)) == due
    assert rules.has_access(s, now, today_at(now)) is (due is None)


@pytest.mark.parametrize("password_ok", [True, False])
@pytest.mark.parametrize(("elapsed", "due"), INACTIVITY_BOUNDARY)
def test_r2_login_boundary(elapsed: timedelta, due: Reason | None, password_ok: bool) -> None:
    s = fresh()
    now = T0 + elapsed
    d = login(s, ok=password_ok, now=now)
    if due is None:
        assert d.state.enabled is True
        assert d.outcome is (Outcome.OK if password_ok else Outcome.BAD_PASSWORD)
        assert EventKind.SYSTEM_DISABLED not in kinds(d)
    else:
        assert d.state.enabled is False
        assert d.state.active is True
        assert d.state.reason is Reason.INACTIVITY
        assert d.outcome is (Outcome.REFUSED_INACTIVITY if password_ok else Outcome.BAD_PASSWORD)
        assert Event(EventKind.SYSTEM_DISABLED, Reason.INACTIVITY) in d.events
        assert kinds(d).count(EventKind.SYSTEM_DISABLED) == 1
        assert d.state.last_login is None  # a refused login is not a use


@pytest.mark.parametrize(("elapsed", "due"), INACTIVITY_BOUNDARY)
def test_r2_sweep_agrees_with_login(elapsed: timedelta, due: Reason | None) -> None:
    """LK-07: the nightly job and the login-time check give the same result."""
    s = fresh()
    now = T0 + elapsed
    swept = sweep(s, now=now)
    logged_in = login(s, ok=True, now=now)
    assert swept.state.enabled is logged_in.state.enabled
    assert swept.state.reason == logged_in.state.reason == due
    if due is None:
        assert swept.outcome is Outcome.NO_CHANGE
        assert swept.events == ()
    else:
        assert swept.outcome is Outcome.OK
        assert swept.events == (Event(EventKind.SYSTEM_DISABLED, Reason.INACTIVITY),)


@pytest.mark.parametrize(
    ("last_login", "access_granted", "expected"),
    [
        pytest.param(None, T0, T0, id="never-logged-in"),
        pytest.param(T0 + 30 * DAY, T0, T0 + 30 * DAY, id="login-after-grant"),
        pytest.param(T0, T0 + 30 * DAY, T0 + 30 * DAY, id="re-granted-after-login"),
        pytest.param(T0, T0, T0, id="same-instant"),
        pytest.param(T0 - SECOND, T0, T0, id="login-one-second-earlier"),
        pytest.param(T0 + SECOND, T0, T0 + SECOND, id="login-one-second-later"),
    ],
)
def test_r2_last_use_is_the_later_of_login_and_grant(
    last_login: datetime | None, access_granted: datetime, expected: datetime
) -> None:
    s = AccountState(
        enabled=True,
        active=True,
        reason=None,
        failures=0,
        last_login=last_login,
        access_granted=access_granted,
        expires_on=None,
    )
    assert rules.last_use(s) == expected
    at_limit = expected + rules.INACTIVITY
    assert rules.due_disable(s, at_limit, today_at(at_limit)) is None
    past_limit = at_limit + SECOND
    assert rules.due_disable(s, past_limit, today_at(past_limit)) is Reason.INACTIVITY


def test_r2_a_successful_login_restarts_the_clock() -> None:
    s = fresh()
    later = T0 + 60 * DAY
    s = login(s, ok=True, now=later).state
    assert rules.last_use(s) == later
    assert login(s, ok=True, now=later + rules.INACTIVITY).outcome is Outcome.OK
    d = login(s, ok=True, now=later + rules.INACTIVITY + SECOND)
    assert d.outcome is Outcome.REFUSED_INACTIVITY


def test_r2_a_failed_login_does_not_restart_the_clock() -> None:
    s = fresh()
    s = login(s, ok=False, now=T0 + 60 * DAY).state
    assert s.enabled is True
    assert rules.last_use(s) == T0
    assert login(s, ok=True, now=T0 + rules.INACTIVITY + SECOND).outcome is (
        Outcome.REFUSED_INACTIVITY
    )


# --------------------------------------------------------------------------------------------
# R3 expiry (a date in Europe/London)

# UK clocks change on 2026-03-29 at 01:00 UTC (GMT → BST, UTC+1) and on 2026-10-25 at 01:00 UTC
# (BST → GMT).  So in late March the evening *before* the change is still GMT, while on the
# evening of 24 October London is an hour ahead of UTC and reaches the 25th at 23:00 UTC.
EXPIRY_AROUND_CLOCK_CHANGES = [
    # (expires_on, now in UTC, the London date at now, expired?)
    ("2026-03-29", "2026-03-28T23:30:00", "2026-03-28", False),  # GMT: still the 28th in London
    ("2026-03-29", "2026-03-28T23:59:59", "2026-03-28", False),
    ("2026-03-29", "2026-03-29T00:00:00", "2026-03-29", True),
    ("2026-03-29", "2026-03-29T00:59:59", "2026-03-29", True),  # the last GMT second
    ("2026-03-29", "2026-03-29T01:00:00", "2026-03-29", True),  # 02:00 BST
    ("2026-03-30", "2026-03-29T22:59:59", "2026-03-29", False),  # 23:59:59 BST
    ("2026-03-30", "2026-03-29T23:00:00", "2026-03-30", True),  # 00:00 BST, UTC still the 29th
    ("2026-10-25", "2026-10-24T22:59:59", "2026-10-24", False),  # 23:59:59 BST
    ("2026-10-25", "2026-10-24T23:00:00", "2026-10-25", True),  # 00:00 BST, UTC still the 24th
    ("2026-10-25", "2026-10-24T23:30:00", "2026-10-25", True),  # 00:30 BST
    ("2026-10-25", "2026-10-25T01:30:00", "2026-10-25", True),  # 01:30 GMT (the repeated hour)
    ("2026-10-26", "2026-10-25T23:59:59", "2026-10-25", False),  # GMT again
    ("2026-10-26", "2026-10-26T00:00:00", "2026-10-26", True),
]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_on", "now_text", "london_date", "expired"), EXPIRY_AROUND_CLOCK_CHANGES
)
def test_r3_table_uses_london_dates(
    expires_on: str, now_text: str, london_date: str, expired: bool
) -> None:
    """Guards the table itself: the third column really is the London date."""
    assert today_at(_utc(now_text)) == date.fromisoformat(london_date)
    assert (date.fromisoformat(london_date) >= date.fromisoformat(expires_on)) is expired


def test_r3_london_date_differs_from_utc_date_late_in_october() -> None:
    now = _utc("2026-10-24T23:30")
    assert now.date() == date(2026, 10, 24)
    assert today_at(now) == date(2026, 10, 25)


@pytest.mark.parametrize(
    ("expires_on", "now_text", "london_date", "expired"), EXPIRY_AROUND_CLOCK_CHANGES
)
def test_r3_expiry_around_clock_changes(
    expires_on: str, now_text: str, london_date: str, expired: bool
) -> None:
    now = _utc(now_text)
    s = fresh(now=now - DAY, expires_on=date.fromisoformat(expires_on))
    today = today_at(now)
    assert rules.is_expired(s, today) is expired
    assert rules.due_disable(s, now, today) == (Reason.EXPIRY if expired else None)
    assert rules.has_access(s, now, today) is not expired

    d = login(s, ok=True, now=now)
    if expired:
        assert d.outcome is Outcome.REFUSED_EXPIRY
        assert d.state.reason is Reason.EXPIRY
        assert d.state.enabled is False
        assert d.events[0] == Event(EventKind.SYSTEM_DISABLED, Reason.EXPIRY)
    else:
        assert d.outcome is Outcome.OK
        assert d.state.enabled is True

    swept = sweep(s, now=now)
    assert swept.state.enabled is not expired
    assert swept.state.reason == (Reason.EXPIRY if expired else None)


@pytest.mark.parametrize(
    ("offset_days", "expired"),
    [(-400, False), (-1, False), (0, True), (1, True), (400, True)],
)
@pytest.mark.parametrize("expires_on", [date(2026, 3, 29), date(2026, 10, 25), date(2028, 2, 29)])
def test_r3_today_equal_to_expiry_is_expired(
    expires_on: date, offset_days: int, expired: bool
) -> None:
    s = fresh(expires_on=expires_on)
    today = expires_on + timedelta(days=offset_days)
    assert rules.is_expired(s, today) is expired


def test_r3_no_expiry_date_never_expires() -> None:
    s = fresh(expires_on=None)
    assert rules.is_expired(s, date(9999, 12, 31)) is False


@pytest.mark.parametrize("password_ok", [True, False])
def test_r3_wrong_password_at_expiry_still_disables_with_generic_outcome(
    password_ok: bool,
) -> None:
    now = _utc("2026-10-24T23:30")
    s, _ = wrong_logins(fresh(now=now - DAY, expires_on=date(2026, 10, 25)), 2, start=now - DAY)
    d = login(s, ok=password_ok, now=now)
    assert d.state.enabled is False
    assert d.state.reason is Reason.EXPIRY
    assert d.outcome is (Outcome.REFUSED_EXPIRY if password_ok else Outcome.BAD_PASSWORD)
    assert EventKind.LOCKED_OUT not in kinds(d)


def test_r3_expiry_wins_over_inactivity() -> None:
    s = fresh(expires_on=date(2026, 3, 1))
    now = T0 + 200 * DAY
    assert rules.due_disable(s, now, today_at(now)) is Reason.EXPIRY


# --------------------------------------------------------------------------------------------
# R4 manual removal


@pytest.mark.parametrize("failures_before", [0, 3])
def test_r4_removal_unchecks_both_flags(failures_before: int) -> None:
    s, _ = wrong_logins(fresh(), failures_before, start=T0)
    d = rules.remove_access(s, actor_is_self=False, is_last_admin=False)
    assert d.outcome is Outcome.OK
    assert d.changed
    assert d.state.enabled is False
    assert d.state.active is False
    assert d.state.reason is None
    assert rules.access(d.state) is Access.REMOVED
    assert d.events == (Event(EventKind.ACCESS_REMOVED),)
    assert rules.is_valid(d.state)


@pytest.mark.parametrize(
    ("actor_is_self", "is_last_admin", "outcomes"),
    [
        (True, False, {Outcome.REFUSED_SELF}),
        (False, True, {Outcome.REFUSED_LAST_ADMIN}),
        (True, True, {Outcome.REFUSED_SELF, Outcome.REFUSED_LAST_ADMIN}),
    ],
)
def test_r4_refusals(actor_is_self: bool, is_last_admin: bool, outcomes: set[Outcome]) -> None:
    s = fresh()
    d = rules.remove_access(s, actor_is_self=actor_is_self, is_last_admin=is_last_admin)
    assert d.outcome in outcomes
    assert d.state == s
    assert kinds(d) == [EventKind.REMOVE_REFUSED]
    assert not d.changed


@pytest.mark.parametrize(("actor_is_self", "is_last_admin"), [(False, False), (True, True)])
@pytest.mark.parametrize("kind", DISABLED_KINDS)
def test_r4_no_change_when_not_has_access(
    kind: str, actor_is_self: bool, is_last_admin: bool
) -> None:
    s, _ = reach(kind)
    d = rules.remove_access(s, actor_is_self=actor_is_self, is_last_admin=is_last_admin)
    assert d.outcome is Outcome.NO_CHANGE
    assert d.state == s
    assert d.events == ()


# --------------------------------------------------------------------------------------------
# R5 removing Active from a system-disabled user: the three steps


@pytest.mark.parametrize("reason", list(Reason))
def test_r5_three_steps(reason: Reason) -> None:
    s, now = reach(reason.value)
    # 1: the system unchecked Enabled; unchecking it again changes nothing.
    assert rules.access(s) is Access.SYSTEM_DISABLED
    assert remove(s).outcome is Outcome.NO_CHANGE
    if reason is Reason.EXPIRY:
        assert reenable(s, now=now).outcome is Outcome.REFUSED_EXPIRED
        s = rules.set_expiry(s, FAR_FUTURE, today=today_at(now)).state
    # 2: the Administrator checks Enabled: access returns.
    step2 = reenable(s, now=now + MINUTE)
    assert step2.outcome is Outcome.OK
    assert rules.access(step2.state) is Access.HAS_ACCESS
    assert rules.has_access(step2.state, now + MINUTE, today_at(now + MINUTE))
    # 3: … and unchecks it again (confirmed): both flags unchecked.
    step3 = remove(step2.state)
    assert step3.outcome is Outcome.OK
    assert rules.access(step3.state) is Access.REMOVED
    assert step3.state.enabled is False
    assert step3.state.active is False
    assert step3.state.reason is None


# --------------------------------------------------------------------------------------------
# R6 re-enabling


@pytest.mark.parametrize("kind", DISABLED_KINDS)
def test_r6_reenable_clears_reason_and_failures_and_restarts_clock(kind: str) -> None:
    s, reached = reach(kind)
    if kind == "expiry":
        s = rules.set_expiry(s, FAR_FUTURE, today=today_at(reached)).state
    now = reached + DAY
    d = reenable(s, now=now)
    assert d.outcome is Outcome.OK
    assert d.events == (Event(EventKind.ENABLED),)
    assert d.state.enabled is True
    assert d.state.active is True
    assert d.state.reason is None
    assert d.state.failures == 0
    assert d.state.access_granted == now
    assert rules.last_use(d.state) == now
    assert rules.has_access(d.state, now, today_at(now))


@pytest.mark.parametrize("kind", DISABLED_KINDS)
def test_r6_one_wrong_password_after_reenable_does_not_lock(kind: str) -> None:
    """LK-09: re-enabling clears the cause, so the next attempt does not lock again."""
    s, reached = reach(kind)
    if kind == "expiry":
        s = rules.set_expiry(s, FAR_FUTURE, today=today_at(reached)).state
    now = reached + DAY
    s = reenable(s, now=now).state
    d = login(s, ok=False, now=now + MINUTE)
    assert d.state.enabled is True
    assert d.state.failures == 1
    assert d.outcome is Outcome.BAD_PASSWORD


def test_r6_reenabled_locked_user_gets_five_fresh_attempts() -> None:
    s, reached = reach("lockout")
    s = reenable(s, now=reached).state
    s, _ = wrong_logins(s, 4, start=reached + MINUTE)
    assert s.enabled is True
    assert s.failures == 4
    d = login(s, ok=False, now=reached + DAY)
    assert d.state.reason is Reason.LOCKOUT
    assert EventKind.LOCKED_OUT in kinds(d)


def test_r6_reenable_restarts_the_inactivity_clock() -> None:
    s, reached = reach("inactivity")
    granted = reached + DAY
    s = reenable(s, now=granted).state
    assert login(s, ok=True, now=granted + SECOND).outcome is Outcome.OK
    assert login(s, ok=True, now=granted + rules.INACTIVITY).outcome is Outcome.OK
    late = login(s, ok=True, now=granted + rules.INACTIVITY + SECOND)
    assert late.outcome is Outcome.REFUSED_INACTIVITY


@pytest.mark.parametrize(
    ("expiry_offset_days", "refused"),
    [
        pytest.param(-30, True, id="expired-a-month-ago"),
        pytest.param(-1, True, id="expired-yesterday"),
        pytest.param(0, True, id="expires-today"),
        pytest.param(1, False, id="expires-tomorrow"),
        pytest.param(30, False, id="expires-next-month"),
        pytest.param(None, False, id="no-expiry"),
    ],
)
@pytest.mark.parametrize("kind", DISABLED_KINDS)
def test_r6_reenable_refused_exactly_while_expiry_reached(
    kind: str, expiry_offset_days: int | None, refused: bool
) -> None:
    s, reached = reach(kind)
    now = reached + DAY
    today = today_at(now)
    expires_on = None if expiry_offset_days is None else today + timedelta(days=expiry_offset_days)
    s = replace(s, expires_on=expires_on)
    d = reenable(s, now=now)
    if refused:
        assert d.outcome is Outcome.REFUSED_EXPIRED
        assert d.state == s
        assert d.events == (Event(EventKind.ENABLE_REFUSED, Reason.EXPIRY),)
    else:
        assert d.outcome is Outcome.OK
        assert rules.access(d.state) is Access.HAS_ACCESS


def test_r6_reenable_refused_at_london_midnight_before_utc_midnight() -> None:
    s, _ = reach("lockout", expires_on=date(2026, 10, 25))
    assert reenable(s, now=_utc("2026-10-24T22:59:59")).outcome is Outcome.OK
    assert reenable(s, now=_utc("2026-10-24T23:00")).outcome is Outcome.REFUSED_EXPIRED


def test_r6_reenable_with_access_is_no_change() -> None:
    s = fresh()
    d = reenable(s, now=T0 + DAY)
    assert d.outcome is Outcome.NO_CHANGE
    assert d.state == s
    assert d.events == ()


# --------------------------------------------------------------------------------------------
# R7 self-service password reset


@pytest.mark.parametrize(
    ("kind", "is_admin", "allowed"),
    [
        ("has_access", True, True),
        ("lockout", True, True),
        ("inactivity", True, True),
        ("expiry", True, True),
        ("removed", True, False),
        ("has_access", False, False),
        ("lockout", False, False),
        ("inactivity", False, False),
        ("expiry", False, False),
        ("removed", False, False),
    ],
)
def test_r7_may_self_reset(kind: str, is_admin: bool, allowed: bool) -> None:
    s, _ = reach(kind)
    assert rules.may_self_reset(s, is_admin=is_admin) is allowed


@pytest.mark.parametrize("kind", ["lockout", "inactivity"])
def test_r7_reset_restores_after_lockout_or_inactivity(kind: str) -> None:
    s, reached = reach(kind)
    now = reached + DAY
    d = reset(s, now=now)
    assert d.outcome is Outcome.OK
    assert rules.access(d.state) is Access.HAS_ACCESS
    assert d.state.reason is None
    assert d.state.failures == 0
    assert d.state.access_granted == now
    assert kinds(d) == [EventKind.PASSWORD_RESET, EventKind.ENABLED]
    assert rules.has_access(d.state, now, today_at(now))
    # RS-03 / LK-09: the cause is cleared, so one wrong password does not lock again …
    after = login(d.state, ok=False, now=now + MINUTE)
    assert after.state.enabled is True
    assert after.state.failures == 1
    # … and the inactivity clock restarted.
    assert login(d.state, ok=True, now=now + rules.INACTIVITY).outcome is Outcome.OK


def test_r7_reset_after_expiry_changes_password_but_access_stays_off() -> None:
    s, reached = reach("expiry")
    now = reached + DAY
    d = reset(s, now=now)
    assert d.outcome is Outcome.OK
    assert kinds(d) == [EventKind.PASSWORD_RESET]
    assert rules.access(d.state) is Access.SYSTEM_DISABLED
    assert d.state.reason is Reason.EXPIRY
    assert d.state.failures == 0
    assert not rules.has_access(d.state, now, today_at(now))
    # Access returns only once the date is extended and Enabled is checked again.
    assert reenable(d.state, now=now).outcome is Outcome.REFUSED_EXPIRED
    extended = rules.set_expiry(d.state, FAR_FUTURE, today=today_at(now)).state
    assert reenable(extended, now=now).outcome is Outcome.OK


@pytest.mark.parametrize("is_admin", [True, False])
def test_r7_reset_refused_after_manual_removal(is_admin: bool) -> None:
    s, reached = reach("removed")
    d = reset(s, now=reached + DAY, is_admin=is_admin)
    assert d.outcome is Outcome.REFUSED_REMOVED
    assert d.state == s
    assert d.events == ()


@pytest.mark.parametrize("kind", ["has_access", "lockout", "inactivity", "expiry"])
def test_r7_reset_is_for_administrators_only(kind: str) -> None:
    s, reached = reach(kind)
    d = reset(s, now=reached + DAY, is_admin=False)
    assert d.outcome is not Outcome.OK
    assert d.state == s
    assert d.events == ()


@pytest.mark.parametrize(
    ("kind", "now_text", "restored"),
    [
        pytest.param("lockout", "2026-10-24T22:59:59", True, id="lockout-day-before"),
        pytest.param("lockout", "2026-10-24T23:00", False, id="lockout-expiry-reached"),
        pytest.param("inactivity", "2026-10-24T22:59:59", True, id="inactive-day-before"),
        pytest.param("inactivity", "2026-10-24T23:30", False, id="inactive-expiry-reached"),
    ],
)
def test_r7_reset_when_expiry_reached_meanwhile(kind: str, now_text: str, restored: bool) -> None:
    """A locked (or inactive) Administrator whose expiry date arrived before the reset."""
    s, _ = reach(kind, expires_on=date(2026, 10, 25))
    now = _utc(now_text)
    d = reset(s, now=now)
    assert d.outcome is Outcome.OK
    assert d.state.failures == 0
    assert EventKind.PASSWORD_RESET in kinds(d)
    if restored:
        assert rules.access(d.state) is Access.HAS_ACCESS
        assert EventKind.ENABLED in kinds(d)
    else:
        assert rules.access(d.state) is Access.SYSTEM_DISABLED
        assert d.state.reason is Reason.EXPIRY
        assert EventKind.ENABLED not in kinds(d)
        assert Event(EventKind.SYSTEM_DISABLED, Reason.EXPIRY) in d.events
        assert not rules.has_access(d.state, now, today_at(now))


@pytest.mark.parametrize(
    ("elapsed", "expires_on", "access_after", "reason_after"),
    [
        pytest.param(DAY, None, Access.HAS_ACCESS, None, id="nothing-due"),
        pytest.param(91 * DAY, None, Access.HAS_ACCESS, None, id="inactivity-due-restored"),
        pytest.param(DAY, T0.date() + DAY, Access.SYSTEM_DISABLED, Reason.EXPIRY, id="expiry-due"),
    ],
)
def test_r7_reset_by_an_admin_who_still_has_access(
    elapsed: timedelta, expires_on: date | None, access_after: Access, reason_after: Reason | None
) -> None:
    s, _ = wrong_logins(fresh(expires_on=expires_on), 3, start=T0)
    now = T0 + elapsed
    d = reset(s, now=now)
    assert d.outcome is Outcome.OK
    assert d.state.failures == 0
    assert rules.access(d.state) is access_after
    assert d.state.reason == reason_after


# --------------------------------------------------------------------------------------------
# R8 sessions follow the flags


@pytest.mark.parametrize(
    ("kind", "expires_on", "now", "expected"),
    [
        pytest.param("has_access", None, T0, True, id="fresh"),
        pytest.param("has_access", None, T0 + rules.INACTIVITY, True, id="exactly-90d"),
        pytest.param("has_access", None, T0 + rules.INACTIVITY + SECOND, False, id="inactive"),
        pytest.param("has_access", T0.date() + DAY, T0, True, id="expires-tomorrow"),
        pytest.param("has_access", T0.date(), T0, False, id="expires-today"),
        pytest.param("has_access", T0.date() - DAY, T0, False, id="expired-yesterday"),
        pytest.param(
            "has_access", date(2026, 10, 25), _utc("2026-10-24T23:00"), False, id="london-midnight"
        ),
        pytest.param("lockout", None, T0 + DAY, False, id="locked"),
        pytest.param("inactivity", None, T0 + 91 * DAY, False, id="inactivity-disabled"),
        pytest.param("expiry", None, datetime(2026, 2, 3, tzinfo=UTC), False, id="expired"),
        pytest.param("removed", None, T0 + DAY, False, id="removed"),
    ],
)
def test_r8_has_access(kind: str, expires_on: date | None, now: datetime, expected: bool) -> None:
    s, _ = reach(kind, expires_on=expires_on)
    assert rules.has_access(s, now, today_at(now)) is expected


def test_r8_has_access_with_failures_below_the_limit() -> None:
    s, _ = wrong_logins(fresh(), rules.LOCKOUT_AFTER - 1, start=T0)
    assert rules.has_access(s, T0 + DAY, today_at(T0 + DAY))


# --------------------------------------------------------------------------------------------
# expiry changes (used by R3/R6)


@pytest.mark.parametrize(
    ("offset_days", "outcome", "event_kinds"),
    [
        (-1, Outcome.REFUSED_PAST_DATE, [EventKind.EXPIRY_REFUSED]),
        (0, Outcome.REFUSED_PAST_DATE, [EventKind.EXPIRY_REFUSED]),  # R3: after today
        (1, Outcome.OK, [EventKind.EXPIRY_CHANGED]),
        (365, Outcome.OK, [EventKind.EXPIRY_CHANGED]),
    ],
)
def test_set_expiry(offset_days: int, outcome: Outcome, event_kinds: list[EventKind]) -> None:
    s = fresh(expires_on=FAR_FUTURE)
    today = today_at(T0)
    new_date = today + timedelta(days=offset_days)
    d = rules.set_expiry(s, new_date, today=today)
    assert d.outcome is outcome
    assert kinds(d) == event_kinds
    assert d.state.expires_on == (new_date if outcome is Outcome.OK else FAR_FUTURE)


def test_set_expiry_to_the_same_date_is_no_change() -> None:
    s = fresh(expires_on=FAR_FUTURE)
    d = rules.set_expiry(s, FAR_FUTURE, today=today_at(T0))
    assert d.outcome is Outcome.NO_CHANGE
    assert d.events == ()


@pytest.mark.parametrize(("offset_days", "allowed"), [(-1, False), (0, False), (1, True)])
def test_a_new_expiry_date_must_be_after_today(offset_days: int, allowed: bool) -> None:
    """R3 as amended: one rule for every path (today would expire the user at once)."""
    today = today_at(T0)
    assert rules.expiry_allowed(today + timedelta(days=offset_days), today=today) is allowed
