"""Bulk actions on the Console's users list over HTTP (docs/rules.md §4 "Housekeeping at
scale", §9 ``POST /console/users/bulk``): every user through the same rules as one at a time,
another firm's ids reported as not found (nothing changed there), ``select_all`` with the
list's filters, each action's refusals, the no-JavaScript confirmation, the audit trail with one
operation id, and the background job path.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import clock
from portal import messages
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.console import bulk as bulk_ops
from portal.extensions import db
from portal.jobs import queue
from tests.console.bulk_helpers import bulk
from tests.console.bulk_helpers import fast_users
from tests.console.bulk_helpers import result_id
from tests.console.users_helpers import CONFIRM
from tests.console.users_helpers import flags
from tests.console.users_helpers import log_in_admin
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access
from tests.helpers import audit_events


def _items(op_id: int) -> dict[str, list[bulk_ops.BulkItem]]:
    db.session.rollback()
    found: dict[str, list[bulk_ops.BulkItem]] = {}
    for item in bulk_ops.items(op_id):
        found.setdefault(item.outcome, []).append(item)
    return found


def test_remove_access_changed_refused_already_and_not_found(client: FlaskClient) -> None:
    org, elsewhere = make_org(), make_org()
    admin = log_in_admin(client, org)
    h1, h2 = make_user(org), make_user(org)
    gone = remove_access(make_user(org))
    stranger = make_user(elsewhere)
    response = bulk(
        client,
        "remove_access",
        [h1.id, stranger.id, admin.id, gone.id, 99_999_999, "abc", h2.id, h1.id],
    )
    op_id = result_id(response)
    items = _items(op_id)
    assert [i.user_pk for i in items["changed"]] == [h1.id, h2.id]
    assert [(i.user_pk, i.reason) for i in items["refused"]] == [
        (admin.id, messages.CONSOLE_REFUSALS[rules.Outcome.REFUSED_SELF])
    ]
    assert [i.user_pk for i in items["already"]] == [gone.id]
    assert {i.user_pk for i in items["not_found"]} == {stranger.id, 99_999_999, None}
    assert all(i.user_label is None for i in items["not_found"])  # no other firm's User ID
    assert flags(h1) == (False, False, None)
    assert flags(h2) == (False, False, None)
    assert flags(stranger) == (True, True, None)  # another firm's user: untouched
    assert flags(admin) == (True, True, None)
    assert audit_events(stranger) == [] or all(
        e.kind == "user_created" for e in audit_events(stranger)
    )
    removed = audit_events(h1, "access_removed")
    assert len(removed) == 1
    assert removed[0].details == f"bulk operation {op_id}"
    assert removed[0].actor == admin.user_id

    page = client.get(f"/console/users/bulk/{op_id}").get_data(as_text=True)
    assert "Changed: <strong>2</strong>" in page
    assert "Refused: <strong>1</strong>" in page
    assert "Not found: <strong>3</strong>" in page
    assert messages.CONSOLE_REFUSALS[rules.Outcome.REFUSED_SELF] in page
    assert stranger.user_id not in page
    kinds = [
        e.kind
        for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.details.like(f"bulk operation {op_id}%"))
        )
    ]
    assert kinds.count("bulk_action_started") == 1
    assert kinds.count("bulk_action_finished") == 1


def test_another_firms_operation_is_not_found(client: FlaskClient, app: object) -> None:
    org = make_org()
    log_in_admin(client, org)
    op_id = result_id(bulk(client, "enable", [make_user(org).id]))
    other = app.test_client()  # type: ignore[attr-defined]
    log_in_admin(other, make_org())
    assert other.get(f"/console/users/bulk/{op_id}").status_code == 404
    assert client.get(f"/console/users/bulk/{op_id}").status_code == 200


def test_two_administrators_in_one_batch_keep_the_firm_an_administrator(
    client: FlaskClient,
) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    b = make_user(org, profile=Profile.ADMINISTRATOR)
    c = make_user(org, profile=Profile.ADMINISTRATOR)
    op_id = result_id(bulk(client, "remove_access", [b.id, admin.id, c.id]))
    items = _items(op_id)
    assert [i.user_pk for i in items["changed"]] == [b.id, c.id]
    assert [i.user_pk for i in items["refused"]] == [admin.id]
    assert flags(admin) == (True, True, None)  # the firm keeps an Administrator with access


def test_without_javascript_remove_access_asks_first(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    h1, h2 = make_user(org), make_user(org)
    response = client.post(
        "/console/users/bulk",
        data={"action": "remove_access", "user": [str(h1.id), str(h2.id)]},
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert CONFIRM in page
    assert "(2 users)" in page
    assert 'name="confirmed" value="yes"' in page
    assert flags(h1) == (True, True, None)  # nothing changed yet


def test_select_all_applies_the_lists_filters(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    today = clock.today()
    handlers = fast_users(org, 5, "hand", expires_on=today + timedelta(days=10))
    admins = fast_users(org, 2, "boss", profile=Profile.ADMINISTRATOR)
    other_org = make_org()
    strangers = fast_users(other_org, 2, "strange")  # another firm
    response = bulk(
        client, "extend_expiry", None, select_all="yes", profile="claims_handler", months="3"
    )
    items = _items(result_id(response))
    assert sorted(i.user_pk for i in items["changed"]) == sorted(handlers)
    expected = bulk_ops.add_months(today + timedelta(days=10), 3)
    for pk in handlers:
        assert db.session.get(User, pk).expires_on == expected  # type: ignore[union-attr]
    for pk in admins + strangers:
        assert db.session.get(User, pk).expires_on != expected  # type: ignore[union-attr]
    # q filters too: one user
    response = bulk(
        client,
        "set_expiry",
        None,
        select_all="yes",
        q="hand00003",
        expires_on=(today + timedelta(days=40)).isoformat(),
    )
    items = _items(result_id(response))
    assert [i.user_pk for i in items["changed"]] == [handlers[3]]


def test_extend_counts_from_today_when_the_date_has_passed(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    user = make_user(org, expires_on=clock.today() - timedelta(days=5))
    result_id(bulk(client, "extend_expiry", [user.id], months="6"))
    assert refresh(user).expires_on == bulk_ops.add_months(clock.today(), 6)


def test_set_expiry_not_after_today_is_refused_by_the_rule(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    user = make_user(org)
    before = user.expires_on
    op_id = result_id(bulk(client, "set_expiry", [user.id], expires_on=clock.today().isoformat()))
    items = _items(op_id)
    assert [(i.user_pk, i.reason) for i in items["refused"]] == [
        (user.id, messages.CONSOLE_REFUSALS[rules.Outcome.REFUSED_PAST_DATE])
    ]
    assert refresh(user).expires_on == before
    assert audit_events(user, "expiry_refused")[0].details.endswith(f"bulk operation {op_id}")


def test_enable_refused_while_expired_and_already_enabled(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    expired = make_user(org, expires_on=clock.today())  # its date is reached today
    locked = lock_out(make_user(org))
    fine = make_user(org)
    op_id = result_id(bulk(client, "enable", [expired.id, locked.id, fine.id]))
    items = _items(op_id)
    assert [(i.user_pk, i.reason) for i in items["refused"]] == [
        (expired.id, messages.CONSOLE_REFUSALS[rules.Outcome.REFUSED_EXPIRED])
    ]
    assert [i.user_pk for i in items["changed"]] == [locked.id]
    assert [i.user_pk for i in items["already"]] == [fine.id]
    assert flags(locked) == (True, True, None)


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "delete"},
        {"action": "set_expiry", "expires_on": "31/12/2030x"},
        {"action": "extend_expiry", "months": "5"},
    ],
)
def test_bad_requests_change_nothing(client: FlaskClient, fields: dict[str, str]) -> None:
    org = make_org()
    log_in_admin(client, org)
    user = make_user(org)
    response = client.post("/console/users/bulk", data={**fields, "user": [str(user.id)]})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/console/users")
    assert db.session.scalar(select(bulk_ops.BulkOperation.id)) is None


def test_nothing_selected(client: FlaskClient) -> None:
    log_in_admin(client, make_org())
    response = bulk(client, "enable", [])
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/users"


@pytest.mark.config(PORTAL_BULK_BACKGROUND_OVER=3)
def test_large_batches_run_as_a_background_job(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    pks = fast_users(org, 4, "many")
    op_id = result_id(bulk(client, "remove_access", pks))
    page = client.get(f"/console/users/bulk/{op_id}").get_data(as_text=True)
    assert 'id="bulk-progress"' in page
    assert 'hx-trigger="every 2s"' in page
    assert "0 of 4 users" in page
    assert all(flags_ok for flags_ok in [db.session.get(User, pk).enabled for pk in pks])  # type: ignore[union-attr]
    db.session.rollback()
    assert queue.run_queued() == 1
    items = _items(op_id)
    assert sorted(i.user_pk for i in items["changed"]) == sorted(pks)
    fragment = client.get(
        f"/console/users/bulk/{op_id}", headers={"HX-Request": "true", "HX-Target": "bulk-progress"}
    )
    assert fragment.headers.get("HX-Refresh") == "true"
    page = client.get(f"/console/users/bulk/{op_id}").get_data(as_text=True)
    assert "Changed: <strong>4</strong>" in page
    job = db.session.scalar(select(queue.BackgroundJob))
    assert job is not None
    assert job.status == queue.DONE
    assert queue.run_queued() == 0  # nothing left to claim


def test_the_list_has_a_checkbox_per_row_and_the_bulk_bar(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    user = make_user(org)
    page = client.get("/console/users?profile=claims_handler").get_data(as_text=True)
    assert f'name="user" value="{user.id}" form="bulk-form"' in page
    assert 'name="select_all" value="yes"' in page
    assert '<input type="hidden" name="profile" value="claims_handler">' in page
    assert f'data-question="{CONFIRM}"' in page


def test_the_result_page_is_never_cached(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    op_id = result_id(bulk(client, "enable", [make_user(org).id]))
    for headers in ({}, {"HX-Request": "true", "HX-Target": "bulk-progress"}):
        response = client.get(f"/console/users/bulk/{op_id}", headers=headers)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
