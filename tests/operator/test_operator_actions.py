"""The Portal team re-enables users and extends expiry dates (docs/rules.md §1, R6), audited with
the helpdesk request reference when the action came from one, which also appears on that
request's timeline."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from portal import clock
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.helpdesk.models import HelpdeskRequest
from tests.factories import PASSWORD
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access
from tests.helpers import audit_events
from tests.helpers import sign_in_as
from tests.helpers import timeline
from tests.operator.helpers import accounts_snapshot
from tests.operator.helpers import expired
from tests.operator.helpers import future
from tests.operator.helpers import inactive
from tests.operator.helpers import make_request


def locked_out() -> User:
    return lock_out(make_user(make_org()))


def manually_removed() -> User:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    return remove_access(make_user(org))


def inactive_user() -> User:
    return inactive(make_org())


DISABLED: dict[str, Callable[[], User]] = {
    "locked out": locked_out,
    "inactive": inactive_user,
    "access removed": manually_removed,
}


def assert_has_access(user: User) -> None:
    fresh = refresh(user)
    assert fresh.enabled
    assert fresh.active
    assert fresh.disabled_reason is None
    assert fresh.failed_attempts == 0


@pytest.mark.parametrize("state", list(DISABLED))
def test_reenable_with_a_reference(client: FlaskClient, state: str) -> None:
    user = DISABLED[state]()
    operator = sign_in_as(client, Profile.PORTAL_TEAM)
    req = make_request(user_id=user.user_id)

    page = client.get(f"/operator/users/{user.id}?ref={req.reference}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert f"Acting for helpdesk request {req.reference}" in body
    assert f'name="reference" value="{req.reference}"' in body

    with clock.frozen(clock.now() + timedelta(minutes=5)):
        response = client.post(f"/operator/users/{user.id}/enable", data={"reference": "hd9999"})
        assert response.status_code == 422  # names no request: nothing is done
        response = client.post(
            f"/operator/users/{user.id}/enable", data={"reference": req.reference}
        )
        acted_at = clock.now()
    assert response.status_code == 302
    assert response.headers["Location"] == f"/operator/users/{user.id}?ref={req.reference}"
    assert_has_access(user)
    assert refresh(user).access_granted_at == acted_at  # the inactivity clock restarts

    (enabled,) = audit_events(user, "enabled")
    assert enabled.actor == operator.user_id
    assert enabled.actor_id == operator.id
    assert enabled.details == f"helpdesk request {req.reference}"
    assert enabled.organisation_id == user.organisation_id  # the firm's own audit log shows it

    (action,) = timeline(req)
    assert action.kind == "account_action"
    assert action.actor == operator.user_id
    assert action.actor_id == operator.id
    assert action.details == f"Re-enabled {user.user_id}: access restored"
    assert refresh_request(req).updated_at == acted_at

    shown = client.get(f"/operator/users/{user.id}?ref={req.reference}").get_data(as_text=True)
    assert f"Access restored for {user.user_id}" in shown
    assert "Has access" in shown


def refresh_request(req: HelpdeskRequest) -> HelpdeskRequest:
    from portal.extensions import db

    db.session.rollback()
    db.session.expire_all()
    fresh = db.session.get(HelpdeskRequest, req.id)
    assert fresh is not None
    return fresh


@pytest.mark.parametrize("state", list(DISABLED))
def test_reenable_without_a_reference(client: FlaskClient, state: str) -> None:
    user = DISABLED[state]()
    operator = sign_in_as(client, Profile.PORTAL_TEAM)
    other_request = make_request()
    response = client.post(f"/operator/users/{user.id}/enable", data={})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/operator/users/{user.id}"
    assert_has_access(user)
    (enabled,) = audit_events(user, "enabled")
    assert enabled.actor == operator.user_id
    assert enabled.details is None
    assert timeline(other_request) == []


def test_the_reenabled_user_can_log_in(client: FlaskClient, app: object) -> None:
    user = locked_out()
    sign_in_as(client, Profile.PORTAL_TEAM)
    assert client.post(f"/operator/users/{user.id}/enable").status_code == 302
    other = client.application.test_client()
    response = login(other, user.user_id, PASSWORD)
    assert response.status_code == 302
    assert "/login" not in response.headers["Location"]


def test_reenable_is_refused_while_expired_and_extend_and_reenable_fixes_it(
    client: FlaskClient,
) -> None:
    org = make_org()
    user = expired(org, profile=Profile.ADMINISTRATOR)
    old_expiry = user.expires_on
    operator = sign_in_as(client, Profile.PORTAL_TEAM)
    req = make_request(user_id=user.user_id)

    page = client.get(f"/operator/users/{user.id}?ref={req.reference}").get_data(as_text=True)
    assert "The expiry date has been reached" in page
    assert "Extend and re-enable" in page
    assert f"/operator/users/{user.id}/enable" not in page  # no button that cannot work

    refused = client.post(f"/operator/users/{user.id}/enable", data={"reference": req.reference})
    assert refused.status_code == 422
    assert "extend the expiry date first" in refused.get_data(as_text=True)
    assert not refresh(user).enabled
    assert [e.reason for e in audit_events(user, "enable_refused")] == ["refused_expired"]
    assert timeline(req) == []  # nothing was done for the request

    new_date = future(365)
    response = client.post(
        f"/operator/users/{user.id}/extend-and-enable",
        data={"expires_on": new_date.isoformat(), "reference": req.reference},
    )
    assert response.status_code == 302
    assert_has_access(user)
    assert refresh(user).expires_on == new_date
    (changed,) = audit_events(user, "expiry_changed")
    assert changed.actor == operator.user_id
    assert changed.details == f"{old_expiry} -> {new_date}; helpdesk request {req.reference}"
    (enabled,) = audit_events(user, "enabled")
    assert enabled.details == f"helpdesk request {req.reference}"
    (action,) = timeline(req)
    assert action.kind == "account_action"
    assert action.details == (
        f"Expiry date of {user.user_id} changed: {old_expiry} -> {new_date}; "
        f"Re-enabled {user.user_id}: access restored"
    )
    # The Administrator can log in again.
    other = client.application.test_client()
    assert "/login" not in login(other, user.user_id, door="console").headers["Location"]


@pytest.mark.parametrize("days", [0, -1, -400])
def test_extend_and_reenable_needs_a_date_after_today(client: FlaskClient, days: int) -> None:
    user = expired(make_org())
    sign_in_as(client, Profile.PORTAL_TEAM)
    req = make_request()
    before = accounts_snapshot()
    for path in ("extend-and-enable", "expiry"):
        response = client.post(
            f"/operator/users/{user.id}/{path}",
            data={
                "expires_on": (clock.today() + timedelta(days=days)).isoformat(),
                "reference": "",
            },
        )
        assert response.status_code == 422
        assert "The new expiry date must be after today" in response.get_data(as_text=True)
    assert accounts_snapshot() == before
    assert audit_events(user, "expiry_changed") == []
    assert timeline(req) == []


def test_extend_only(client: FlaskClient) -> None:
    org = make_org()
    user = make_user(org)
    old_expiry = user.expires_on
    operator = sign_in_as(client, Profile.PORTAL_TEAM)
    req = make_request(user_id=user.user_id, status="in_progress")
    new_date = future(700)
    response = client.post(
        f"/operator/users/{user.id}/expiry",
        data={"expires_on": new_date.isoformat(), "reference": req.reference.lower()},
    )
    assert response.status_code == 302
    fresh = refresh(user)
    assert fresh.expires_on == new_date
    assert fresh.enabled
    (changed,) = audit_events(user, "expiry_changed")
    assert changed.actor == operator.user_id
    assert changed.details == f"{old_expiry} -> {new_date}; helpdesk request {req.reference}"
    (action,) = timeline(req)
    assert action.details == f"Expiry date of {user.user_id} changed: {old_expiry} -> {new_date}"

    # The same date again changes nothing and adds nothing to the timeline.
    again = client.post(
        f"/operator/users/{user.id}/expiry",
        data={"expires_on": new_date.isoformat(), "reference": req.reference},
    )
    assert again.status_code == 302
    assert len(audit_events(user, "expiry_changed")) == 1
    assert len(timeline(req)) == 1


def test_extend_only_leaves_an_expired_user_disabled(client: FlaskClient) -> None:
    user = expired(make_org())
    sign_in_as(client, Profile.PORTAL_TEAM)
    new_date = future(30)
    response = client.post(
        f"/operator/users/{user.id}/expiry", data={"expires_on": new_date.isoformat()}
    )
    assert response.status_code == 302
    fresh = refresh(user)
    assert fresh.expires_on == new_date
    assert not fresh.enabled
    assert fresh.disabled_reason == "expiry"
    # Now a plain re-enable works.
    assert client.post(f"/operator/users/{user.id}/enable").status_code == 302
    assert_has_access(user)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("HD-999999", "There is no helpdesk request HD-999999"),
        ("not a reference", "Enter a helpdesk request reference like HD-000123"),
        ("HD-12x", "Enter a helpdesk request reference like HD-000123"),
        ("x" * 300, "Enter a helpdesk request reference like HD-000123"),
    ],
)
@pytest.mark.parametrize("path", ["enable", "expiry", "extend-and-enable"])
def test_a_bad_reference_changes_nothing(
    client: FlaskClient, reference: str, message: str, path: str
) -> None:
    user = expired(make_org())
    sign_in_as(client, Profile.PORTAL_TEAM)
    req = make_request()
    before = accounts_snapshot()
    response = client.post(
        f"/operator/users/{user.id}/{path}",
        data={"expires_on": future().isoformat(), "reference": reference},
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert accounts_snapshot() == before
    assert audit_events(user, "enabled") == []
    assert audit_events(user, "expiry_changed") == []
    assert timeline(req) == []


def test_a_reference_on_the_page_that_names_no_request_is_ignored(client: FlaskClient) -> None:
    user = locked_out()
    sign_in_as(client, Profile.PORTAL_TEAM)
    for ref in ("HD-424242", "<script>"):
        body = client.get(f"/operator/users/{user.id}", query_string={"ref": ref}).get_data(
            as_text=True
        )
        assert "the reference was ignored" in body
        assert 'name="reference"' not in body
        assert "<script>" not in body


@pytest.mark.parametrize("path", ["", "/enable", "/expiry", "/extend-and-enable"])
def test_an_unknown_user_is_a_404(client: FlaskClient, path: str) -> None:
    sign_in_as(client, Profile.PORTAL_TEAM)
    method = client.get if not path else client.post
    response = method(f"/operator/users/999999{path}", data={"expires_on": future().isoformat()})
    assert response.status_code == 404


def test_reenabling_a_user_who_has_access_changes_nothing(client: FlaskClient) -> None:
    user = make_user(make_org())
    sign_in_as(client, Profile.PORTAL_TEAM)
    req = make_request()
    before = accounts_snapshot()
    response = client.post(f"/operator/users/{user.id}/enable", data={"reference": req.reference})
    assert response.status_code == 302
    assert accounts_snapshot() == before
    assert timeline(req) == []
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "already has access" in follow


def test_operator_staff_can_be_reenabled_too(client: FlaskClient) -> None:
    helpdesk = lock_out(make_user(None, profile=Profile.HELPDESK))
    sign_in_as(client, Profile.PORTAL_TEAM)
    page = client.get(f"/operator/users/{helpdesk.id}").get_data(as_text=True)
    assert "Operator staff" in page
    assert client.post(f"/operator/users/{helpdesk.id}/enable").status_code == 302
    assert_has_access(helpdesk)


def test_the_users_page_shows_who_disabled_and_the_trail(client: FlaskClient) -> None:
    user = locked_out()
    sign_in_as(client, Profile.PORTAL_TEAM)
    body = client.get(f"/operator/users/{user.id}").get_data(as_text=True)
    assert "Disabled by the system: locked out" in body
    assert "locked out" in body
    assert re.search(r"<td>User created</td>", body)  # the audit log's label


@pytest.mark.parametrize("reference", ["HD-999999999999", "HD-2147483648", "HD-0"])
def test_a_reference_beyond_any_id_names_no_request(client: FlaskClient, reference: str) -> None:
    user = locked_out()
    sign_in_as(client, Profile.PORTAL_TEAM)
    before = accounts_snapshot()
    response = client.post(f"/operator/users/{user.id}/enable", data={"reference": reference})
    assert response.status_code == 422
    assert "There is no helpdesk request" in response.get_data(as_text=True)
    assert accounts_snapshot() == before
    page = client.get(f"/operator/users/{user.id}", query_string={"ref": reference})
    assert page.status_code == 200
    assert "the reference was ignored" in page.get_data(as_text=True)
