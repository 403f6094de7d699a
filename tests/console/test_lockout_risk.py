"""The firm never drifts into lockout (docs/rules.md §4): ``accounts.lockout_risk`` on both
databases (its edges: exactly 30 days, an expired Administrator not yet swept, disabled ones,
inactivity to the second, no Administrator at all; one firm or all at once), the Console
dashboard's warning with its one-click fixes, the Portal team's list, and the digest's warning
and review reminder through the real SMTP server."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from portal import clock
from portal.accounts import lockout_risk
from portal.accounts.lockout_risk import Risk
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.jobs import runner
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import remove_access
from tests.helpers import sign_in_as
from tests.mail_server import SmtpServer

NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
NIGHT = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 02:00 in London


def admin(org: Organisation, user_id: str, **fields: object) -> None:
    make_user(org, user_id=user_id, profile=Profile.ADMINISTRATOR, **fields)  # type: ignore[arg-type]


def risks() -> dict[str, tuple[Risk, int, int]]:
    return {
        r.name: (r.risk, r.administrators, r.lasting)
        for r in lockout_risk.at_risk(now=clock.now(), today=clock.today())
    }


def test_the_edges_of_the_risk(app: Flask) -> None:
    with clock.frozen(NOW):
        day30 = make_org("Day 30")  # both expire on day 30: at risk
        admin(day30, "d30.a", expires_on=TODAY + timedelta(days=30))
        admin(day30, "d30.b", expires_on=TODAY + timedelta(days=30))
        day31 = make_org("Day 31")  # one lasts until day 31: safe
        admin(day31, "d31.a", expires_on=TODAY + timedelta(days=30))
        admin(day31, "d31.b", expires_on=TODAY + timedelta(days=31))
        unswept = make_org("Unswept")  # expired today, still Enabled: does not count
        admin(unswept, "u.a")
        admin(unswept, "u.expired", expires_on=TODAY)
        disabled = make_org("Disabled")  # locked out and removed: neither counts
        admin(disabled, "x.a")
        lock_out(make_user(disabled, user_id="x.locked", profile=Profile.ADMINISTRATOR))
        remove_access(make_user(disabled, user_id="x.removed", profile=Profile.ADMINISTRATOR))
        nobody = make_org("Nobody")  # a Claims Handler only
        make_user(nobody, user_id="n.handler")
        idle60 = make_org("Idle 60")  # last use exactly 60 days ago: inactive just after day 30
        admin(idle60, "i60.a", created_at=NOW - timedelta(days=60))
        admin(idle60, "i60.b", created_at=NOW - timedelta(days=60))
        idle61 = make_org("Idle 60 and a second")  # a second earlier: inactive within 30 days
        admin(idle61, "i61.a", created_at=NOW - timedelta(days=60, seconds=1))
        admin(idle61, "i61.b", created_at=NOW - timedelta(days=60, seconds=1))
        mixed = make_org("Mixed")  # one expires, the other goes inactive: both within 30 days
        admin(mixed, "m.a", expires_on=TODAY + timedelta(days=5))
        admin(mixed, "m.b", created_at=NOW - timedelta(days=80))
        safe = make_org("Safe")
        admin(safe, "s.a")
        admin(safe, "s.b")

        found = risks()
        assert found == {
            "Day 30": (Risk.ALL_ENDING, 2, 0),
            "Disabled": (Risk.ONE_LEFT, 1, 1),
            "Idle 60 and a second": (Risk.ALL_ENDING, 2, 0),
            "Mixed": (Risk.ALL_ENDING, 2, 0),
            "Nobody": (Risk.NONE_LEFT, 0, 0),
            "Unswept": (Risk.ONE_LEFT, 1, 1),
        }
        # One firm at a time says the same as all at once.
        one = lockout_risk.organisation_risk(day30.id, now=clock.now(), today=clock.today())
        assert one is not None
        assert (one.risk, one.ending) == (Risk.ALL_ENDING, True)
        assert lockout_risk.organisation_risk(safe.id, now=clock.now(), today=clock.today()) is None
        ending = lockout_risk.administrators_ending(mixed.id, now=clock.now(), today=clock.today())
        assert [(a.user_id, a.why, a.ends_on) for a in ending] == [
            ("m.a", "expiry", TODAY + timedelta(days=5)),
            ("m.b", "inactivity", TODAY + timedelta(days=10)),
        ]


def test_the_dashboard_warns_with_the_fix_one_click_away(client: FlaskClient) -> None:
    with clock.frozen(NOW):
        org = make_org("Lonely Ltd")
        make_user(
            org,
            user_id="lonely.admin",
            profile=Profile.ADMINISTRATOR,
            expires_on=TODAY + timedelta(days=10),
        )
        assert login(client, "lonely.admin", door="console").status_code == 302
        page = client.get("/console/").get_data(as_text=True)
        assert 'id="lockout-risk"' in page
        assert "Your organisation has only one Administrator with access" in page
        assert 'href="/console/users/new?profile=administrator"' in page
        assert "Extend the expiry date of lonely.admin" in page
        assert "25 Jun 2026" in page
        form = client.get("/console/users/new?profile=administrator").get_data(as_text=True)
        assert '<option selected value="administrator">' in form


def test_no_warning_with_administrators_enough(client: FlaskClient) -> None:
    with clock.frozen(NOW):
        org = make_org()
        make_user(org, profile=Profile.ADMINISTRATOR)
        sign_in_as(client, Profile.ADMINISTRATOR, org)
        page = client.get("/console/").get_data(as_text=True)
        assert 'id="lockout-risk"' not in page


def test_the_portal_team_sees_every_firm_at_risk(client: FlaskClient) -> None:
    with clock.frozen(NOW):
        alone = make_org("Alone Ltd")
        admin(alone, "alone.a")
        fine = make_org("Fine Ltd")
        admin(fine, "fine.a")
        admin(fine, "fine.b")
        sign_in_as(client, Profile.PORTAL_TEAM)
        home = client.get("/operator/").get_data(as_text=True)
        assert 'href="/operator/at-risk"' in home
        page = client.get("/operator/at-risk").get_data(as_text=True)
        assert "Alone Ltd" in page
        assert "One Administrator with access left" in page
        assert f'href="/operator/organisations/{alone.id}/administrators/new"' in page
        assert "Fine Ltd" not in page
    sign_in_as(client, Profile.HELPDESK)
    assert client.get("/operator/at-risk").status_code == 403


def test_the_digest_warns_and_reminds(app: Flask, smtp_server: SmtpServer) -> None:
    app.config.update(PORTAL_MAIL_SERVER=smtp_server.host, PORTAL_MAIL_PORT=smtp_server.port)
    created = NIGHT - timedelta(days=100)
    with clock.frozen(created):
        org = make_org("Solo Claims")  # created 100 days ago, never reviewed: review due
        idle = make_org("Idle Claims")
    make_user(
        org,
        user_id="solo.admin",
        profile=Profile.ADMINISTRATOR,
        expires_on=TODAY + timedelta(days=10),
        created_at=NIGHT - timedelta(days=10),
    )
    # Nobody expiring, but both Administrators go inactive within 30 days.
    admin(idle, "idle.a", created_at=NIGHT - timedelta(days=70))
    admin(idle, "idle.b", created_at=NIGHT - timedelta(days=70))
    with clock.frozen(NIGHT - timedelta(days=1)):
        make_org("Young Ltd")  # nothing to say: no email
    with clock.frozen(NIGHT):
        result = runner.run_nightly()
    assert result.status == "ok", result.errors
    assert result.counts["expiry_digests"] == {"organisations": 2, "digests": 3}
    messages = {m["To"]: m for m in smtp_server.wait_for(3)}
    solo = messages["solo.admin@example.com"]
    assert solo["Subject"] == "Claims Portal: 1 user of Solo Claims expire soon"
    body = solo.get_content()
    assert "WARNING: Solo Claims has only one Administrator with access" in body
    assert "solo.admin (Name solo.admin): expires on 25 Jun 2026" in body
    assert "/console/users/new?profile=administrator" in body
    assert "REMINDER: an access review of Solo Claims is due (since 05 Jun 2026)" in body
    assert "/console/reviews/new" in body
    idle_mail = messages["idle.a@example.com"]
    assert (
        idle_mail["Subject"]
        == "Claims Portal: every Administrator of Idle Claims loses access soon"
    )
    idle_body = idle_mail.get_content()
    assert "WARNING: every Administrator of Idle Claims loses access within 30 days" in idle_body
    assert "idle.a (Name idle.a): becomes inactive on" in idle_body
