"""A hypothesis state machine over one account (docs/security.md TM-04), driving
``portal.accounts.rules``.

Actions: wrong and right logins, wrong and right second-factor codes, adding a factor and a
factor reset (R10), moving the clock (seconds to 200 days, or exactly to the R2 and R3
boundaries), removal by another Administrator, re-enable, a new expiry date (possibly in the
past, which is refused), a completed self-service reset by an Administrator, and the nightly
sweep.  The machine keeps its own model of the facts the rules must respect: whether access was
*manually* removed, the consecutive-failure count, and the count of wrong passwords tried since
access was lost (R1 as amended).

R1 as amended is checked as "per lock cycle at most 10 attempts get an answer that depends on the
password": an attempt's answer depends on the password when the right and a wrong password would
have got different outcomes from the same state.  A lock cycle starts when the consecutive count
starts from 0 with a password the guesser does not know: at creation, at a successful login, when
access is restored, and when a reset changes the password.  Wrong passwords with such an answer
are the guesses that learn something; at most LOCKOUT_AFTER + GUESSES_WITHOUT_ACCESS of them fit
in a cycle, and once they are used up no attempt, right or wrong, learns anything more.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import rule

from portal.accounts import rules
from portal.accounts.rules import Access
from portal.accounts.rules import AccountState
from portal.accounts.rules import Decision
from portal.accounts.rules import EventKind
from portal.accounts.rules import Outcome
from portal.accounts.rules import Reason
from tests.helpers import LONDON
from tests.helpers import today_at

pytestmark = pytest.mark.slow  # hundreds of long random walks: ~10 s

ONE_US = timedelta(microseconds=1)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def london_midnight(d: date) -> datetime:
    """The UTC instant at which London's date becomes ``d``."""
    return datetime.combine(d, time(0), tzinfo=LONDON).astimezone(UTC)


def _micros(lo: timedelta, hi: timedelta) -> st.SearchStrategy[timedelta]:
    return st.integers(lo // ONE_US, hi // ONE_US).map(lambda n: n * ONE_US)


clock_steps = st.one_of(
    _micros(SECOND, timedelta(hours=1)),
    _micros(SECOND, timedelta(days=200)),
    st.sampled_from([DAY, rules.INACTIVITY, rules.INACTIVITY + SECOND]),
)
boundary_offsets = st.sampled_from([-SECOND, -ONE_US, timedelta(0), ONE_US, SECOND])


class AccountMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = EPOCH
        self.state: AccountState = rules.new_account(now=EPOCH, expires_on=None)
        #: Model: access was removed by another Administrator and not given back since.
        self.removed = False
        #: Model: the consecutive wrong passwords since the last reset of the count.
        self.failures = 0
        #: Model: wrong passwords tried since access was lost (R1 as amended).
        self.without_access = 0
        #: Wrong passwords in this lock cycle whose answer depended on the password.
        self.guesses_answered = 0
        #: Was the state last evaluated (login, sweep, reset, re-enable) at ``self.now``?
        self.evaluated = True
        #: R10 model: the user has a second factor; its profile requires one.
        self.has_factor = False
        self.required = False
        #: R10 model: consecutive wrong codes; a half-login waiting for its code; a full session.
        self.code_failures = 0
        self.pending = False
        self.session = False
        #: R10 model: a factor reset cleared the wrong codes of a code lockout that is still
        #: in force (the reset does not give access back): the reason stays ``lockout``.
        self.codes_cleared_while_locked = False

    @property
    def today(self) -> date:
        return today_at(self.now)

    def apply(self, d: Decision) -> None:
        self.state = d.state

    # ---------------------------------------------------------------------------------------
    # setup

    @initialize(
        start=_micros(timedelta(0), timedelta(days=10 * 365)),
        expires_in_days=st.none() | st.integers(1, 400),
        required=st.booleans(),
    )
    def create(self, start: timedelta, expires_in_days: int | None, required: bool) -> None:
        self.required = required
        self.now = EPOCH + start
        expires_on = None
        if expires_in_days is not None:
            expires_on = self.today + timedelta(days=expires_in_days)
        self.state = rules.new_account(now=self.now, expires_on=expires_on)
        assert rules.has_access(self.state, self.now, self.today)

    # ---------------------------------------------------------------------------------------
    # logins

    @rule(times=st.integers(1, rules.LOCKOUT_AFTER + 1))
    def wrong_login(self, times: int) -> None:
        """One or more wrong passwords in a row (bursts make lockouts common enough)."""
        for _ in range(times):
            self.one_wrong_login()
            self.state_is_valid()

    def answer_depends_on_password(self, s: AccountState) -> bool:
        right = rules.login_attempt(
            s, password_ok=True, now=self.now, today=self.today, second_factor=self.has_factor
        )
        wrong = rules.login_attempt(s, password_ok=False, now=self.now, today=self.today)
        return right.outcome is not wrong.outcome

    def new_lock_cycle(self) -> None:
        self.guesses_answered = 0

    def one_wrong_login(self) -> None:
        before = self.state
        counts = before.enabled and rules.due_disable(before, self.now, self.today) is None
        if self.answer_depends_on_password(before):
            self.guesses_answered += 1
        d = rules.login_attempt(before, password_ok=False, now=self.now, today=self.today)
        assert d.outcome is Outcome.BAD_PASSWORD  # always the generic failure (D-1)
        if counts:
            self.failures += 1
        else:
            self.without_access += 1
        locks = [e for e in d.events if e.kind is EventKind.LOCKED_OUT]
        assert len(locks) == (1 if counts and self.failures == rules.LOCKOUT_AFTER else 0)
        if not before.enabled:  # LK-02: only the count without access moves
            assert d.state == replace(before, failures_without_access=self.without_access)
        self.apply(d)
        self.evaluated = True

    @rule()
    def right_login(self) -> None:
        before = self.state
        had_access = rules.has_access(before, self.now, self.today)
        d = rules.login_attempt(
            before, password_ok=True, now=self.now, today=self.today, second_factor=self.has_factor
        )
        if had_access and self.has_factor:
            # R10: not a login yet; the count of wrong codes stays.
            assert d.outcome is Outcome.SECOND_FACTOR
            assert d.state.last_login == before.last_login
            assert d.state.code_failures == before.code_failures
            self.failures = 0
            self.new_lock_cycle()
            self.pending = True
        elif had_access:
            assert d.outcome is Outcome.OK
            assert d.state.last_login == self.now
            self.failures = 0
            self.new_lock_cycle()
            self.session = rules.may_have_session(
                required=self.required, has_factor=False, passed_factor=False
            )
        elif self.without_access < rules.GUESSES_WITHOUT_ACCESS:
            assert d.outcome is rules.refusal_for(d.state)
            assert d.outcome not in (Outcome.OK, Outcome.BAD_PASSWORD)
            assert not d.state.enabled
        else:  # R1 as amended: the lockout stopped guessing; the right password learns nothing
            assert d.outcome is Outcome.BAD_PASSWORD
            assert not d.state.enabled
        if not before.enabled:
            assert d.state == before
        self.apply(d)
        self.evaluated = True

    # ---------------------------------------------------------------------------------------
    # the second factor (R10)

    @rule()
    def add_factor(self) -> None:
        self.has_factor = True

    @rule(times=st.integers(1, rules.CODE_LOCKOUT_AFTER + 1))
    def wrong_code(self, times: int) -> None:
        """Wrong codes after a right password (bursts make code lockouts common)."""
        for _ in range(times):
            if not self.pending:
                return
            before = self.state
            counts = rules.has_access(before, self.now, self.today)
            d = rules.code_attempt(before, code_ok=False, now=self.now, today=self.today)
            locks = [e for e in d.events if e.kind is EventKind.LOCKED_OUT]
            if counts:
                self.code_failures += 1
                locked = self.code_failures == rules.CODE_LOCKOUT_AFTER
                assert len(locks) == (1 if locked else 0)
                assert d.outcome is (Outcome.CODE_LOCKOUT if locked else Outcome.BAD_CODE)
                assert d.state.failures == before.failures
            else:
                assert locks == []
                assert d.outcome not in (Outcome.OK, Outcome.BAD_CODE, Outcome.CODE_LOCKOUT)
                assert d.state.code_failures == before.code_failures
            if not d.state.enabled:
                self.pending = False
            self.apply(d)
            self.evaluated = True
            self.state_is_valid()

    @rule()
    def right_code(self) -> None:
        if not self.pending:
            return
        before = self.state
        d = rules.code_attempt(before, code_ok=True, now=self.now, today=self.today)
        if rules.has_access(before, self.now, self.today):
            assert d.outcome is Outcome.OK
            assert d.state.code_failures == 0
            assert d.state.last_login == self.now
            self.code_failures = 0
            self.session = rules.may_have_session(
                required=self.required, has_factor=self.has_factor, passed_factor=True
            )
        else:
            assert d.outcome is not Outcome.OK
        self.pending = False
        self.apply(d)
        self.evaluated = True

    @rule()
    def factor_reset(self) -> None:
        """Every factor removed (another Administrator, the two-person rule, break-glass): the
        count of wrong codes starts again, access is not given back, sessions end."""
        before = self.state
        self.state = rules.factor_reset(before)
        assert self.state == replace(before, code_failures=0)
        if before.reason is Reason.LOCKOUT and before.code_failures:
            self.codes_cleared_while_locked = True
        self.has_factor = False
        self.code_failures = 0
        self.pending = False
        self.session = False

    # ---------------------------------------------------------------------------------------
    # the clock

    def move_to(self, instant: datetime) -> None:
        if instant > self.now:
            self.now = instant
            self.evaluated = False

    @rule(step=clock_steps)
    def advance_clock(self, step: timedelta) -> None:
        self.move_to(self.now + step)

    @rule(offset=boundary_offsets)
    def advance_to_inactivity_limit(self, offset: timedelta) -> None:
        self.move_to(rules.last_use(self.state) + rules.INACTIVITY + offset)

    @rule(offset=boundary_offsets)
    def advance_to_expiry_midnight(self, offset: timedelta) -> None:
        if self.state.expires_on is not None:
            self.move_to(london_midnight(self.state.expires_on) + offset)

    # ---------------------------------------------------------------------------------------
    # Administrators, the reset and the nightly job

    @rule()
    def remove_access(self) -> None:
        before = self.state
        d = rules.remove_access(before, actor_is_self=False, is_last_admin=False)
        if rules.access(before) is Access.HAS_ACCESS:
            assert d.outcome is Outcome.OK
            assert rules.access(d.state) is Access.REMOVED
            self.removed = True
        else:
            assert d.outcome is Outcome.NO_CHANGE
            assert d.state == before
        self.apply(d)

    @rule()
    def reenable(self) -> None:
        before = self.state
        d = rules.reenable(before, now=self.now, today=self.today)
        if rules.access(before) is Access.HAS_ACCESS:
            assert d.outcome is Outcome.NO_CHANGE
        elif rules.is_expired(before, self.today):
            assert d.outcome is Outcome.REFUSED_EXPIRED
            assert d.state == before
        else:
            assert d.outcome is Outcome.OK
            assert rules.has_access(d.state, self.now, self.today)
            assert d.state.failures_without_access == 0
            assert d.state.code_failures == 0
            self.code_failures = 0
            self.removed = False
            self.failures = 0
            self.without_access = 0
            self.new_lock_cycle()
            self.evaluated = True
        self.apply(d)

    @rule(offset_days=st.integers(-30, 400))
    def set_expiry(self, offset_days: int) -> None:
        before = self.state
        new_date = self.today + timedelta(days=offset_days)
        d = rules.set_expiry(before, new_date, today=self.today)
        if offset_days <= 0:  # R3: a new date must be after today
            assert d.outcome is Outcome.REFUSED_PAST_DATE
            assert d.state == before
        else:
            assert d.state.expires_on == new_date
            assert d.state.enabled is before.enabled  # a new date never re-enables by itself
        self.apply(d)

    @rule()
    def reset_password(self) -> None:
        before = self.state
        removed_before = rules.access(before) is Access.REMOVED
        assert rules.may_self_reset(before, is_admin=True) is not removed_before
        d = rules.after_password_reset(before, is_admin=True, now=self.now, today=self.today)
        if removed_before:
            assert d.outcome is Outcome.REFUSED_REMOVED
            assert d.state == before
        else:
            assert d.outcome is Outcome.OK
            assert d.state.failures == 0
            self.failures = 0
            self.new_lock_cycle()  # a new password: earlier guesses were at the old one
            if d.state.enabled:
                self.without_access = 0
            if EventKind.ENABLED in {ev.kind for ev in d.events}:
                # R10: only access given back clears the wrong codes; a reset by a user who
                # still has access leaves them (else: four codes, a reset, four more).
                self.code_failures = 0
            if rules.is_expired(before, self.today):
                assert rules.access(d.state) is Access.SYSTEM_DISABLED
                assert d.state.reason is Reason.EXPIRY
            elif before.reason is Reason.EXPIRY:
                # the date was extended but Enabled not checked again: still off (R7)
                assert d.state == replace(before, failures=0)
            else:
                assert rules.has_access(d.state, self.now, self.today)
        self.apply(d)
        self.evaluated = True

    @rule()
    def sweep(self) -> None:
        before = self.state
        due = rules.due_disable(before, self.now, self.today)
        d = rules.sweep(before, now=self.now, today=self.today)
        if due is None:
            assert d.outcome is Outcome.NO_CHANGE
            assert d.state == before
        else:
            assert d.outcome is Outcome.OK
            assert rules.access(d.state) is Access.SYSTEM_DISABLED
            assert d.state.reason is due
        self.apply(d)
        self.evaluated = True

    # ---------------------------------------------------------------------------------------
    # invariants (TM-04)

    @invariant()
    def state_is_valid(self) -> None:
        s = self.state
        assert rules.is_valid(s)
        assert 0 <= s.failures <= rules.LOCKOUT_AFTER
        if s.enabled:
            assert s.failures < rules.LOCKOUT_AFTER
            assert s.active
        assert (s.reason is not None) is (s.active and not s.enabled)

    @invariant()
    def manual_removal_is_modelled(self) -> None:
        # Only another Administrator removes access, and only a re-enable gives it back:
        # in particular a reset never clears a manual removal.
        assert (rules.access(self.state) is Access.REMOVED) is self.removed

    @invariant()
    def failures_are_modelled(self) -> None:
        assert self.state.failures == self.failures
        if self.state.enabled:
            self.codes_cleared_while_locked = False
        if self.state.reason is Reason.LOCKOUT and not self.codes_cleared_while_locked:
            # by passwords (R1) or by codes (R10)
            assert rules.LOCKOUT_AFTER in (self.state.failures, self.state.code_failures)

    @invariant()
    def failures_without_access_are_modelled(self) -> None:
        assert self.state.failures_without_access == self.without_access
        if self.state.enabled:
            assert self.without_access == 0

    @invariant()
    def a_lockout_stops_guessing(self) -> None:
        """R1 as amended: per lock cycle at most 10 attempts get an answer that depends on the
        password; once they are used up, no attempt does until the cycle ends."""
        limit = rules.LOCKOUT_AFTER + rules.GUESSES_WITHOUT_ACCESS
        assert limit == 10
        assert self.guesses_answered <= limit
        if self.guesses_answered == limit:
            assert not self.answer_depends_on_password(self.state)

    @invariant()
    def code_failures_are_modelled_and_lock_at_exactly_5(self) -> None:
        assert self.state.code_failures == self.code_failures
        assert 0 <= self.code_failures <= rules.CODE_LOCKOUT_AFTER
        if self.state.enabled:
            assert self.code_failures < rules.CODE_LOCKOUT_AFTER
        else:
            self.session = False  # R8: every session ends with access

    @invariant()
    def no_session_without_the_factor_for_a_required_profile(self) -> None:
        if self.session and self.required:
            assert self.has_factor

    @invariant()
    def nothing_due_after_evaluation(self) -> None:
        if self.evaluated and self.state.enabled:
            assert rules.due_disable(self.state, self.now, self.today) is None

    @invariant()
    def no_access_without_enabled(self) -> None:
        if not self.state.enabled:
            assert rules.has_access(self.state, self.now, self.today) is False


AccountMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None, database=None
)
TestCase = AccountMachine.TestCase


def test_a_factor_reset_after_a_code_lockout_keeps_the_lockout() -> None:
    """The example hypothesis found: five wrong codes lock, then every factor is reset; the
    count of wrong codes starts again but the account stays locked out (R10, R6)."""
    machine = AccountMachine()
    machine.create(start=timedelta(0), expires_in_days=None, required=False)
    machine.add_factor()
    machine.right_login()
    machine.wrong_code(times=5)
    assert machine.state.reason is Reason.LOCKOUT
    machine.factor_reset()
    assert machine.state.code_failures == 0
    assert not machine.state.enabled
    machine.failures_are_modelled()
    machine.code_failures_are_modelled_and_lock_at_exactly_5()
