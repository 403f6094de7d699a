"""Working the queue (issue 14): views, assignment, bulk status change, sort by age in business
hours, search by name, the request page's account state; ages with fixed clocks over a weekend,
a bank holiday and a paused period."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlalchemy import select

from portal import clock
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import remove_access
from tests.helpdesk_factories import make_request
from tests.helpers import sign_in_as

LONDON = ZoneInfo("Europe/London")
DAY = int(8.5 * 3600)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LONDON).astimezone(UTC)


def refs(body: str) -> list[str]:
    return re.findall(r'<th scope="row" class="ref"><a href="[^"]+">(HD-\d+)</a>', body)


def page(client: FlaskClient, query: str = "") -> str:
    response = client.get(f"/helpdesk/requests{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def stored(pk: int) -> HelpdeskRequest:
    db.session.rollback()
    row = db.session.get(HelpdeskRequest, pk)
    assert row is not None
    db.session.refresh(row)
    return row


def events(pk: int, kind: str) -> list[RequestEvent]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == pk, RequestEvent.kind == kind)
            .order_by(RequestEvent.id)
        )
    )


# --- assignment and views ----------------------------------------------------------------------


def test_take_give_and_unassign(client: FlaskClient) -> None:
    me = sign_in_as(client, Profile.HELPDESK)
    colleague = make_user(profile=Profile.PORTAL_TEAM)
    req = make_request()
    show = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert f'<option value="{colleague.id}">{colleague.full_name} ({colleague.user_id})' in show
    assert (
        client.post(f"/helpdesk/requests/{req.id}/assign", data={"assignee": "me"}).status_code
        == 302
    )
    assert stored(req.id).assigned_to_id == me.id
    client.post(f"/helpdesk/requests/{req.id}/assign", data={"assignee": str(colleague.id)})
    assert stored(req.id).assigned_to_id == colleague.id
    client.post(f"/helpdesk/requests/{req.id}/assign", data={"assignee": ""})
    assert stored(req.id).assigned_to_id is None
    details = [e.details for e in events(req.id, "assigned")]
    assert details == [
        f"Taken by {me.user_id}",
        f"Given to {colleague.user_id} (was {me.user_id})",
        f"Unassigned (was {colleague.user_id})",
    ]
    assert all(e.actor == me.user_id for e in events(req.id, "assigned"))


def test_the_take_button_takes_it_whatever_the_select_holds(client: FlaskClient) -> None:
    """The page's "Take it" button sits in the form with the "Assigned to" select: a browser
    posts both (the select still on "Nobody", or on a colleague)."""
    me = sign_in_as(client, Profile.HELPDESK)
    colleague = make_user(profile=Profile.HELPDESK)
    req = make_request()
    show = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert '<button type="submit" name="take" value="me"' in show
    client.post(f"/helpdesk/requests/{req.id}/assign", data={"assignee": "", "take": "me"})
    assert stored(req.id).assigned_to_id == me.id
    client.post(f"/helpdesk/requests/{req.id}/assign", data={"assignee": str(colleague.id)})
    client.post(
        f"/helpdesk/requests/{req.id}/assign",
        data={"assignee": str(colleague.id), "take": "me"},
    )
    assert stored(req.id).assigned_to_id == me.id
    assert [e.details for e in events(req.id, "assigned")][-1] == (
        f"Taken by {me.user_id} (was {colleague.user_id})"
    )


def test_a_request_cannot_be_given_to_a_requester(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    admin = make_user(make_org(), profile=Profile.ADMINISTRATOR)
    req = make_request()
    client.post(f"/helpdesk/requests/{req.id}/assign", data={"assignee": str(admin.id)})
    assert stored(req.id).assigned_to_id is None
    assert events(req.id, "assigned") == []
    client.post(f"/helpdesk/requests/{req.id}/assign", data={"assignee": "somebody"})
    assert stored(req.id).assigned_to_id is None


def test_the_views(client: FlaskClient) -> None:
    me = sign_in_as(client, Profile.HELPDESK)
    other = make_user(profile=Profile.HELPDESK)
    mine = make_request()
    theirs = make_request()
    unassigned = make_request()
    waiting = make_request(status="waiting")
    referred = make_request(status="referred")
    resolved_mine = make_request(status="resolved")
    client.post(f"/helpdesk/requests/{mine.id}/assign", data={"assignee": "me"})
    client.post(f"/helpdesk/requests/{resolved_mine.id}/assign", data={"assignee": "me"})
    client.post(f"/helpdesk/requests/{theirs.id}/assign", data={"assignee": str(other.id)})
    assert refs(page(client, "?view=mine")) == [mine.reference]
    assert set(refs(page(client, "?view=unassigned"))) == {
        unassigned.reference,
        waiting.reference,
        referred.reference,
    }
    assert refs(page(client, "?view=waiting")) == [waiting.reference]
    assert refs(page(client, "?view=referred")) == [referred.reference]
    assert len(refs(page(client))) == 6
    body = page(client, "?view=mine")
    assert 'aria-current="page">Mine</a>' in body
    assert ">You</td>" in body
    assert me.id  # the signed-in user's own requests
    assert "Unknown view" in page(client, "?view=nonsense")


# --- bulk status change ------------------------------------------------------------------------


def test_bulk_status_change_without_javascript(client: FlaskClient) -> None:
    staff = sign_in_as(client, Profile.HELPDESK)
    a, b, c = make_request(), make_request(), make_request(status="resolved")
    response = client.post(
        "/helpdesk/requests/bulk-status",
        data={
            "ids": [str(a.id), str(b.id), str(c.id), "999999"],
            "status": "resolved",
            "back": "view=unassigned",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/helpdesk/requests?view=unassigned")
    assert [stored(r.id).status for r in (a, b, c)] == ["resolved"] * 3
    changes = events(a.id, "status_changed")
    assert [(e.from_status, e.to_status, e.actor) for e in changes] == [
        ("new", "resolved", staff.user_id)
    ]
    assert events(c.id, "status_changed") == []
    follow = client.get("/helpdesk/requests").get_data(as_text=True)
    assert "2 requests set to Resolved. 1 already had that status." in follow


def test_bulk_status_change_refuses_bad_input(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    a = make_request()
    client.post("/helpdesk/requests/bulk-status", data={"ids": [str(a.id)], "status": "closed"})
    client.post(
        "/helpdesk/requests/bulk-status", data={"status": "resolved", "back": "//evil.example"}
    )
    assert stored(a.id).status == "new"
    response = client.post(
        "/helpdesk/requests/bulk-status", data={"status": "resolved", "back": "/\\evil"}
    )
    assert response.headers["Location"].endswith("/helpdesk/requests")


def test_the_queue_form_has_the_tick_boxes_and_the_status_buttons(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    req = make_request()
    body = page(client)
    assert 'action="/helpdesk/requests/bulk-status"' in body
    assert f'<input type="checkbox" name="ids" value="{req.id}"' in body
    assert '<button type="submit" name="status" value="resolved"' in body


# --- search by name ----------------------------------------------------------------------------


def test_search_by_requester_name(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    wanted = make_request(name="Gwendolyn Featherstonehaugh")
    make_request(name="Ada Lovelace")
    assert refs(page(client, "?q=gwendolyn")) == [wanted.reference]
    assert refs(page(client, "?q=GWEN&status=new")) == [wanted.reference]
    assert refs(page(client, "?q=gwendolyn&status=resolved")) == []


# --- age in business hours ---------------------------------------------------------------------


def test_age_over_a_weekend_a_bank_holiday_and_a_paused_period(client: FlaskClient) -> None:
    with clock.frozen(at(2026, 4, 2, 16, 30)):  # Thursday before Easter, 16:30
        staff = sign_in_as(client, Profile.HELPDESK)
        req = make_request(created_at=clock.now())
        assert stored(req.id).age_origin is not None
    # Good Friday, the weekend and Easter Monday do not count; Tuesday 7 April 10:00 → paused.
    with clock.frozen(at(2026, 4, 7, 10)):
        sign_in_as(client, Profile.HELPDESK)  # the clock jumped: a new session
        client.post(f"/helpdesk/requests/{req.id}/status", data={"status": "waiting"})
        row = stored(req.id)
        assert (row.status, row.age_seconds, row.age_origin) == ("waiting", 3600 + 3600, None)
    # Wednesday: still waiting, the age does not move.
    with clock.frozen(at(2026, 4, 8, 15)):
        sign_in_as(client, Profile.HELPDESK)  # the clock jumped: a new session
        body = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
        assert "Age <strong>2h 00m</strong>" in body
        assert "the clock is paused" in body
        client.post(f"/helpdesk/requests/{req.id}/status", data={"status": "in_progress"})
    # Thursday 9 April 11:00: 2 h before the pause + Wednesday 15:00–17:30 + 2 h on Thursday.
    with clock.frozen(at(2026, 4, 9, 11)):
        sign_in_as(client, Profile.HELPDESK)  # the clock jumped: a new session
        body = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
        assert "Age <strong>6h 30m</strong>" in body
        assert "Overdue" not in body
    assert staff.id


def test_a_referred_request_keeps_ageing_and_overdue_is_marked(client: FlaskClient) -> None:
    with clock.frozen(at(2026, 11, 30, 9)):  # Monday
        sign_in_as(client, Profile.HELPDESK)
        req = make_request(created_at=clock.now())
        client.post(f"/helpdesk/requests/{req.id}/refer", data={"note": ""})
    with clock.frozen(at(2026, 12, 2, 10)):  # Wednesday 10:00: 2 days and 1 hour
        sign_in_as(client, Profile.HELPDESK)  # the clock jumped: a new session
        body = page(client)
        assert "2d 1h" in body
        assert 'class="overdue"' in body
        assert "Overdue" in client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)


def test_sort_by_age_mixes_running_and_paused_requests(client: FlaskClient) -> None:
    with clock.frozen(at(2026, 11, 23, 9)):  # Monday
        sign_in_as(client, Profile.HELPDESK)
        oldest = make_request(created_at=clock.now())
    with clock.frozen(at(2026, 11, 24, 9)):
        sign_in_as(client, Profile.HELPDESK)  # the clock jumped: a new session
        paused = make_request(created_at=clock.now())
    with clock.frozen(at(2026, 11, 25, 9)):
        sign_in_as(client, Profile.HELPDESK)  # the clock jumped: a new session
        middle = make_request(created_at=clock.now())
    with clock.frozen(at(2026, 11, 30, 9)):
        sign_in_as(client, Profile.HELPDESK)  # the clock jumped: a new session
        # Paused after 4 working days (Tue–Fri): older than `middle` (3 days by Monday).
        client.post(f"/helpdesk/requests/{paused.id}/status", data={"status": "waiting"})
        newest = make_request(created_at=clock.now() - timedelta(minutes=1))
    with clock.frozen(at(2026, 11, 30, 12)):
        sign_in_as(client, Profile.HELPDESK)  # the clock jumped: a new session
        assert refs(page(client, "?sort=age")) == [
            oldest.reference,
            paused.reference,
            middle.reference,
            newest.reference,
        ]
        assert refs(page(client)) == [
            newest.reference,
            middle.reference,
            paused.reference,
            oldest.reference,
        ]
        assert refs(page(client, "?sort=age&view=waiting")) == [paused.reference]
        assert refs(page(client, "?sort=age&q=sender")) == [
            oldest.reference,
            paused.reference,
            middle.reference,
            newest.reference,
        ]
        assert "oldest first" in page(client, "?sort=age")


# --- the request page --------------------------------------------------------------------------


def test_the_request_page_says_the_account_state_with_who_and_when(client: FlaskClient) -> None:
    org = make_org()
    locked = make_user(org, user_id="locked.user")
    lock_out(locked)
    removed = make_user(org, user_id="removed.user")
    remove_access(removed)
    sign_in_as(client, Profile.HELPDESK)
    body = client.get(f"/helpdesk/requests/{make_request(user_id='locked.user').id}").get_data(
        as_text=True
    )
    state = body.split('id="account-state">', 1)[1].split("</dd>", 1)[0]
    assert "Disabled by the system: locked out" in state
    assert "by " in state
    body = client.get(f"/helpdesk/requests/{make_request(user_id='removed.user').id}").get_data(
        as_text=True
    )
    state = body.split('id="account-state">', 1)[1].split("</dd>", 1)[0]
    assert "Access removed" in state


def test_suggested_entries_are_links(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    req = make_request()
    with db.session.begin():
        row = db.session.get(HelpdeskRequest, req.id)
        assert row is not None
        row.suggestions_shown = "LOGIN-01 LOGIN-06"
    body = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert '<a href="/guides/troubleshooting#LOGIN-01">LOGIN-01</a>' in body
    assert '<a href="/guides/troubleshooting#LOGIN-06">LOGIN-06</a>' in body


def test_after_a_referral_the_expired_banner_goes(client: FlaskClient) -> None:
    org = make_org()
    make_user(org, user_id="old.user", expires_on=clock.today() + timedelta(days=1))
    clock.advance(timedelta(days=2))
    sign_in_as(client, Profile.HELPDESK)
    req = make_request(user_id="old.user")
    assert 'id="expired-user-id"' in client.get(f"/helpdesk/requests/{req.id}").get_data(
        as_text=True
    )
    client.post(f"/helpdesk/requests/{req.id}/refer", data={"note": ""})
    body = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert 'id="expired-user-id"' not in body
    assert "has been referred to the Portal team" in body


def test_assignee_shown_to_staff_only(client: FlaskClient) -> None:
    user: User = sign_in_as(client, Profile.ADMINISTRATOR, make_org())
    assert client.get("/helpdesk/requests?view=mine").status_code in (302, 403, 404)
    assert user.id
