"""Importing users from CSV at ``/console/users/import`` (docs/rules.md §4, §9): the preview
kept in the database with every row's outcome, ``confirm=yes`` posted to the preview's own URL,
one-time passwords downloaded from the apply response or emailed through the queue (sealed),
idempotence by User ID, an export imported back unchanged, a 10,000-row preview, and the
background job path.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse
from werkzeug.test import encode_multipart

from portal import clock
from portal import messages
from portal.accounts import service
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.console import user_import
from portal.extensions import db
from portal.jobs import queue
from portal.mail_queue import QueuedMail
from tests.console.bulk_helpers import fast_users
from tests.console.users_helpers import log_in_admin
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh

PREVIEW = re.compile(r"^/console/users/import/(\d+)$")


def upload(client: FlaskClient, content: bytes | str, name: str = "users.csv") -> TestResponse:
    raw = content.encode("utf-8") if isinstance(content, str) else content
    # Encoded here, in memory: the test client spools a large body to a temporary file that
    # it never closes (a ResourceWarning).
    boundary, body = encode_multipart(MultiDict({"file": FileStorage(io.BytesIO(raw), name)}))
    return client.post(
        "/console/users/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def preview_id(response: TestResponse) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)[:800]
    found = PREVIEW.match(response.headers["Location"])
    assert found is not None
    db.session.rollback()  # see what the request committed
    return int(found.group(1))


def outcomes(import_id: int) -> dict[str, str]:
    """User ID → outcome (and detail), from the stored preview."""
    db.session.rollback()
    found: dict[str, str] = {}
    for r in sorted(user_import.rows(import_id, limit=100_000), key=lambda r: r.line):
        found.setdefault(r.user_id, r.outcome + (f": {r.detail}" if r.detail else ""))
    return found


def future(days: int = 100) -> str:
    return (clock.today() + timedelta(days=days)).isoformat()


def test_preview_of_every_outcome_changes_nothing(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    existing = make_user(org, user_id="kept.same")
    renamed = make_user(org, user_id="to.rename")
    make_user(make_org(), user_id="other.firm")
    today_uk = clock.today().strftime("%d/%m/%Y")
    text = "\n".join(
        [
            "user_id,full_name,email,profile,expires_on",
            f"new.one,New One,new.one@example.com,claims_handler,{future()}",
            f"KEPT.SAME,,,,{existing.expires_on.isoformat()}",  # type: ignore[union-attr]
            "to.rename,Renamed Person,,,",
            "new.one,Again,again@example.com,claims_handler,",
            "bad.email,Bad Email,not-an-address,claims_handler,",
            f"old.date,Old Date,old@example.com,claims_handler,{today_uk}",
            "who.knows,Who Knows,who@example.com,superuser,",
            "other.firm,Other Firm,o@example.com,claims_handler,",
            f"{admin.user_id},,,claims_handler,",
        ]
    )
    import_id = preview_id(upload(client, text))
    found = outcomes(import_id)
    assert found["new.one"] == "create"
    assert found["KEPT.SAME"] == "unchanged"
    assert found["to.rename"].startswith("update: full_name: Name to.rename -> Renamed Person")
    rows = user_import.rows(import_id, outcome="refused")
    by_id = {r.user_id: r.detail or "" for r in rows}
    duplicates = [r for r in rows if r.user_id == "new.one"]
    assert duplicates[0].detail == "Duplicate User ID in the file (also on line 2)"
    assert by_id["bad.email"].startswith("Bad email address")
    assert by_id["old.date"] == messages.EXPIRY_NOT_AFTER_TODAY
    assert by_id["who.knows"].startswith("Unknown profile 'superuser'")
    assert by_id["other.firm"] == user_import.TAKEN_ELSEWHERE
    assert by_id[admin.user_id] == user_import.DEMOTE_SELF
    assert service.find_user("new.one") is None  # nothing changed yet
    assert refresh(renamed).full_name == "Name to.rename"

    page = client.get(f"/console/users/import/{import_id}")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    body = page.get_data(as_text=True)
    assert "Create: <strong>1</strong>" in body
    assert "Refused: <strong>6</strong>" in body
    assert f'action="/console/users/import/{import_id}"' in body
    assert 'name="confirm" value="yes"' in body


@pytest.mark.usefixtures("app")
def test_demoting_the_last_administrator_with_access_is_refused() -> None:
    """The file's own order counts: the second demotion would leave no Administrator."""
    org = make_org()
    a = make_user(org, user_id="first.admin", profile=Profile.ADMINISTRATOR)
    b = make_user(org, user_id="second.admin", profile=Profile.ADMINISTRATOR)
    actor = make_user(org, user_id="the.actor")  # as the rules see it: not itself counted
    text = "user_id,profile\nfirst.admin,claims_handler\nsecond.admin,claims_handler\n"
    rows = user_import.classify(
        text,
        org_id=org.id,
        actor=actor,
        now=clock.now(),
        today=clock.today(),
        default_expiry=clock.today() + timedelta(days=365),
    )
    assert [(r.user_id, r.outcome) for r in rows] == [
        (a.user_id, "update"),
        (b.user_id, "refused"),
    ]
    assert rows[1].detail == user_import.DEMOTE_LAST


def test_semicolons_windows_1252_bom_and_uk_dates(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    day = clock.today() + timedelta(days=30)
    text = (
        "user_id;full_name;email;profile;expires_on\r\n"
        f"zoe.b;Zoë Brontë;zoe@example.com;Claims Handler;{day:%d/%m/%Y}\r\n"
    )
    import_id = preview_id(upload(client, text.encode("cp1252")))
    row = user_import.rows(import_id)[0]
    assert (row.outcome, row.full_name, row.profile, row.expires_on) == (
        "create",
        "Zoë Brontë",
        "claims_handler",
        day,
    )
    import_id = preview_id(upload(client, b"\xef\xbb\xbf" + text.replace("zoe", "zed").encode()))
    assert user_import.rows(import_id)[0].outcome == "create"


def test_a_file_that_is_not_a_users_csv_is_refused(client: FlaskClient) -> None:
    log_in_admin(client, make_org())
    response = upload(client, "name,mail\nx,y\n")
    assert response.status_code == 422
    assert "user_id" in response.get_data(as_text=True)
    assert client.post("/console/users/import", data={}).status_code == 422


def test_confirm_applies_with_a_download_and_is_idempotent(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    user = make_user(org, user_id="gets.renamed")
    text = (
        "user_id,full_name,email,profile,expires_on\n"
        f"fresh.one,Fresh One,fresh@example.com,claims_handler,{future(50)}\n"
        f"fresh.two,Fresh Two,fresh2@example.com,administrator,\n"
        "gets.renamed,New Name,,,\n"
    )
    import_id = preview_id(upload(client, text))
    not_confirmed = client.post(f"/console/users/import/{import_id}", data={})
    assert not_confirmed.status_code == 422
    assert service.find_user("fresh.one") is None

    applied = client.post(
        f"/console/users/import/{import_id}", data={"confirm": "yes", "delivery": "download"}
    )
    assert applied.status_code == 200
    assert applied.mimetype == "text/csv"
    assert applied.headers["Cache-Control"] == "no-store"
    assert "attachment" in applied.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(applied.get_data().decode("utf-8-sig"))))
    assert [r["user_id"] for r in rows] == ["fresh.one", "fresh.two"]
    db.session.rollback()
    fresh = service.find_user("fresh.one")
    assert fresh is not None
    assert fresh.must_change_password
    assert fresh.expires_on == clock.today() + timedelta(days=50)
    assert service.find_user("fresh.two").profile == "administrator"  # type: ignore[union-attr]
    assert refresh(user).full_name == "New Name"
    # The passwords are nowhere in the database.
    stored = " ".join(
        str(v) for r in user_import.rows(import_id) for v in (r.detail, r.result) if v
    )
    assert rows[0]["one_time_password"] not in stored
    assert db.session.scalar(select(func.count()).select_from(QueuedMail)) == 0

    again = client.post(
        f"/console/users/import/{import_id}", data={"confirm": "yes", "delivery": "download"}
    )
    assert again.status_code == 303  # applied already: nothing happens twice
    page = client.get(f"/console/users/import/{import_id}").get_data(as_text=True)
    assert "Import applied" in page
    # The same file again: by User ID, now unchanged.
    second = outcomes(preview_id(upload(client, text)))
    assert set(second.values()) == {"unchanged"}


def test_confirm_with_email_queues_sealed_one_time_passwords(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    text = (
        "user_id,full_name,email,profile\nmailed.one,Mailed One,mailed@example.com,claims_handler\n"
    )
    import_id = preview_id(upload(client, text))
    response = client.post(
        f"/console/users/import/{import_id}", data={"confirm": "yes", "delivery": "email"}
    )
    assert response.status_code == 303
    db.session.rollback()
    mail = db.session.scalar(select(QueuedMail).where(QueuedMail.ref == "mailed.one"))
    assert mail is not None
    assert mail.sealed
    assert mail.to_address == "mailed@example.com"
    assert "mailed.one" not in (mail.body or "")  # encrypted at rest


def test_an_export_imports_back_unchanged(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    fast_users(org, 20, "round")
    tricky = make_user(org, user_id="tricky.one")
    from tests.console.users_helpers import rename

    rename(tricky, '=SUM(A1:A2) Ünïcödé, "quoted"; semi')
    past = make_user(org, user_id="past.date", expires_on=clock.today() - timedelta(days=3))
    assert past.expires_on is not None
    exported = client.get("/console/users/export.csv", buffered=True).get_data()
    import_id = preview_id(upload(client, exported, "users-export.csv"))
    found = outcomes(import_id)
    assert len(found) == 23
    assert set(found.values()) == {"unchanged"}, {
        k: v for k, v in found.items() if v != "unchanged"
    }


def test_a_10000_row_import_preview(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    fast_users(org, 2_000, "known")
    lines = ["user_id,full_name,email,profile,expires_on"]
    lines += [f"known{n:05d},Renamed {n},,," for n in range(2_000)]
    lines += [
        f"new{n:05d},New Person {n},new{n}@example.com,claims_handler,{future()}"
        for n in range(8_000)
    ]
    import_id = preview_id(upload(client, "\n".join(lines)))
    counts = user_import.counts(import_id)
    assert counts == {"update": 2_000, "create": 8_000}
    page = client.get(f"/console/users/import/{import_id}").get_data(as_text=True)
    assert "Create: <strong>8000</strong>" in page
    assert "emailed its one-time password (a download is not possible)" in page


@pytest.mark.config(PORTAL_IMPORT_BACKGROUND_OVER=2)
def test_large_imports_apply_in_the_background_by_email(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    lines = ["user_id,full_name,email,profile"]
    lines += [f"bg{n},Background {n},bg{n}@example.com,claims_handler" for n in range(3)]
    import_id = preview_id(upload(client, "\n".join(lines)))
    response = client.post(
        f"/console/users/import/{import_id}", data={"confirm": "yes", "delivery": "download"}
    )
    assert response.status_code == 303
    page = client.get(f"/console/users/import/{import_id}").get_data(as_text=True)
    assert 'id="import-progress"' in page
    assert "0 of 3 rows" in page
    db.session.rollback()
    assert service.find_user("bg0") is None
    assert queue.run_queued() == 1
    db.session.rollback()
    assert (
        db.session.scalar(select(func.count()).select_from(User).where(User.user_id.like("bg%")))
        == 3
    )
    assert db.session.scalar(select(func.count()).select_from(QueuedMail)) == 3
    fragment = client.get(
        f"/console/users/import/{import_id}",
        headers={"HX-Request": "true", "HX-Target": "import-progress"},
    )
    assert fragment.headers.get("HX-Refresh") == "true"


def test_another_firms_import_is_not_found(client: FlaskClient, app: object) -> None:
    org = make_org()
    log_in_admin(client, org)
    import_id = preview_id(upload(client, "user_id\nsomeone\n"))
    other = app.test_client()  # type: ignore[attr-defined]
    log_in_admin(other, make_org())
    assert other.get(f"/console/users/import/{import_id}").status_code == 404
    assert (
        other.post(f"/console/users/import/{import_id}", data={"confirm": "yes"}).status_code == 404
    )
