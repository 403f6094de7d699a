"""Access reviews (docs/rules.md §4, "Access review") over HTTP on both databases: start (all
users or the list's filter), resume, keep / remove one at a time and in bulk (R4's question
first, R4's refusals), sign off, the record's page, list, CSV and printable page, the audit
events, and the dashboard's last review / next due date under fixed clocks."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import clock
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit import kinds
from portal.db import write_transaction
from portal.extensions import db
from portal.reviews import service
from portal.reviews.models import AccessReview
from portal.reviews.models import AccessReviewItem
from tests.console.users_helpers import CONFIRM
from tests.console.users_helpers import HOSTILE
from tests.console.users_helpers import add_users
from tests.console.users_helpers import log_in_admin
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import audit_events

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def items_by_user_id(review_id: int) -> dict[str, AccessReviewItem]:
    db.session.rollback()
    rows = db.session.scalars(
        select(AccessReviewItem).where(AccessReviewItem.review_id == review_id)
    )
    return {item.user_id: item for item in rows}


def start_review(client: FlaskClient, **filters: str) -> int:
    response = client.post("/console/reviews", data=filters)
    assert response.status_code == 302
    found = re.fullmatch(r"/console/reviews/(\d+)", response.headers["Location"])
    assert found is not None, response.headers["Location"]
    return int(found.group(1))


def test_a_review_from_start_to_sign_off(client: FlaskClient) -> None:
    org = make_org("Acme Claims")
    admin = log_in_admin(client, org, "acme.admin")
    keep_me = make_user(org, user_id="acme.keep")
    leaver = make_user(org, user_id="acme.leaver")
    locked = lock_out(make_user(org, user_id="acme.locked"))
    other = make_org("Other Ltd")
    make_user(other, user_id="other.user")  # another firm's users are never part of it

    page = client.get("/console/reviews/new").get_data(as_text=True)
    assert "All users" in page
    assert "4 users" in page
    review_id = start_review(client)
    later = make_user(org, user_id="acme.later")  # created after the start: not in it
    items = items_by_user_id(review_id)
    assert sorted(items) == ["acme.admin", "acme.keep", "acme.leaver", "acme.locked"]
    assert items["acme.locked"].state_at_start == "system_disabled"
    assert later.user_id not in items

    # Starting again resumes the review in progress.
    assert start_review(client) == review_id
    page = client.get(f"/console/reviews/{review_id}").get_data(as_text=True)
    assert "acme.leaver" in page
    assert "acme.later" not in page
    assert "0 of 4" in page

    # Keep two at once (ticked boxes), then remove one through its own row: R4's question first.
    response = client.post(
        f"/console/reviews/{review_id}/decisions",
        data={"decision": "keep", "item": [items["acme.keep"].id, items["acme.admin"].id]},
    )
    assert response.status_code == 302
    row = f"remove:{items['acme.leaver'].id}"
    asked = client.post(f"/console/reviews/{review_id}/decisions", data={"row": row})
    assert asked.status_code == 200
    body = asked.get_data(as_text=True)
    assert CONFIRM in body
    assert "acme.leaver" in body
    assert refresh(leaver).enabled  # nothing changed before OK
    done = client.post(
        f"/console/reviews/{review_id}/decisions",
        data={"decision": "remove", "item": items["acme.leaver"].id, "confirmed": "yes"},
    )
    assert done.status_code == 302
    gone = refresh(leaver)
    assert (gone.enabled, gone.active) == (False, False)
    [removed] = audit_events(gone, rules.EventKind.ACCESS_REMOVED.value)
    assert removed.actor == "acme.admin"
    # A user already without access: "remove" records the decision and changes nothing.
    client.post(
        f"/console/reviews/{review_id}/decisions",
        data={"decision": "remove", "item": items["acme.locked"].id, "confirmed": "yes"},
    )
    assert refresh(locked).disabled_reason == "lockout"

    # Sign-off needs the box ticked.
    refused = client.post(f"/console/reviews/{review_id}/sign-off", data={})
    assert refused.status_code == 302
    follow = client.get(refused.headers["Location"]).get_data(as_text=True)
    assert service.NOT_CONFIRMED in follow
    client.post(f"/console/reviews/{review_id}/sign-off", data={"confirm": "yes"})
    db.session.rollback()
    review = db.session.get(AccessReview, review_id)
    assert review is not None
    assert review.finished_at is not None
    assert (review.started_by, review.signed_off_by) == ("acme.admin", "acme.admin")

    items = items_by_user_id(review_id)
    assert {k: (v.decision, v.outcome) for k, v in items.items()} == {
        "acme.admin": ("keep", "kept"),
        "acme.keep": ("keep", "kept"),
        "acme.leaver": ("remove", "removed"),
        "acme.locked": ("remove", "no_access"),
    }
    assert all(v.decided_by == "acme.admin" and v.decided_at for v in items.values())
    # Decisions cannot change once signed off.
    client.post(
        f"/console/reviews/{review_id}/decisions",
        data={"decision": "keep", "item": items["acme.leaver"].id},
    )
    assert items_by_user_id(review_id)["acme.leaver"].decision == "remove"

    page = client.get(f"/console/reviews/{review_id}").get_data(as_text=True)
    assert "Signed off" in page
    assert "Finish and sign off" not in page
    listing = client.get("/console/reviews").get_data(as_text=True)
    assert f"/console/reviews/{review_id}" in listing
    assert "by acme.admin" in listing
    assert [e.kind for e in audit_events(kind=kinds.ACCESS_REVIEW_STARTED)] == [
        kinds.ACCESS_REVIEW_STARTED
    ]
    assert len(audit_events(kind=kinds.ACCESS_REVIEW_DECISION)) == 4
    [signed] = audit_events(kind=kinds.ACCESS_REVIEW_SIGNED_OFF)
    assert signed.actor_id == admin.id
    assert signed.organisation_id == org.id
    assert keep_me.user_id in items


def test_a_review_of_the_users_list_filter(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org, "f.admin")
    make_user(org, user_id="f.second", profile=Profile.ADMINISTRATOR)
    make_user(org, user_id="f.handler")
    page = client.get("/console/users?profile=administrator").get_data(as_text=True)
    assert "/console/reviews/new?profile=administrator" in page
    page = client.get("/console/reviews/new?profile=administrator").get_data(as_text=True)
    assert "Users profile Administrator" in page
    assert "2 users" in page
    review_id = start_review(client, profile="administrator")
    assert sorted(items_by_user_id(review_id)) == ["f.admin", "f.second"]


def test_refusals_in_a_review_are_the_users_lists(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org, "r.admin")
    second = make_user(org, user_id="r.second", profile=Profile.ADMINISTRATOR)
    handler = make_user(org, user_id="r.handler")
    review_id = start_review(client)
    items = items_by_user_id(review_id)
    # Bulk: yourself is refused (R4), the others go on.
    ids = [items[u].id for u in ("r.admin", "r.handler")]
    response = client.post(
        f"/console/reviews/{review_id}/decisions",
        data={"decision": "remove", "item": ids, "confirmed": "yes"},
        follow_redirects=True,
    )
    body = response.get_data(as_text=True)
    assert "r.admin: You cannot remove your own access." in body
    assert "Access removed for 1 user: r.handler." in body
    assert refresh(admin).enabled
    assert not refresh(handler).enabled
    items = items_by_user_id(review_id)
    assert items["r.admin"].decision is None
    [refusal] = audit_events(admin, rules.EventKind.REMOVE_REFUSED.value)
    assert refusal.reason == "refused_self"

    # The last Administrator with access: refused, whoever asks (here after the reviewer's own
    # expiry date was reached, not yet swept: it no longer counts as having access).
    with write_transaction(db.session):
        db.session.get(User, admin.id).expires_on = clock.today()  # type: ignore[union-attr]
    actor = refresh(admin)
    with write_transaction(db.session):
        review = db.session.get(AccessReview, review_id)
        assert review is not None
        result = service.decide(
            actor,
            review,
            [items["r.second"].id],
            service.Decision.REMOVE,
            now=clock.now(),
            today=clock.today(),
        )
    [(item, why)] = result.refused
    assert item.user_id == "r.second"
    assert "last Administrator with access" in why
    assert refresh(second).enabled


def test_another_firms_review_and_items_do_not_exist_here(client: FlaskClient) -> None:
    other = make_org()
    other_client_admin = make_user(other, profile=Profile.ADMINISTRATOR)
    victim = make_user(other, user_id="victim")
    with write_transaction(db.session):
        theirs, _ = service.start(
            other_client_admin,
            service.queries.UserFilters(),
            now=clock.now(),
            today=clock.today(),
        )
    their_item = items_by_user_id(theirs.id)["victim"]
    org = make_org()
    log_in_admin(client, org)
    for url in (
        f"/console/reviews/{theirs.id}",
        f"/console/reviews/{theirs.id}/export.csv",
        f"/console/reviews/{theirs.id}/print",
    ):
        assert client.get(url).status_code == 404
    assert client.post(f"/console/reviews/{theirs.id}/sign-off").status_code == 404
    mine = start_review(client)
    response = client.post(
        f"/console/reviews/{mine}/decisions",
        data={"decision": "remove", "item": their_item.id, "confirmed": "yes"},
        follow_redirects=True,
    )
    assert "1 not found in this review" in response.get_data(as_text=True)
    assert refresh(victim).enabled


def test_the_export_and_the_printable_record(client: FlaskClient) -> None:
    org = make_org("Acme, Claims")
    log_in_admin(client, org, "x.admin")
    sneaky = make_user(org, user_id="x.sneaky")
    with write_transaction(db.session):
        db.session.get(User, sneaky.id).full_name = '=HYPERLINK("http://evil")'  # type: ignore[union-attr]
    review_id = start_review(client)
    items = items_by_user_id(review_id)
    client.post(
        f"/console/reviews/{review_id}/decisions",
        data={"decision": "keep", "item": [i.id for i in items.values()]},
    )
    client.post(f"/console/reviews/{review_id}/sign-off", data={"confirm": "yes"})
    response = client.get(f"/console/reviews/{review_id}/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f"access-review-acme-claims-{review_id}.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["user_id"] for r in rows] == ["x.admin", "x.sneaky"]
    sneaky_row = rows[1]
    assert sneaky_row["full_name"] == '\'=HYPERLINK("http://evil")'
    assert sneaky_row["organisation"] == "Acme, Claims"
    assert (sneaky_row["decision"], sneaky_row["outcome"]) == ("keep", "kept")
    assert sneaky_row["decided_by"] == "x.admin"
    assert sneaky_row["signed_off_by"] == "x.admin"
    assert sneaky_row["started_at"].endswith("Z")
    assert sneaky_row["finished_at"].endswith("Z")
    assert sneaky_row["state_at_start"] == "has_access"

    printed = client.get(f"/console/reviews/{review_id}/print").get_data(as_text=True)
    assert 'href="/static/review-print.css" media="print"' in printed
    assert "Signed off by" in printed
    assert "x.sneaky" in printed
    assert "&#34;http://evil&#34;" in printed or "&quot;http://evil&quot;" in printed


@pytest.mark.config(PORTAL_ACCESS_REVIEW_DAYS=90)
def test_the_dashboard_says_when_the_next_review_is_due(client: FlaskClient) -> None:
    with clock.frozen(START):
        org = make_org("Due Ltd")
        admin = make_user(org, user_id="d.admin", profile=Profile.ADMINISTRATOR)
        make_user(org, user_id="d.second", profile=Profile.ADMINISTRATOR)
    with clock.frozen(START + timedelta(days=10)):
        assert login(client, admin.user_id, door="console").status_code == 302
        page = client.get("/console/").get_data(as_text=True)
        assert "No access review has been signed off yet." in page
        assert "Next review due by" in page
        assert "31 May 2026" in page
    with clock.frozen(START + timedelta(days=90)):
        assert login(client, admin.user_id, door="console").status_code == 302
        page = client.get("/console/").get_data(as_text=True)
        assert "A review is due" in page
        review_id = start_review(client)
        items = items_by_user_id(review_id)
        client.post(
            f"/console/reviews/{review_id}/decisions",
            data={"decision": "keep", "item": [i.id for i in items.values()]},
        )
        client.post(f"/console/reviews/{review_id}/sign-off", data={"confirm": "yes"})
        page = client.get("/console/").get_data(as_text=True)
        assert "Last review signed off on" in page
        assert "d.admin" in page
        assert "29 August 2026" in page  # 31 May + 90 days
        assert "A review is due" not in page


@pytest.mark.config(PORTAL_ACCESS_REVIEW_DAYS=30)
def test_the_review_period_is_a_setting(client: FlaskClient) -> None:
    with clock.frozen(START):
        org = make_org()
        admin = make_user(org, profile=Profile.ADMINISTRATOR)
    with clock.frozen(START + timedelta(days=1)):
        login(client, admin.user_id, door="console")
        page = client.get("/console/").get_data(as_text=True)
        assert "1 April 2026" in page  # 2 March + 30 days


def test_the_review_pages_its_users_and_escapes_their_names(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org, "p.admin")
    hostile = make_user(org, user_id="p.hostile")
    with write_transaction(db.session):
        db.session.get(User, hostile.id).full_name = HOSTILE  # type: ignore[union-attr]
    add_users(org, 55, "p.h")
    review_id = start_review(client)
    first = client.get(f"/console/reviews/{review_id}").get_data(as_text=True)
    assert f'href="/console/reviews/{review_id}?page=2"' in first
    second = client.get(
        f"/console/reviews/{review_id}?page=2",
        headers={"HX-Request": "true", "HX-Target": "review-items"},
    )
    body = second.get_data(as_text=True)
    assert body.startswith('<div id="review-items">') or '<div id="review-items">' in body[:400]
    assert "<html" not in body
    assert "p.hostile" in body  # "p.h0.." sort before "p.hostile"
    assert HOSTILE not in body
    assert "&lt;img src=x" in body
    assert "HX-Request" in second.headers["Vary"]
    undecided = client.get(f"/console/reviews/{review_id}?show=undecided&page=2")
    assert f'rel="prev" href="/console/reviews/{review_id}?show=undecided"' in undecided.get_data(
        as_text=True
    )


def test_erasing_a_firm_erases_its_reviews(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    org = make_org("Leaving With Reviews")
    log_in_admin(client, org, "lw.admin")
    make_user(org, user_id="lw.handler")
    review_id = start_review(client)
    runner = app.test_cli_runner()
    export = tmp_path / "leaving.zip"
    assert runner.invoke(args=["portal", "org", "export", org.name, str(export)]).exit_code == 0
    result = runner.invoke(
        args=["portal", "org", "delete", org.name, "--export", str(export)],
        input=f"{org.name}\n",
    )
    assert result.exit_code == 0, result.output
    db.session.rollback()
    assert db.session.get(AccessReview, review_id) is None
    assert items_by_user_id(review_id) == {}
