"""User search (portal/accounts/search.py): the trigram index answers exactly what a substring
test on the casefolded keys would, on both databases, and follows every change of the keys."""

from __future__ import annotations

from flask import Flask
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal import clock
from portal.accounts import management
from portal.accounts import queries
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import make_org
from tests.factories import make_user

NAMES = {
    "alice.smith": ("Alice Smith", "alice@firm.example"),
    "bob_j": ("Robert Jones", "RJ@Other.example"),
    "zoe.muller": ("Zoë Müller-Straße", "zoe@umlaut.example"),
    "pct_user": ('Percy "Pct" 100%', "percy@firm.example"),
    "obrien": ("Órla O'Brien", "orla@firm.example"),
    "u12": ("Handler 000012", "u12@firm.example"),
    "u120": ("Handler 000120", "u120@firm.example"),
}


def _found(org_id: int, q: str) -> set[str]:
    page = queries.users_page(
        org_id,
        queries.UserFilters(q=q),
        now=clock.now(),
        today=clock.today(),
        per_page=100,
    )
    return {u.user_id for u in page.rows}


def _expected(users: list[User], q: str) -> set[str]:
    needle = q.strip().casefold()
    return {
        u.user_id
        for u in users
        if any(needle in key for key in (u.user_id_key, u.full_name_key, u.email_key))
    }


def _people(app: Flask) -> tuple[int, list[User]]:
    org = make_org()
    users = []
    for uid, (name, email) in NAMES.items():
        user = make_user(org, user_id=uid, email=email)
        with write_transaction(db.session):
            user = db.session.get(User, user.id)
            assert user is not None
            user.full_name = name
        users.append(user)
    return org.id, users


def test_search_matches_pieces_of_each_key(app: Flask) -> None:
    org_id, _ = _people(app)
    assert _found(org_id, "smi") == {"alice.smith"}
    assert _found(org_id, "JONES") == {"bob_j"}
    assert _found(org_id, "rj@other") == {"bob_j"}
    assert _found(org_id, "müller-strasse") == {"zoe.muller"}  # casefold: ß is ss
    assert _found(org_id, "100%") == {"pct_user"}  # LIKE wildcards are literal
    assert _found(org_id, '"pct"') == {"pct_user"}  # FTS quotes are literal
    assert _found(org_id, "o'b") == {"obrien"}
    assert _found(org_id, "ler 000") == {"u12", "u120"}  # across a space
    assert _found(org_id, "u12") == {"u12", "u120"}
    assert _found(org_id, "j") == {"bob_j"}  # short text: a scan, same answer
    assert _found(org_id, "nobody") == set()


def test_search_follows_changes_of_name_and_email(app: Flask) -> None:
    org = make_org()
    admin = make_user(org, user_id="boss", profile=Profile.ADMINISTRATOR)
    user = make_user(org, user_id="carol", email="carol@old.example")
    assert _found(org.id, "old.example") == {"carol"}
    with write_transaction(db.session):
        management.update_details(
            admin,
            user,
            full_name="Carol Newname",
            email="carol@new.example",
            profile=Profile.CLAIMS_HANDLER.value,
            now=clock.now(),
        )
    assert _found(org.id, "old.example") == set()
    assert _found(org.id, "new.example") == {"carol"}
    assert _found(org.id, "newname") == {"carol"}


def test_search_stays_within_the_organisation(app: Flask) -> None:
    org_id, _ = _people(app)
    other = make_org()
    make_user(other, user_id="alice.other", email="alice@else.example")
    assert _found(org_id, "alice") == {"alice.smith"}
    assert _found(other.id, "alice") == {"alice.other"}


def test_search_equals_a_substring_test(app: Flask) -> None:
    org_id, users = _people(app)
    texts = [key for u in users for key in (u.user_id, u.full_name, u.email)]
    pieces = st.sampled_from(texts).flatmap(
        lambda t: st.tuples(st.integers(0, len(t)), st.integers(0, len(t))).map(
            lambda ij: t[min(ij) : max(ij)]
        )
    )
    queries_ = st.one_of(pieces, st.text(alphabet="aeiou lmn.@%_\"'ßü12", max_size=6))

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(queries_)
    def check(q: str) -> None:
        q = "".join(ch for ch in q if ch.isprintable())
        if not q.strip():
            return  # an empty search is no search
        assert _found(org_id, q) == _expected(users, q), q

    check()


def test_the_index_has_every_user(app: Flask) -> None:
    """The trigram structure holds every user (SQLite: the FTS table's rowids)."""
    _people(app)
    if db.session.get_bind().dialect.name != "sqlite":
        return
    from sqlalchemy import text

    indexed = set(db.session.scalars(text("SELECT rowid FROM users_search")))
    assert indexed == set(db.session.scalars(select(User.id)))
