"""A request's page: fields, screenshot (staff only, safe headers), status inline (HTMX and
without JavaScript) and in the timeline, notes, referral, no account controls."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import clock
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access
from tests.helpdesk_factories import make_request
from tests.helpdesk_factories import png_bytes
from tests.helpdesk_queue.conftest import sign_in_as
from tests.helpers import timeline

HX = {"HX-Request": "true", "HX-Target": "request-status"}


def status_of(req: HelpdeskRequest) -> str:
    db.session.rollback()
    db.session.expire_all()
    fresh = db.session.get(HelpdeskRequest, req.id)
    assert fresh is not None
    return fresh.status


def test_the_page_shows_everything_sent(client: FlaskClient, staff: User) -> None:
    req = make_request(
        name="Ada <Lovelace>",
        email="ada@example.com",
        organisation_name="Acme Claims",
        user_id="ada01",
        error_message="The User ID or password is incorrect.",
        details="I tried twice.\nThen gave up.",
        stated_role="claims_handler",
        console="portal",
        environment="training",
    )
    response = client.get(f"/helpdesk/requests/{req.id}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    for text in (
        req.reference,
        "Ada &lt;Lovelace&gt;",
        "ada@example.com",
        "Acme Claims",
        "ada01",
        "The User ID or password is incorrect.",
        "I tried twice.\nThen gave up.",
        "Claims Handler",
        "Portal",
        "Training",
        "Request sent",  # the timeline
    ):
        assert text in body, text


def test_unknown_request_is_404(client: FlaskClient, staff: User) -> None:
    assert client.get("/helpdesk/requests/999999").status_code == 404
    assert (
        client.post("/helpdesk/requests/999999/status", data={"status": "new"}).status_code == 404
    )
    assert client.get("/helpdesk/requests/999999/screenshot").status_code == 404


# --- the screenshot ---------------------------------------------------------------------------


def test_the_screenshot_is_served_to_staff_with_safe_headers(
    client: FlaskClient, staff: User
) -> None:
    image = png_bytes()
    req = make_request(screenshot=image)
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert f"/helpdesk/requests/{req.id}/screenshot" in page
    response = client.get(f"/helpdesk/requests/{req.id}/screenshot")
    assert response.status_code == 200
    assert response.data == image
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{req.reference}-screenshot.png"'
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_request_without_a_screenshot_has_none(client: FlaskClient, staff: User) -> None:
    req = make_request()
    assert client.get(f"/helpdesk/requests/{req.id}/screenshot").status_code == 404


def test_the_screenshot_is_refused_to_anyone_else(client: FlaskClient) -> None:
    req = make_request(screenshot=png_bytes())
    url = f"/helpdesk/requests/{req.id}/screenshot"
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]
    for profile in (Profile.CLAIMS_HANDLER, Profile.ADMINISTRATOR):
        other = client.application.test_client()
        sign_in_as(other, profile)
        response = other.get(url)
        assert response.status_code == 403
        assert png_bytes() not in response.data


# --- status ------------------------------------------------------------------------------------


def test_status_inline_with_htmx_is_in_the_timeline(client: FlaskClient, staff: User) -> None:
    req = make_request()
    response = client.post(
        f"/helpdesk/requests/{req.id}/status", data={"status": "in_progress"}, headers=HX
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<form id="request-status"')
    assert '<option value="in_progress" selected>' in body
    assert "Saved: the status is now In progress." in body
    assert response.headers["HX-Trigger"] == "request-changed"
    assert status_of(req) == "in_progress"
    [_created, changed] = timeline(req)
    assert (changed.kind, changed.from_status, changed.to_status, changed.actor) == (
        "status_changed",
        "new",
        "in_progress",
        staff.user_id,
    )
    # Recorded in the audit log too (docs/rules.md R9).
    from portal.audit.models import AuditEvent

    db.session.rollback()
    [audited] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "helpdesk_status_changed")
    ).all()
    assert (audited.actor_id, audited.reason) == (staff.id, "in_progress")
    assert audited.details == f"{req.reference}: new -> in_progress"
    fragment = client.get(f"/helpdesk/requests/{req.id}/timeline").get_data(as_text=True)
    assert "Status changed" in fragment
    assert "from New to In progress" in fragment
    # Setting the same status again changes nothing and records nothing.
    again = client.post(
        f"/helpdesk/requests/{req.id}/status", data={"status": "in_progress"}, headers=HX
    )
    assert again.status_code == 200
    assert "HX-Trigger" not in again.headers
    assert len(timeline(req)) == 2


@pytest.mark.parametrize("bad", ["", "closed", "NEW", "in_progress\x00"])
def test_bad_status_is_422_with_the_fragment(client: FlaskClient, staff: User, bad: str) -> None:
    req = make_request()
    response = client.post(f"/helpdesk/requests/{req.id}/status", data={"status": bad}, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<form id="request-status"')
    assert (
        "Choose one of: New, In progress, Referred to Portal team, Waiting on requester, Resolved"
        in body
    )
    assert status_of(req) == "new"
    assert len(timeline(req)) == 1


def test_status_without_javascript_redirects_back(client: FlaskClient, staff: User) -> None:
    req = make_request()
    response = client.post(f"/helpdesk/requests/{req.id}/status", data={"status": "resolved"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/helpdesk/requests/{req.id}"
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert "Status set to Resolved." in page
    assert "from New to Resolved" in page
    assert status_of(req) == "resolved"
    refused = client.post(f"/helpdesk/requests/{req.id}/status", data={"status": "bogus"})
    assert refused.status_code == 302
    assert "Choose one of" in client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert status_of(req) == "resolved"


def test_status_is_a_post_only(client: FlaskClient, staff: User) -> None:
    req = make_request()
    assert client.get(f"/helpdesk/requests/{req.id}/status").status_code == 405


# --- notes -------------------------------------------------------------------------------------


def test_a_note_is_added_to_the_timeline(client: FlaskClient, staff: User) -> None:
    req = make_request()
    response = client.post(
        f"/helpdesk/requests/{req.id}/notes", data={"note": "Called them <b>back</b>."}
    )
    assert response.status_code == 302
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert "Note added." in page
    assert "Called them &lt;b&gt;back&lt;/b&gt;." in page
    note = timeline(req)[-1]
    assert (note.kind, note.details, note.actor_id) == (
        "note",
        "Called them <b>back</b>.",
        staff.id,
    )


@pytest.mark.parametrize("bad", ["", "   ", "x" * 5001])
def test_an_empty_or_huge_note_is_refused(client: FlaskClient, staff: User, bad: str) -> None:
    req = make_request()
    response = client.post(f"/helpdesk/requests/{req.id}/notes", data={"note": bad})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "There is a problem" in body
    assert len(timeline(req)) == 1


# --- referral ----------------------------------------------------------------------------------


def test_expired_user_id_shows_the_referral_button_and_refers_in_one_step(
    client: FlaskClient,
) -> None:
    org = make_org()
    expired = make_user(org, user_id="old.timer", expires_on=clock.today() + timedelta(days=1))
    clock.advance(timedelta(days=2))  # the expiry date has passed (not yet swept)
    sign_in_as(client, Profile.HELPDESK)
    req = make_request(user_id="OLD.TIMER")
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert 'id="expired-user-id"' in page
    assert "The User ID old.timer has expired" in page
    response = client.post(f"/helpdesk/requests/{req.id}/refer", data={})
    assert response.status_code == 302
    assert status_of(req) == "referred"
    referred = timeline(req)[-1]
    assert (referred.kind, referred.from_status, referred.to_status) == (
        "referred",
        "new",
        "referred",
    )
    # Helpdesk keeps seeing it, with its outcome, and nothing happened to the account.
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert "Referred to the Portal team" in page
    assert "Referred to Portal team" in client.get("/helpdesk/requests").get_data(as_text=True)
    assert refresh(expired).expires_on == expired.expires_on
    # A second referral changes nothing.
    client.post(f"/helpdesk/requests/{req.id}/refer", data={})
    assert [e.kind for e in timeline(req)].count("referred") == 1


def test_a_user_id_disabled_for_expiry_is_detected(client: FlaskClient) -> None:
    from portal.accounts import rules
    from tests.factories import apply

    user = make_user(make_org(), user_id="swept", expires_on=clock.today() + timedelta(days=1))
    clock.advance(timedelta(days=1))
    sign_in_as(client, Profile.HELPDESK)
    apply(
        user,
        rules.login_attempt(
            user.to_state(), password_ok=True, now=clock.now(), today=clock.today()
        ),
    )
    assert refresh(user).disabled_reason == "expiry"
    req = make_request(user_id="swept")
    assert 'id="expired-user-id"' in client.get(f"/helpdesk/requests/{req.id}").get_data(
        as_text=True
    )


def test_no_prominent_referral_when_nothing_expired(client: FlaskClient, staff: User) -> None:
    make_user(make_org(), user_id="fresh")
    req = make_request(user_id="fresh")
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert 'id="expired-user-id"' not in page
    # Referral is still possible on any request, with a note for the Portal team.
    client.post(f"/helpdesk/requests/{req.id}/refer", data={"note": "Please look"})
    assert status_of(req) == "referred"
    assert timeline(req)[-1].details == "Please look"


# --- Helpdesk cannot enable accounts ------------------------------------------------------------


@pytest.mark.parametrize("state", ["locked", "removed", "expired"])
def test_no_account_control_on_helpdesk_pages(client: FlaskClient, state: str) -> None:
    from tests.factories import lock_out

    org = make_org()
    user = make_user(org, user_id="needs.help", expires_on=clock.today() + timedelta(days=1))
    if state == "locked":
        lock_out(user)
    elif state == "removed":
        remove_access(user)
    else:
        clock.advance(timedelta(days=2))
    sign_in_as(client, Profile.HELPDESK)
    req = make_request(user_id="needs.help", screenshot=png_bytes())
    for path in (f"/helpdesk/requests/{req.id}", "/helpdesk/requests"):
        body = client.get(path).get_data(as_text=True)
        assert "/enabled" not in body
        assert "/expiry" not in body
        assert "/console/users" not in body
        assert "/operator/" not in body
        # The only checkboxes tick requests for a bulk status change (never an account).
        assert not re.search(r'type="checkbox"(?! name="ids")', body)
        assert 'name="enabled"' not in body
        assert 'name="expires_on"' not in body


def test_the_timeline_names_every_kind_of_event_in_words(client: FlaskClient, staff: User) -> None:
    """Each event kind reads as words from one table (EVENT_LABELS), never as its code: the
    kinds the merged branches added (reply, requester_added, assigned, status link) too."""
    from portal.db import write_transaction
    from portal.helpdesk.models import EVENT_LABELS
    from portal.helpdesk.models import EventKind
    from portal.helpdesk.timeline import add_event

    req = make_request()
    with write_transaction(db.session):
        found = db.session.get(HelpdeskRequest, req.id)
        assert found is not None
        for kind in EventKind:
            if kind != EventKind.CREATED:
                add_event(found, kind, staff, clock.now(), details=f"about {kind.value}")
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    timeline_html = page.split('id="request-timeline"', 1)[1]
    headings = re.findall(r"<strong>([^<]*)</strong>", timeline_html)
    assert set(EVENT_LABELS) == set(EventKind)
    assert [h for h in headings if h in EVENT_LABELS.values()] == [
        EVENT_LABELS[k] for k in EventKind
    ]
    for kind in EventKind:
        if "_" in kind.value:  # the code appears only in a class name, never as text
            assert f">{kind.value}" not in timeline_html
    for raw in ("Requester added", "Mail queued", "Account action", "User id"):
        assert raw not in timeline_html, raw
    assert "The requester added information" in page
    assert "Reply to the requester" in page
