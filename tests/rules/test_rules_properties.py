"""Property tests (hypothesis) of ``portal.accounts.rules``: docs/architecture.md §5,
docs/security.md LK-01/02/07/09.

Each example is a valid account state (one of docs/rules.md §2's three states, ``rules.is_valid``)
with an aware UTC ``now`` near its last use and ``today`` computed from ``now`` in Europe/London.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from portal.accounts import rules
from portal.accounts.rules import Access
from portal.accounts.rules import AccountState
from portal.accounts.rules import Decision
from portal.accounts.rules import EventKind
from portal.accounts.rules import Outcome
from portal.accounts.rules import Reason
from tests.helpers import today_at

SECOND = timedelta(seconds=1)
ONE_US = timedelta(microseconds=1)

#: No example database (nothing written to the tree) and no deadline (timing is not the point);
#: ``max_examples`` comes from the active hypothesis profile (100 by default).
PROPERTY = settings(database=None, deadline=None)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _micros(lo: timedelta, hi: timedelta) -> st.SearchStrategy[timedelta]:
    """Durations in [lo, hi] to the microsecond (cheaper to generate than ``st.timedeltas``)."""
    return st.integers(lo // ONE_US, hi // ONE_US).map(lambda n: n * ONE_US)


#: Aware UTC instants from 2000 to 2060.
instants = _micros(timedelta(0), timedelta(days=60 * 365)).map(lambda d: EPOCH + d)

#: Time since the last use: the R2 boundary itself, and anything up to 200 days.
elapsed_since_use = st.one_of(
    st.sampled_from(
        [
            timedelta(0),
            rules.INACTIVITY - SECOND,
            rules.INACTIVITY - ONE_US,
            rules.INACTIVITY,
            rules.INACTIVITY + ONE_US,
            rules.INACTIVITY + SECOND,
        ]
    ),
    _micros(timedelta(0), timedelta(days=200)),
)

ACCESSES = st.sampled_from(list(Access))


@st.composite
def situations(
    draw: st.DrawFn,
    accesses: st.SearchStrategy[Access] = ACCESSES,
    *,
    nothing_due: bool = False,
) -> tuple[AccountState, datetime, date]:
    """``(state, now, today)``: a valid state and a moment to apply a rule at.

    With ``nothing_due`` the state (if enabled) is neither inactive nor expired at ``now``.
    """
    kind = draw(accesses)
    granted = draw(instants)
    last_login = draw(
        st.none() | _micros(timedelta(days=-300), timedelta(days=300)).map(lambda d: granted + d)
    )
    if kind is Access.HAS_ACCESS:
        enabled, active, reason = True, True, None
        failures = draw(st.integers(0, rules.LOCKOUT_AFTER - 1))
        without_access = 0
    elif kind is Access.SYSTEM_DISABLED:
        enabled, active, reason = False, True, draw(st.sampled_from(list(Reason)))
        failures = draw(st.integers(0, rules.LOCKOUT_AFTER))
        without_access = draw(st.integers(0, 3 * rules.GUESSES_WITHOUT_ACCESS))
    else:
        enabled, active, reason = False, False, None
        failures = draw(st.integers(0, rules.LOCKOUT_AFTER))
        without_access = draw(st.integers(0, 3 * rules.GUESSES_WITHOUT_ACCESS))
    used = granted if last_login is None else max(granted, last_login)
    if nothing_due:
        now = used + draw(_micros(timedelta(0), rules.INACTIVITY))
    else:
        now = used + draw(elapsed_since_use)
    today = today_at(now)
    lowest = 1 if nothing_due else -400
    expires_on = draw(st.none() | st.integers(lowest, 400).map(lambda n: today + timedelta(days=n)))
    s = AccountState(
        enabled=enabled,
        active=active,
        reason=reason,
        failures=failures,
        last_login=last_login,
        access_granted=granted,
        expires_on=expires_on,
        failures_without_access=without_access,
    )
    assert rules.is_valid(s)
    assert rules.access(s) is kind
    return s, now, today


def all_decisions(
    s: AccountState, now: datetime, today: date, new_date: date
) -> Iterator[Decision]:
    """Every public rule applied to ``s``, with every combination of the actor facts."""
    for ok in (True, False):
        yield rules.login_attempt(s, password_ok=ok, now=now, today=today)
    for actor_is_self in (True, False):
        for is_last_admin in (True, False):
            yield rules.remove_access(s, actor_is_self=actor_is_self, is_last_admin=is_last_admin)
    yield rules.reenable(s, now=now, today=today)
    yield rules.set_expiry(s, new_date, today=today)
    yield rules.set_expiry(s, today, today=today)
    yield rules.sweep(s, now=now, today=today)
    for is_admin in (True, False):
        yield rules.after_password_reset(s, is_admin=is_admin, now=now, today=today)


new_dates = st.integers(-30, 400)


@PROPERTY
@given(situations(), new_dates)
def test_every_function_maps_a_valid_state_to_a_valid_state(
    situation: tuple[AccountState, datetime, date], offset: int
) -> None:
    s, now, today = situation
    for d in all_decisions(s, now, today, today + timedelta(days=offset)):
        assert rules.is_valid(d.state), d
        assert 0 <= d.state.failures <= rules.LOCKOUT_AFTER
        assert d.state.active or not d.state.enabled
        assert isinstance(d.outcome, Outcome)


@PROPERTY
@given(situations(), new_dates)
def test_reason_is_set_exactly_when_system_disabled(
    situation: tuple[AccountState, datetime, date], offset: int
) -> None:
    s, now, today = situation
    assert (s.reason is not None) is (rules.access(s) is Access.SYSTEM_DISABLED)
    for d in all_decisions(s, now, today, today + timedelta(days=offset)):
        system_disabled = rules.access(d.state) is Access.SYSTEM_DISABLED
        assert (d.state.reason is not None) is system_disabled, d


@PROPERTY
@given(
    situations(st.just(Access.HAS_ACCESS), nothing_due=True),
    st.lists(st.booleans(), max_size=30),
)
def test_the_fifth_consecutive_failure_and_only_the_fifth_disables(
    situation: tuple[AccountState, datetime, date], attempts: list[bool]
) -> None:
    s, now, today = situation
    consecutive = s.failures
    locked = False
    for password_ok in attempts:
        d = rules.login_attempt(s, password_ok=password_ok, now=now, today=today)
        lock_events = [e for e in d.events if e.kind is EventKind.LOCKED_OUT]
        if locked:
            # LK-02: nothing changes but the count of wrong passwords without access; no
            # second lock event
            extra = 0 if password_ok else 1
            assert d.state == replace(s, failures_without_access=s.failures_without_access + extra)
            assert lock_events == []
        elif password_ok:
            consecutive = 0
            assert d.outcome is Outcome.OK
            assert lock_events == []
        else:
            consecutive += 1
            assert d.outcome is Outcome.BAD_PASSWORD
            locked = consecutive == rules.LOCKOUT_AFTER
            assert d.state.enabled is not locked
            assert len(lock_events) == (1 if locked else 0)
            if locked:
                assert d.state.reason is Reason.LOCKOUT
        s = d.state
        assert s.failures == consecutive
        assert s.enabled is not locked


@PROPERTY
@given(situations(st.just(Access.HAS_ACCESS), nothing_due=True))
def test_a_single_wrong_password_disables_only_at_the_limit(
    situation: tuple[AccountState, datetime, date],
) -> None:
    s, now, today = situation
    d = rules.login_attempt(s, password_ok=False, now=now, today=today)
    assert d.state.enabled is (s.failures + 1 < rules.LOCKOUT_AFTER)
    assert d.state.failures == s.failures + 1


@PROPERTY
@given(situations(st.just(Access.HAS_ACCESS), nothing_due=True))
def test_success_resets_failures(situation: tuple[AccountState, datetime, date]) -> None:
    s, now, today = situation
    d = rules.login_attempt(s, password_ok=True, now=now, today=today)
    assert d.outcome is Outcome.OK
    assert d.state.failures == 0
    assert d.state.last_login == now
    assert rules.last_use(d.state) == now
    assert d.state.enabled is True


@PROPERTY
@given(situations())
def test_a_right_password_logs_in_exactly_when_has_access(
    situation: tuple[AccountState, datetime, date],
) -> None:
    """R8 and the login agree; a successful login always leaves failures at 0."""
    s, now, today = situation
    d = rules.login_attempt(s, password_ok=True, now=now, today=today)
    assert (d.outcome is Outcome.OK) is rules.has_access(s, now, today)
    if d.outcome is Outcome.OK:
        assert d.state.failures == 0
    if not s.enabled:
        assert d.state == s


@PROPERTY
@given(situations(st.sampled_from([Access.SYSTEM_DISABLED, Access.REMOVED])))
def test_reenable_is_refused_exactly_when_today_reaches_expiry(
    situation: tuple[AccountState, datetime, date],
) -> None:
    s, now, today = situation
    d = rules.reenable(s, now=now, today=today)
    expired = s.expires_on is not None and today >= s.expires_on
    assert (d.outcome is Outcome.REFUSED_EXPIRED) is expired
    if expired:
        assert d.state == s
    else:
        assert d.outcome is Outcome.OK
        assert rules.access(d.state) is Access.HAS_ACCESS
        assert d.state.reason is None
        assert d.state.failures == 0
        assert d.state.access_granted == now
        assert rules.has_access(d.state, now, today)


@PROPERTY
@given(situations(st.just(Access.HAS_ACCESS)))
def test_reenable_with_access_changes_nothing(
    situation: tuple[AccountState, datetime, date],
) -> None:
    s, now, today = situation
    d = rules.reenable(s, now=now, today=today)
    assert d.outcome is Outcome.NO_CHANGE
    assert d.state == s


@PROPERTY
@given(
    situations(),
    st.one_of(
        st.sampled_from([timedelta(0), ONE_US, SECOND, rules.INACTIVITY]),
        _micros(timedelta(0), timedelta(days=400)),
    ),
)
def test_due_disable_is_monotonic_in_now(
    situation: tuple[AccountState, datetime, date], delta: timedelta
) -> None:
    s, now, today = situation
    later = now + delta
    later_today = today_at(later)
    assert later_today >= today
    before = rules.due_disable(s, now, today)
    after = rules.due_disable(s, later, later_today)
    if before is not None:
        assert after is not None
    if before is Reason.EXPIRY:
        assert after is Reason.EXPIRY


@PROPERTY
@given(situations(st.just(Access.HAS_ACCESS)))
def test_sweep_and_login_agree(situation: tuple[AccountState, datetime, date]) -> None:
    """LK-07: the nightly job and the login-time check give the same result."""
    s, now, today = situation
    swept = rules.sweep(s, now=now, today=today)
    logged_in = rules.login_attempt(s, password_ok=True, now=now, today=today)
    due = rules.due_disable(s, now, today)
    assert swept.state.reason == logged_in.state.reason == due
    assert swept.state.enabled is logged_in.state.enabled is (due is None)
    again = rules.sweep(swept.state, now=now, today=today)
    assert again.outcome is Outcome.NO_CHANGE  # idempotent
    assert again.state == swept.state


@PROPERTY
@given(situations(), st.booleans())
def test_a_reset_never_clears_a_manual_removal(
    situation: tuple[AccountState, datetime, date], is_admin: bool
) -> None:
    s, now, today = situation
    d = rules.after_password_reset(s, is_admin=is_admin, now=now, today=today)
    if rules.access(s) is Access.REMOVED:
        assert d.state == s
        assert d.outcome is Outcome.REFUSED_REMOVED
    if d.outcome is Outcome.OK:
        assert d.state.failures == 0
        if rules.access(d.state) is Access.HAS_ACCESS:
            assert rules.has_access(d.state, now, today)


@PROPERTY
@given(situations())
def test_has_access_is_false_whenever_not_enabled(
    situation: tuple[AccountState, datetime, date],
) -> None:
    s, now, today = situation
    if not s.enabled or not s.active:
        assert rules.has_access(s, now, today) is False
    if rules.has_access(s, now, today):
        assert rules.due_disable(s, now, today) is None
