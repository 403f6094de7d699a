"""Newsletter: double opt-in against a real SMTP server (aiosmtpd), single-use confirmation
links stored only as hashes, unsubscribe without login from every newsletter email, the same
answer for known and unknown addresses, the Portal team's CSV, and the rate limit."""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy import text

from portal import background
from portal import clock
from portal import mail_queue
from portal.accounts.models import Profile
from portal.db import write_transaction
from portal.extensions import db
from portal.mail_queue import QueuedMail
from portal.newsletter import service
from portal.newsletter.models import CONFIRMED
from portal.newsletter.models import PENDING
from portal.newsletter.models import UNSUBSCRIBED
from portal.newsletter.models import Subscriber
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.helpers import csrf_token_in
from tests.helpers import without_signed_tokens
from tests.mail_server import SmtpServer

BASE = "https://portal.example.test"
CONFIRM_LINK = re.compile(re.escape(BASE) + r"/newsletter/confirm/([A-Za-z0-9_-]+)")
UNSUBSCRIBE_LINK = re.compile(re.escape(BASE) + r"/newsletter/unsubscribe/([A-Za-z0-9_.-]+)")


@pytest.fixture
def smtp(app: Flask, smtp_server: SmtpServer) -> Iterator[SmtpServer]:
    app.config.update(
        PORTAL_MAIL_SERVER=smtp_server.host,
        PORTAL_MAIL_PORT=smtp_server.port,
        PORTAL_BASE_URL=BASE,
    )
    yield smtp_server
    background.wait_idle(app)  # every mail delivered before the server stops


def _body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def sign_up(app: Flask, client: FlaskClient, email: str, **headers: str) -> str:
    response = client.post("/newsletter", data={"email": email}, headers=headers)
    assert response.status_code == 302
    assert response.headers["Location"] == "/newsletter/check-your-email"
    background.wait_idle(app)
    return client.get(response.headers["Location"]).text


def subscriber(email: str) -> Subscriber:
    db.session.rollback()
    db.session.expire_all()
    found = db.session.scalar(select(Subscriber).where(Subscriber.email_key == email.casefold()))
    assert found is not None
    return found


def test_double_opt_in_and_unsubscribe(app: Flask, client: FlaskClient, smtp: SmtpServer) -> None:
    page = sign_up(app, client, "Ada@Example.com", Host="evil.test")
    assert "Check your email" in page
    [message] = smtp.wait_for(1)
    assert message["To"] == "Ada@Example.com"
    assert message["Subject"] == "Confirm your newsletter subscription"
    body = _body(message)
    token = CONFIRM_LINK.search(body)
    assert token is not None, body  # built from PORTAL_BASE_URL, never the Host header
    assert "evil.test" not in body
    assert UNSUBSCRIBE_LINK.search(body)
    row = subscriber("ada@example.com")
    assert row.status == PENDING  # not subscribed until confirmed
    assert row.confirm_token_hash == service.hash_token(token.group(1))
    assert token.group(1) not in (row.confirm_token_hash or "")  # only the hash is stored

    # Opening the link shows a button (mail scanners that follow links confirm nothing).
    opened = client.get(f"/newsletter/confirm/{token.group(1)}")
    assert opened.status_code == 200
    # same-origin: the token never leaves the site, and the form's POST keeps its Referer
    # (which Flask-WTF requires over HTTPS: test_confirm_and_unsubscribe_work_over_https).
    assert opened.headers["Referrer-Policy"] == "same-origin"
    assert subscriber("ada@example.com").status == PENDING
    done = client.post("/newsletter/confirm", data={"token": token.group(1)})
    assert done.status_code == 200
    assert "Subscription confirmed" in done.text
    row = subscriber("ada@example.com")
    assert (row.status, row.confirm_token_hash) == (CONFIRMED, None)
    assert row.confirmed_at is not None

    # Single use.
    again = client.post("/newsletter/confirm", data={"token": token.group(1)})
    assert again.status_code == 404
    assert client.get(f"/newsletter/confirm/{token.group(1)}").status_code == 404

    # The welcome email has a working unsubscribe link too; no login needed.
    background.wait_idle(app)
    welcome = smtp.wait_for(2)[1]
    assert welcome["Subject"] == "Your newsletter subscription is confirmed"
    link = UNSUBSCRIBE_LINK.search(_body(welcome))
    assert link is not None
    anonymous = app.test_client()
    page = anonymous.get(f"/newsletter/unsubscribe/{link.group(1)}")
    assert page.status_code == 200
    assert "Ada@Example.com" in page.text
    assert subscriber("ada@example.com").status == CONFIRMED  # GET changes nothing
    gone = anonymous.post("/newsletter/unsubscribe", data={"token": link.group(1)})
    assert gone.status_code == 200
    assert "You have unsubscribed" in gone.text
    assert subscriber("ada@example.com").status == UNSUBSCRIBED

    # The link in the first (confirmation) email works as well, and stays harmless.
    first = UNSUBSCRIBE_LINK.search(body)
    assert first is not None
    assert (
        anonymous.post("/newsletter/unsubscribe", data={"token": first.group(1)}).status_code == 200
    )


def test_the_same_answer_whether_or_not_already_subscribed(
    app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    fresh = sign_up(app, client, "new@example.com")
    # A confirmed subscriber signs up again (after the per-address pause).
    sign_up(app, client, "old@example.com")
    # Mail goes from background threads: find old's by its recipient, not by its order.
    [to_old] = [m for m in smtp.wait_for(2) if m["To"] == "old@example.com"]
    token = CONFIRM_LINK.search(_body(to_old))
    assert token is not None
    client.post("/newsletter/confirm", data={"token": token.group(1)})
    background.wait_idle(app)
    smtp.clear()
    clock.advance(service.RESEND_AFTER + timedelta(seconds=1))

    known = sign_up(app, client, "OLD@example.com")
    assert without_signed_tokens(known) == without_signed_tokens(fresh)
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "You are already subscribed to the newsletter"
    assert UNSUBSCRIBE_LINK.search(_body(message))
    assert subscriber("old@example.com").status == CONFIRMED


def test_one_email_per_address_per_pause(app: Flask, client: FlaskClient, smtp: SmtpServer) -> None:
    for _ in range(3):
        sign_up(app, client, "flood@example.com")
    assert len(smtp.wait_for(1)) == 1
    clock.advance(service.RESEND_AFTER + timedelta(seconds=1))
    sign_up(app, client, "flood@example.com")
    assert len(smtp.wait_for(2)) == 2
    # Only the newest link works.
    first, second = (CONFIRM_LINK.search(_body(m)) for m in smtp.messages)
    assert first is not None
    assert second is not None
    assert client.post("/newsletter/confirm", data={"token": first.group(1)}).status_code == 404
    assert client.post("/newsletter/confirm", data={"token": second.group(1)}).status_code == 200


def test_an_expired_confirmation_link_does_nothing(
    app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    sign_up(app, client, "late@example.com")
    token = CONFIRM_LINK.search(_body(smtp.wait_for(1)[0]))
    assert token is not None
    clock.advance(timedelta(hours=app.config["PORTAL_NEWSLETTER_CONFIRM_HOURS"], seconds=1))
    assert client.post("/newsletter/confirm", data={"token": token.group(1)}).status_code == 404
    assert subscriber("late@example.com").status == PENDING


@pytest.mark.parametrize(
    "token", ["x", "a" * 500, "WzEsImFiYyJd.forged", "eyJ"], ids=["short", "long", "forged", "junk"]
)
def test_forged_unsubscribe_tokens_are_refused(client: FlaskClient, token: str) -> None:
    assert client.get(f"/newsletter/unsubscribe/{token}").status_code == 404
    assert client.post("/newsletter/unsubscribe", data={"token": token}).status_code == 404


@pytest.mark.parametrize(
    "email", ["", "not-an-address", "a@" + "b" * 260 + ".com", "ß" * 200 + "@example.com"]
)
def test_bad_addresses_get_a_clear_message_and_nothing_is_stored(
    client: FlaskClient, email: str
) -> None:
    response = client.post("/newsletter", data={"email": email})
    assert response.status_code == 400
    assert "There is a problem" in response.text
    db.session.rollback()
    assert db.session.scalar(select(Subscriber.id)) is None


@pytest.mark.config(RATELIMIT_ENABLED=True, PORTAL_NEWSLETTER_RATE_LIMIT="2 per minute")
def test_sign_up_posts_are_rate_limited(client: FlaskClient) -> None:
    for n in range(2):
        assert client.post("/newsletter", data={"email": f"r{n}@example.com"}).status_code == 302
    assert client.post("/newsletter", data={"email": "r9@example.com"}).status_code == 429
    assert client.get("/newsletter").status_code == 200  # only the POST is limited


def _confirmed(app: Flask, *emails: str) -> None:
    from portal.db import write_transaction

    for email in emails:
        with write_transaction(db.session):
            service.sign_up(email, now=clock.now())
        row = subscriber(email)
        with write_transaction(db.session):
            row.status = CONFIRMED
            row.confirmed_at = clock.now()


def test_the_portal_team_exports_confirmed_subscribers_only(
    app: Flask, client: FlaskClient
) -> None:
    _confirmed(app, "one@example.com", "=cmd@example.com")
    from portal.db import write_transaction

    with write_transaction(db.session):
        service.sign_up("pending@example.com", now=clock.now())
    team = make_user(None, profile=Profile.PORTAL_TEAM)
    login(client, team.user_id)
    assert 'href="/newsletter/subscribers.csv"' in client.get("/newsletter").text
    response = client.get("/newsletter/subscribers.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["email", "confirmed_at_utc"]
    assert [r[0] for r in rows[1:]] == ["one@example.com", "'=cmd@example.com"]


@pytest.mark.parametrize(
    "profile", [Profile.ADMINISTRATOR, Profile.CLAIMS_HANDLER, Profile.HELPDESK]
)
def test_others_cannot_export(client: FlaskClient, profile: Profile) -> None:
    org = make_org() if profile in (Profile.ADMINISTRATOR, Profile.CLAIMS_HANDLER) else None
    user = make_user(org, profile=profile)
    login(client, user.user_id)
    assert client.get("/newsletter/subscribers.csv").status_code == 403


def test_anonymous_export_goes_to_login(client: FlaskClient) -> None:
    response = client.get("/newsletter/subscribers.csv")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_the_footer_of_every_page_has_the_sign_up_form(client: FlaskClient) -> None:
    for url in ("/portal/login", "/guides/", "/cookies"):
        page = client.get(url).text
        assert 'action="/newsletter"' in page
        assert 'id="footer-newsletter-email"' in page


@pytest.mark.config(PORTAL_ENVIRONMENT="training")
def test_training_emails_say_so(app: Flask, client: FlaskClient, smtp: SmtpServer) -> None:
    sign_up(app, client, "t@example.com")
    assert smtp.wait_for(1)[0]["Subject"] == "[Training] Confirm your newsletter subscription"


def test_confirm_and_unsubscribe_work_over_https(app: Flask) -> None:
    """Over HTTPS Flask-WTF refuses a POST without a Referer (WTF_CSRF_SSL_STRICT): the pages
    holding the token must let the browser send one (found in review: no-referrer broke it)."""
    https = "https://localhost"
    app.config.update(WTF_CSRF_ENABLED=True)
    token = secrets.token_urlsafe(32)
    with write_transaction(db.session):
        service.sign_up("https@example.com", now=clock.now())
    with write_transaction(db.session):
        row = db.session.scalar(select(Subscriber))
        assert row is not None
        row.confirm_token_hash = service.hash_token(token)
    client = app.test_client()
    page = client.get(f"/newsletter/confirm/{token}", base_url=https)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] != "no-referrer"  # the browser sends the Referer
    csrf = csrf_token_in(page.text)
    done = client.post(
        "/newsletter/confirm",
        data={"token": token, "csrf_token": csrf},
        base_url=https,
        headers={"Referer": f"{https}/newsletter/confirm/{token}"},
    )
    assert done.status_code == 200
    assert "Subscription confirmed" in done.text


def test_the_confirmation_link_is_stored_encrypted_and_wiped_once_sent(
    app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    smtp.stop()
    sign_up(app, client, "ada@example.com")
    dump = repr(db.session.execute(text("SELECT * FROM mail_queue")).all())
    db.session.rollback()
    smtp.start()
    with clock.frozen(clock.now() + mail_queue.BACKOFF[0]):
        assert mail_queue.run_due()["sent"] == 1
    [message] = smtp.wait_for(1)
    token = CONFIRM_LINK.search(_body(message))
    assert token is not None
    assert token.group(1) not in dump  # only ciphertext while it waited
    row = db.session.scalars(select(QueuedMail)).one()
    db.session.rollback()
    assert (row.purpose, row.sealed, row.status, row.body) == (
        "newsletter.confirm",
        True,
        mail_queue.SENT,
        "",
    )


def test_a_case_folded_variant_does_not_replace_a_pending_address(
    app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    """Found in review: a sign-up for "ADA@…" replaced the pending "ada@…" (one case-folded
    key, but local parts may differ by case, and "straße" folds to "strasse": two mailboxes),
    so the confirmation went to the variant and the first link stopped working.  While the
    first link works, the stored address is kept and the new link goes there."""
    sign_up(app, client, "ada@example.com")
    smtp.wait_for(1)
    clock.advance(service.RESEND_AFTER + timedelta(seconds=1))
    sign_up(app, client, "ADA@example.com")
    smtp.wait_for(2)
    assert smtp.recipients == ["ada@example.com", "ada@example.com"]
    stored = subscriber("ada@example.com")
    assert stored.email == "ada@example.com"
    assert stored.status == PENDING

    # Once the link has expired the address typed now is stored (and gets the link).
    clock.advance(timedelta(hours=app.config["PORTAL_NEWSLETTER_CONFIRM_HOURS"], seconds=1))
    sign_up(app, client, "ADA@example.com")
    smtp.wait_for(3)
    assert smtp.recipients[-1] == "ADA@example.com"
    assert subscriber("ada@example.com").email == "ADA@example.com"


def test_a_case_folded_variant_of_a_confirmed_address_changes_nothing(
    app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    sign_up(app, client, "bob@example.com")
    link = CONFIRM_LINK.search(_body(smtp.wait_for(1)[0]))
    assert link is not None
    assert client.post("/newsletter/confirm", data={"token": link.group(1)}).status_code == 200
    clock.advance(service.RESEND_AFTER + timedelta(seconds=1))
    sign_up(app, client, "BOB@example.com")
    smtp.wait_for(3)  # the welcome, then "already subscribed" to the stored address
    assert smtp.recipients[-1] == "bob@example.com"
    stored = subscriber("bob@example.com")
    assert (stored.email, stored.status) == ("bob@example.com", CONFIRMED)
