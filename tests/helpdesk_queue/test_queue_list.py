"""The queue page: who may see it, filters, search, newest first, pagination."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal import clock
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.helpdesk.models import RequestKind
from portal.helpdesk.models import reference
from portal.helpdesk.queue_queries import PER_PAGE
from tests.helpdesk_factories import make_request
from tests.helpdesk_queue.conftest import sign_in_as

HX = {"HX-Request": "true", "HX-Target": "queue-results"}
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def refs(response: TestResponse) -> list[str]:
    """The references listed, in order."""
    assert response.status_code == 200
    return re.findall(
        r'<th scope="row" class="ref"><a href="[^"]+">(HD-\d+)</a>',
        response.get_data(as_text=True),
    )


@pytest.mark.parametrize("profile", [Profile.HELPDESK, Profile.PORTAL_TEAM])
def test_staff_see_the_queue_and_the_nav_link(client: FlaskClient, profile: Profile) -> None:
    sign_in_as(client, profile)
    req = make_request()
    response = client.get("/helpdesk/requests")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Helpdesk queue" in body
    assert 'href="/helpdesk/requests"' in body  # the nav link
    assert refs(response) == [req.reference]


@pytest.mark.parametrize("profile", [Profile.CLAIMS_HANDLER, Profile.ADMINISTRATOR])
def test_every_other_profile_gets_403(client: FlaskClient, profile: Profile) -> None:
    sign_in_as(client, profile)
    req = make_request(screenshot=b"x")
    for path in (
        "/helpdesk/requests",
        f"/helpdesk/requests/{req.id}",
        f"/helpdesk/requests/{req.id}/timeline",
        f"/helpdesk/requests/{req.id}/screenshot",
    ):
        assert client.get(path).status_code == 403, path
    for action in ("status", "notes", "refer", "guide-reply", "send-user-id"):
        response = client.post(f"/helpdesk/requests/{req.id}/{action}", data={"status": "new"})
        assert response.status_code == 403, action
    home = client.get("/portal/").get_data(as_text=True)
    assert "Helpdesk queue" not in home


def test_anonymous_is_sent_to_log_in(client: FlaskClient) -> None:
    req = make_request()
    for path in ("/helpdesk/requests", f"/helpdesk/requests/{req.id}"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_newest_first(client: FlaskClient, staff: User) -> None:
    """Newest first: references are issued in order of arrival."""
    older = make_request(created_at=T0)
    middle = make_request(created_at=T0 + timedelta(days=1))
    newest = make_request(created_at=T0 + timedelta(days=2))
    assert refs(client.get("/helpdesk/requests")) == [
        newest.reference,
        middle.reference,
        older.reference,
    ]
    # The same order under a filter and under a search (each answered by its own index).
    assert refs(client.get("/helpdesk/requests?status=new")) == refs(
        client.get("/helpdesk/requests?q=sender")
    )
    assert refs(client.get("/helpdesk/requests?q=incorrect&status=new")) == [
        newest.reference,
        middle.reference,
        older.reference,
    ]


FILTER_CASES = [
    ("kind", "resend_user_id", {"kind": RequestKind.RESEND_USER_ID}, {"kind": "contact"}),
    ("status", "referred", {"status": "referred"}, {"status": "in_progress"}),
    ("role", "claims_handler", {"stated_role": "claims_handler"}, {"stated_role": "administrator"}),
    ("console", "portal", {"console": "portal"}, {"console": "admin_console"}),
    ("environment", "training", {"environment": "training"}, {"environment": "live"}),
]


@pytest.mark.parametrize(("name", "value", "match", "other"), FILTER_CASES)
def test_each_filter_narrows(
    client: FlaskClient, staff: User, name: str, value: str, match: dict, other: dict
) -> None:
    wanted = make_request(**match)
    unwanted = make_request(**other)
    assert set(refs(client.get("/helpdesk/requests"))) == {wanted.reference, unwanted.reference}
    response = client.get(f"/helpdesk/requests?{name}={value}")
    assert refs(response) == [wanted.reference]
    body = response.get_data(as_text=True)
    assert f'<option value="{value}" selected>' in body  # the filter stays in the form
    # HTMX asks for the results only; the same rows come back.
    fragment = client.get(f"/helpdesk/requests?{name}={value}", headers=HX)
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="queue-results">')
    assert refs(fragment) == [wanted.reference]
    assert "HX-Request" in fragment.headers["Vary"]


def test_filters_combine(client: FlaskClient, staff: User) -> None:
    both = make_request(status="new", environment="training")
    make_request(status="new", environment="live")
    make_request(status="resolved", environment="training")
    assert refs(client.get("/helpdesk/requests?status=new&environment=training")) == [
        both.reference
    ]


def test_an_unknown_filter_value_is_reported_not_a_500(client: FlaskClient, staff: User) -> None:
    req = make_request()
    response = client.get("/helpdesk/requests?status=bogus&page=x&kind=%00")
    assert refs(response) == [req.reference]
    body = response.get_data(as_text=True)
    assert "Unknown status" in body
    assert "page must be a whole number" in body


@pytest.mark.parametrize(
    "query",
    [
        "{ref}",
        "{ref_lower}",
        "hd{id}",
        "ADA.Lovelace@Example.com",
        "ada.lovelace@",
        "ADA-ID",
        "ada-i",
        "Mysterious 42",
        "mysterious",
    ],
)
def test_search_by_each_key(client: FlaskClient, staff: User, query: str) -> None:
    target = make_request(
        email="Ada.Lovelace@example.com",
        user_id="Ada-ID",
        error_message="Error: a MYSTERIOUS 42 happened",
    )
    make_request(email="bob@example.com", user_id="bob", error_message="Something else")
    q = query.format(ref=target.reference, ref_lower=target.reference.lower(), id=target.id)
    response = client.get("/helpdesk/requests", query_string={"q": q})
    assert refs(response) == [target.reference]
    assert f'value="{q}"' in response.get_data(as_text=True)  # kept in the search box


def test_search_treats_like_wildcards_literally(client: FlaskClient, staff: User) -> None:
    make_request(error_message="no percent here", email="x@example.com")
    pct = make_request(error_message="100% broken", email="y@example.com")
    assert refs(client.get("/helpdesk/requests", query_string={"q": "0% b"})) == [pct.reference]
    assert refs(client.get("/helpdesk/requests", query_string={"q": "%"})) == [pct.reference]
    assert refs(client.get("/helpdesk/requests", query_string={"q": "_"})) == []


def test_a_reference_with_no_request_finds_nothing(client: FlaskClient, staff: User) -> None:
    make_request()
    assert refs(client.get("/helpdesk/requests?q=HD-999999")) == []
    assert "No requests match." in client.get("/helpdesk/requests?q=HD-999999").get_data(
        as_text=True
    )


def test_pagination(client: FlaskClient, staff: User) -> None:
    made = [make_request(created_at=T0 + timedelta(minutes=i)) for i in range(PER_PAGE + 3)]
    newest_first = [r.reference for r in reversed(made)]
    first = client.get("/helpdesk/requests")
    assert refs(first) == newest_first[:PER_PAGE]
    body = first.get_data(as_text=True)
    assert f"{PER_PAGE + 3} requests" in body
    assert "Page 1 of 2" in body
    assert 'rel="next" href="/helpdesk/requests?page=2"' in body
    second = client.get("/helpdesk/requests?page=2")
    assert refs(second) == newest_first[PER_PAGE:]
    assert refs(client.get("/helpdesk/requests?page=99")) == newest_first[PER_PAGE:]  # clamped


def test_paging_links_keep_the_filters(client: FlaskClient, staff: User) -> None:
    for i in range(PER_PAGE + 1):
        make_request(status="new", created_at=T0 + timedelta(minutes=i))
    body = client.get("/helpdesk/requests?status=new&q=sender").get_data(as_text=True)
    assert "page=2" in body
    link = re.search(r'rel="next" href="([^"]+)"', body)
    assert link is not None
    assert "status=new" in link.group(1)
    assert "q=sender" in link.group(1)


def test_the_reference_format() -> None:
    assert reference(123) == "HD-000123"


def test_the_queue_shows_referred_requests_to_helpdesk(client: FlaskClient, staff: User) -> None:
    with clock.frozen(T0):
        req = make_request(status="referred")
    assert refs(client.get("/helpdesk/requests")) == [req.reference]
    assert "Referred to Portal team" in client.get("/helpdesk/requests").get_data(as_text=True)


def test_error_text_search_uses_the_trigram_index_and_follows_edits(
    client: FlaskClient, staff: User
) -> None:
    from portal.db import write_transaction
    from portal.extensions import db
    from portal.helpdesk import search_index
    from portal.helpdesk.models import HelpdeskRequest

    assert search_index.available()  # the migration made it on this database
    req = make_request(error_message="Votre identifiant est BLOQUÉ", email="a@example.com")
    other = make_request(error_message="ok", email="b@example.com")
    assert refs(client.get("/helpdesk/requests", query_string={"q": "bloqué"})) == [req.reference]
    assert refs(client.get("/helpdesk/requests", query_string={"q": 'st "BL'})) == []
    assert refs(client.get("/helpdesk/requests", query_string={"q": "ok"})) == [other.reference]
    with write_transaction(db.session):
        row = db.session.get(HelpdeskRequest, other.id)
        assert row is not None
        row.error_message = "Now it says bloqué too"
    found = refs(client.get("/helpdesk/requests", query_string={"q": "BLOQUÉ"}))
    assert sorted(found) == sorted([req.reference, other.reference])
    assert refs(client.get("/helpdesk/requests", query_string={"q": "ok"})) == []


def test_a_search_with_filters_narrows_in_the_index_and_follows_changes(
    client: FlaskClient, staff: User
) -> None:
    """On SQLite the filter columns are in the FTS5 table (migration 0026): a search with a
    filter or a view finds exactly what the row checks would, and follows a status change.
    Text that only a filter column holds ("new", "live") is no error-text match."""
    from portal.db import write_transaction
    from portal.extensions import db
    from portal.helpdesk.models import HelpdeskRequest

    new = make_request(error_message="Password expired", status="new", environment="training")
    waiting = make_request(error_message="It expired", status="waiting", console="portal")
    done = make_request(
        error_message="expired again", status="resolved", stated_role="claims_handler"
    )
    make_request(error_message="locked", status="new")
    mine = make_request(error_message="expired, mine", status="in_progress")
    with write_transaction(db.session):
        row = db.session.get(HelpdeskRequest, mine.id)
        assert row is not None
        row.assigned_to_id = staff.id

    def found(**args: str) -> list[str]:
        return refs(client.get("/helpdesk/requests", query_string={"q": "expired", **args}))

    assert found(status="new") == [new.reference]
    assert found(environment="training") == [new.reference]
    assert found(console="portal") == [waiting.reference]
    assert found(view="waiting") == [waiting.reference]
    assert found(view="mine") == [mine.reference]
    assert found(view="unassigned") == [waiting.reference, new.reference]
    assert found(role="administrator") == [mine.reference, waiting.reference, new.reference]
    assert found(status="resolved") == [done.reference]
    for q in ("new", "live", "resolved"):
        assert refs(client.get("/helpdesk/requests", query_string={"q": q})) == []
    with write_transaction(db.session):
        row = db.session.get(HelpdeskRequest, new.id)
        assert row is not None
        row.status = "resolved"
    assert found(status="new") == []
    assert found(status="resolved") == [done.reference, new.reference]


def test_a_search_with_fts_syntax_is_taken_literally(client: FlaskClient, staff: User) -> None:
    req = make_request(error_message='Error "AND" OR NOT * here', email="a@example.com")
    for q in ('"AND" OR', "OR NOT *", "NOT * h", "(a"):
        response = client.get("/helpdesk/requests", query_string={"q": q})
        assert response.status_code == 200
    assert refs(client.get("/helpdesk/requests", query_string={"q": '"AND" OR'})) == [req.reference]


def test_paging_goes_on_past_the_bounded_count(
    client: FlaskClient, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal.helpdesk import queue_queries

    monkeypatch.setattr(queue_queries, "COUNT_LIMIT", 3)
    made = [make_request(created_at=T0 + timedelta(minutes=i)) for i in range(PER_PAGE + 5)]
    first = client.get("/helpdesk/requests")
    body = first.get_data(as_text=True)
    assert "More than 3 requests" in body
    assert "Page 1<" in body
    assert 'rel="next"' in body
    second = client.get("/helpdesk/requests?page=2")
    assert refs(second) == [r.reference for r in reversed(made)][PER_PAGE:]
    assert 'rel="next"' not in second.get_data(as_text=True)
    beyond = client.get("/helpdesk/requests?page=9").get_data(as_text=True)
    assert "No requests on this page." in beyond


def test_the_list_shows_which_guide_entries_were_suggested(
    client: FlaskClient, staff: User
) -> None:
    from portal.db import write_transaction
    from portal.extensions import db
    from portal.helpdesk.models import HelpdeskRequest

    req = make_request()
    with write_transaction(db.session):
        row = db.session.get(HelpdeskRequest, req.id)
        assert row is not None
        row.suggestions_shown = "LOGIN-01 LOGIN-02"
    body = client.get("/helpdesk/requests").get_data(as_text=True)
    assert "Guide suggested first: LOGIN-01 LOGIN-02" in body
