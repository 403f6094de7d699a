"""Firm offboarding (``portal org export`` / ``portal org delete``), audit retention, and the
append-only audit trail: exactly those two paths may delete audit rows."""

from __future__ import annotations

import csv
import io
import json
import stat
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from portal import clock
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit import erasure
from portal.audit.models import AppendOnlyError
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import Screenshot
from tests.factories import make_org
from tests.factories import make_user
from tests.helpdesk_factories import make_request
from tests.helpdesk_factories import png_bytes


def portal(cli: FlaskCliRunner, *args: str, input: str | None = None) -> Result:
    return cli.invoke(args=["portal", *args], input=input)


def count(model: type, *where: object) -> int:
    value = db.session.scalar(select(func.count()).select_from(model).where(*where))
    db.session.rollback()
    return int(value or 0)


@pytest.fixture
def firms() -> dict[str, object]:
    """Two firms with users, audit events and Helpdesk requests, some linked, one not."""
    leaving = make_org("Leaving Claims Ltd")
    staying = make_org("Staying Claims Ltd")
    admin = make_user(leaving, user_id="leave.admin", profile=Profile.ADMINISTRATOR)
    make_user(leaving, user_id="leave.handler")
    make_user(staying, user_id="stay.admin", profile=Profile.ADMINISTRATOR)
    linked_by_user_id = make_request(user_id="LEAVE.HANDLER", organisation_name="Someone Else")
    named = make_request(organisation_name="  leaving claims LTD ", screenshot=png_bytes())
    sent = make_request(organisation_name="typo")
    with write_transaction(db.session):
        db.session.get(HelpdeskRequest, sent.id).submitted_by_id = admin.id  # type: ignore[union-attr]
    unrelated = make_request(organisation_name="Leaving Claims", user_id="stay.admin")
    db.session.rollback()
    return {
        "matched": {linked_by_user_id.id, named.id, sent.id},
        "unrelated": unrelated.id,
    }


def test_export_holds_the_firms_users_audit_and_matched_requests(
    app: Flask, runner: FlaskCliRunner, firms: dict[str, object], tmp_path: Path
) -> None:
    target = tmp_path / "leaving.zip"
    result = portal(runner, "org", "export", "leaving claims ltd", str(target))
    assert result.exit_code == 0, result.output
    assert "2 users" in result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with zipfile.ZipFile(target) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        users = list(csv.DictReader(io.StringIO(zf.read("users.csv").decode())))
        audit = list(csv.DictReader(io.StringIO(zf.read("audit_events.csv").decode())))
        requests = json.loads(zf.read("helpdesk_requests.json"))
        names = zf.namelist()
    assert {u["user_id"] for u in users} == {"leave.admin", "leave.handler"}
    assert "password_hash" not in users[0]
    assert {a["subject"] for a in audit if a["kind"] == "user_created"} == {
        "leave.admin",
        "leave.handler",
    }
    assert {r["id"] for r in requests} == firms["matched"]
    assert manifest["counts"] == {"users": 2, "audit": len(audit), "requests": 3}
    assert "organisation name" in manifest["helpdesk_requests_matched_by"]
    shot = next(r["screenshot"] for r in requests if r["screenshot"])
    assert shot in names
    again = portal(runner, "org", "export", "Leaving Claims Ltd", str(target))
    assert again.exit_code != 0
    assert "already exists" in again.output
    missing = portal(runner, "org", "export", "No Such Ltd", str(tmp_path / "x.zip"))
    assert missing.exit_code != 0
    assert "No organisation" in missing.output


def test_delete_needs_a_current_export_and_the_name_typed(
    app: Flask, runner: FlaskCliRunner, firms: dict[str, object], tmp_path: Path
) -> None:
    export = tmp_path / "leaving.zip"
    assert portal(runner, "org", "export", "Leaving Claims Ltd", str(export)).exit_code == 0
    other = tmp_path / "staying.zip"
    assert portal(runner, "org", "export", "Staying Claims Ltd", str(other)).exit_code == 0
    users_before, audit_before = count(User), count(AuditEvent)

    wrong_export = portal(runner, "org", "delete", "Leaving Claims Ltd", "--export", str(other))
    assert wrong_export.exit_code != 0
    assert "another organisation" in wrong_export.output
    typo = portal(
        runner, "org", "delete", "Leaving Claims Ltd", "--export", str(export), input="Leaving\n"
    )
    assert typo.exit_code != 0
    assert "does not match" in typo.output
    assert (count(User), count(AuditEvent)) == (users_before, audit_before)

    make_user(
        db.session.scalar(select(Organisation).where(Organisation.name_key == "leaving claims ltd"))
    )
    db.session.rollback()
    stale = portal(runner, "org", "delete", "Leaving Claims Ltd", "--export", str(export))
    assert stale.exit_code != 0
    assert "out of date" in stale.output
    assert count(User) == users_before + 1


def test_delete_erases_the_firm_and_records_it_in_the_operators_audit(
    app: Flask, runner: FlaskCliRunner, firms: dict[str, object], tmp_path: Path
) -> None:
    export = tmp_path / "leaving.zip"
    assert portal(runner, "org", "export", "Leaving Claims Ltd", str(export)).exit_code == 0
    stay_audit = count(AuditEvent, AuditEvent.subject == "stay.admin")
    result = portal(
        runner,
        "org",
        "delete",
        "Leaving Claims Ltd",
        "--export",
        str(export),
        input="Leaving Claims Ltd\n",
    )
    assert result.exit_code == 0, result.output
    assert "Erased 'Leaving Claims Ltd': 2 users" in result.output
    assert count(Organisation, Organisation.name == "Leaving Claims Ltd") == 0
    assert count(User, User.user_id.like("leave.%")) == 0
    assert count(AuditEvent, AuditEvent.subject.like("leave.%")) == 0
    matched = firms["matched"]
    assert count(HelpdeskRequest, HelpdeskRequest.id.in_(matched)) == 0  # type: ignore[arg-type]
    assert count(Screenshot) == 0
    # The other firm and the unmatched request are untouched.
    assert count(User, User.user_id == "stay.admin") == 1
    assert count(AuditEvent, AuditEvent.subject == "stay.admin") == stay_audit
    assert count(HelpdeskRequest, HelpdeskRequest.id == firms["unrelated"]) == 1
    erased = db.session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "organisation_erased")
    ).one()
    assert erased.organisation_id is None
    assert erased.actor == "system"
    assert json.loads(erased.details or "{}")["organisation"] == "Leaving Claims Ltd"
    db.session.rollback()


def test_retention_purges_only_events_older_than_the_setting(app: Flask) -> None:
    long_ago = clock.now() - timedelta(days=2191)
    make_user(user_id="old.user", created_at=long_ago)
    make_user(user_id="new.user")
    total = count(AuditEvent)
    old = count(AuditEvent, AuditEvent.occurred_at < clock.now() - timedelta(days=2190))
    assert old >= 1
    with write_transaction(db.session):
        purged = erasure.purge_expired(db.session, now=clock.now(), retention_days=2190)
    assert purged == old
    assert count(AuditEvent) == total - old
    assert count(AuditEvent, AuditEvent.subject == "new.user") >= 1
    assert count(erasure.AuditErasurePermit) == 0


@pytest.mark.config(PORTAL_AUDIT_RETENTION_DAYS=30)
def test_the_nightly_job_purges_by_portal_audit_retention_days(app: Flask) -> None:
    from portal.jobs import runner as job_runner

    make_user(user_id="month.old", created_at=clock.now() - timedelta(days=31))
    make_user(user_id="fresh.one")
    db.session.rollback()
    result = job_runner.run_nightly(trigger="manual")
    assert result.counts["purge_audit"]["purged"] >= 1, result.counts
    assert count(AuditEvent, AuditEvent.subject == "month.old") == 0
    assert count(AuditEvent, AuditEvent.subject == "fresh.one") >= 1


def test_every_other_path_still_cannot_change_audit_events(app: Flask) -> None:
    make_user()
    db.session.commit()
    before = count(AuditEvent)
    for statement in ("UPDATE audit_events SET kind = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    # Even inside an erasure permit, an UPDATE is refused, and the ORM refuses both.
    with (
        pytest.raises(DBAPIError, match="append-only"),
        write_transaction(db.session),
        erasure.permit(db.session, erasure.RETENTION),
    ):
        db.session.execute(text("UPDATE audit_events SET kind = 'x'"))
    db.session.rollback()
    event = db.session.scalars(select(AuditEvent)).first()
    db.session.delete(event)
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    # A permit is never committed: after the block, deleting is refused again.
    with write_transaction(db.session), erasure.permit(db.session, erasure.RETENTION):
        pass
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("DELETE FROM audit_events"))
    db.session.rollback()
    assert count(AuditEvent) == before
    assert count(erasure.AuditErasurePermit) == 0


def test_a_permit_is_invisible_to_other_connections(app: Flask) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: no other connection can delete meanwhile")
    make_user()
    db.session.commit()
    before = count(AuditEvent)
    other = create_engine(db.engine.url)
    try:
        with (
            write_transaction(db.session),
            erasure.permit(db.session, erasure.RETENTION),
            other.connect() as conn,
            pytest.raises(DBAPIError, match="append-only"),
        ):
            conn.execute(text("DELETE FROM audit_events"))
    finally:
        other.dispose()
    assert count(AuditEvent) == before


def test_users_find_searches_every_firm(app: Flask, runner: FlaskCliRunner) -> None:
    make_user(make_org("Alpha Ltd"), user_id="jane.smith")
    make_user(make_org("Beta Ltd"), user_id="j.smithson")
    make_user(user_id="bob.jones")
    make_user(profile=Profile.HELPDESK, user_id="smith.helpdesk")
    db.session.rollback()
    found = portal(runner, "users", "find", "SMITH")
    assert found.exit_code == 0, found.output
    lines = found.output.splitlines()
    assert [line.split()[0] for line in lines] == ["j.smithson", "jane.smith", "smith.helpdesk"]
    assert "Alpha Ltd" in found.output
    assert "Beta Ltd" in found.output
    assert "(Portal team)" in found.output
    assert "No user matches" in portal(runner, "users", "find", "100%_").output
    limited = portal(runner, "users", "find", "smith", "--limit", "1")
    assert "more than 1" in limited.output
    assert portal(runner, "users", "find", "  ").exit_code != 0


def test_users_find_says_what_the_rules_say_of_access(app: Flask, runner: FlaskCliRunner) -> None:
    """A user past its expiry date whom the nightly sweep has not yet disabled has no access."""
    make_user(make_org("Gamma Ltd"), user_id="kept.smith")
    expired = make_user(make_org("Delta Ltd"), user_id="lapsed.smith")
    with write_transaction(db.session):
        db.session.execute(
            text("UPDATE users SET expires_on = :day WHERE id = :id"),
            {"day": clock.today() - timedelta(days=1), "id": expired.id},
        )
    db.session.rollback()
    lines = portal(runner, "users", "find", "smith").output.splitlines()
    assert [line.split()[0] for line in lines] == ["kept.smith", "lapsed.smith"]
    assert lines[0].endswith("has access")
    assert lines[1].endswith("no access")
