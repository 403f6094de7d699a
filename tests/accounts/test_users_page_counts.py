"""The users list's count and its remembered statements (portal/accounts/queries.py): the look
past COUNT_LIMIT and the exact count below it agree with the users there are, with and without
a search; statements remembered for one day's question are not reused on the next.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from datetime import timedelta

import pytest
from flask import Flask

from portal import clock
from portal.accounts import management
from portal.accounts import queries
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import make_org
from tests.factories import make_user


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """COUNT_LIMIT of 5, with no statement remembered from the real limit (nor kept after)."""
    monkeypatch.setattr(queries, "COUNT_LIMIT", 5)
    queries._remembered_statements.cache_clear()
    yield 5
    queries._remembered_statements.cache_clear()


def _page(org_id: int, **filters: object) -> queries.UsersPage:
    return queries.users_page(
        org_id,
        queries.UserFilters(**filters),
        now=clock.now(),
        today=clock.today(),
        per_page=2,
    )


def test_count_up_to_the_limit_then_more(app: Flask, small_limit: int) -> None:
    org = make_org()
    make_user(org, user_id="boss", profile=Profile.ADMINISTRATOR)
    for n in range(3):
        make_user(org, user_id=f"handler{n}")
    page = _page(org.id)
    assert (page.total, page.more, page.pages) == (4, False, 2)
    assert [u.user_id for u in page.rows] == ["boss", "handler0"]

    make_user(org, user_id="handler3")  # five: exactly the limit, not more
    page = _page(org.id)
    assert (page.total, page.more) == (5, False)

    make_user(org, user_id="handler4")  # six: more than the limit
    page = _page(org.id)
    assert (page.total, page.more, page.pages) == (5, True, 3)
    # A search counts the same way (at once, up to the limit).
    assert (_page(org.id, q="handler").total, _page(org.id, q="handler").more) == (5, False)
    make_user(org, user_id="handler5")
    assert (_page(org.id, q="handler").total, _page(org.id, q="handler").more) == (5, True)
    assert (_page(org.id, q="handler5").total, _page(org.id, q="handler5").more) == (1, False)


def test_last_page_and_a_page_past_the_end(app: Flask) -> None:
    org = make_org()
    for n in range(5):
        make_user(org, user_id=f"handler{n}")
    assert [u.user_id for u in _page(org.id, page=3).rows] == ["handler4"]
    past = _page(org.id, page=9)  # the last page, not an empty one
    assert (past.page, [u.user_id for u in past.rows]) == (3, ["handler4"])


def test_remembered_statements_follow_the_day(app: Flask) -> None:
    org = make_org()
    make_user(org, user_id="soon", expires_on=clock.today() + timedelta(days=10))
    make_user(org, user_id="later", expires_on=clock.today() + timedelta(days=40))
    today = clock.today()

    def expiring(on: date) -> list[str]:
        page = queries.users_page(
            org.id,
            queries.UserFilters(expiring=30),
            now=clock.now(),
            today=on,
        )
        return [u.user_id for u in page.rows]

    assert expiring(today) == ["soon"]
    # Twenty days on, "later" expires within 30 days and "soon" has expired.
    assert expiring(today + timedelta(days=20)) == ["later"]
    assert expiring(today) == ["soon"]
    # Another organisation asking the same question gets its own answer.
    other = make_org()
    make_user(other, user_id="theirs", expires_on=today + timedelta(days=5))
    assert [
        u.user_id
        for u in queries.users_page(
            other.id, queries.UserFilters(expiring=30), now=clock.now(), today=today
        ).rows
    ] == ["theirs"]


def test_page_details_name_the_latest_disable_and_the_second_factor(app: Flask) -> None:
    org = make_org()
    admin = make_user(org, user_id="boss", profile=Profile.ADMINISTRATOR)
    handler = make_user(org, user_id="handler")
    for enabled in (False, True, False):
        with write_transaction(db.session):
            actor = db.session.get(User, admin.id)
            target = db.session.get(User, handler.id)
            assert actor is not None
            assert target is not None
            management.set_enabled(
                actor, target, enabled=enabled, now=clock.now(), today=clock.today()
            )
    disabled_by, factors = queries.page_details([admin.id, handler.id])
    assert set(disabled_by) == {handler.id}
    assert disabled_by[handler.id].actor == "boss"
    assert disabled_by[handler.id].kind == "access_removed"
    assert factors == frozenset()
    page = _page(org.id)
    assert page.disabled_by.keys() == {handler.id}
