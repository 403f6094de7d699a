"""Contact Us over HTTP (docs/rules.md §5; issue 4 items 1 and 3): what it refuses and why, what it
stores, the acknowledgement through a real SMTP server (aiosmtpd), and SMTP being down."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from PIL import PngImagePlugin
from sqlalchemy import select
from werkzeug.test import TestResponse

from portal import mail_queue
from portal.extensions import db
from portal.helpdesk import forms
from portal.helpdesk import screenshots
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import Screenshot
from portal.helpdesk.models import reference
from portal.mail_queue import QueuedMail
from tests.factories import PASSWORD
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.mail_server import SmtpServer

from .conftest import NOTHING
from .conftest import contact_data
from .conftest import counts
from .conftest import image_bytes
from .conftest import noise_png
from .conftest import only_request
from .conftest import post_contact
from .conftest import settle
from .test_screenshots import CORPUS

REFERENCE = re.compile(r'id="reference">(HD-\d{6,})<')


def text_of(response: TestResponse) -> str:
    return html.unescape(response.get_data(as_text=True))


def summary_links(response: TestResponse) -> dict[str, str]:
    """The error summary's entries: message → the id it links to."""
    body = response.get_data(as_text=True)
    summary = re.search(r'<div class="error-summary".*?</div>', body, re.S)
    assert summary is not None, "no error summary"
    return {
        html.unescape(text): target
        for target, text in re.findall(r'<a href="#([^"]+)">([^<]+)</a>', summary.group(0))
    }


def field_errors(response: TestResponse, field_id: str) -> list[str]:
    body = response.get_data(as_text=True)
    return [
        html.unescape(m)
        for m in re.findall(
            rf'<p class="error-message" id="{field_id}-error"><span class="visually-hidden">'
            r"Error:</span> ([^<]+)</p>",
            body,
        )
    ]


def sent_reference(client: FlaskClient, response: TestResponse) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/helpdesk/contact/sent"
    page = client.get("/helpdesk/contact/sent")
    assert page.status_code == 200
    found = REFERENCE.search(page.get_data(as_text=True))
    assert found is not None
    return found.group(1)


# --- the form ---------------------------------------------------------------------------------


def test_the_form_is_public_and_asks_its_questions(client: FlaskClient) -> None:
    response = client.get("/helpdesk/contact")
    assert response.status_code == 200
    page = text_of(response)
    for question in (
        "Are you an Administrator or a Claims Handler?",
        "Were you logging in to the Admin Console or the Portal?",
        "The exact error message",
        "Screenshot",
        "Live or Training?",
        "Your User ID (optional)",
    ):
        assert question in page
    assert 'enctype="multipart/form-data"' in page
    assert "Crop out other people's data" in page
    assert 'accept="image/png,image/jpeg,.png,.jpg,.jpeg"' in page
    assert re.search(
        r'<input type="radio" id="environment" name="environment" value="live" checked>', page
    )
    assert 'class="honeypot"' in page
    assert "/helpdesk/resend-admin-user-id" in page


@pytest.mark.config(PORTAL_ENVIRONMENT="training")
def test_live_or_training_defaults_to_this_deployment(client: FlaskClient) -> None:
    page = text_of(client.get("/helpdesk/contact"))
    assert re.search(r'value="training" checked>', page)
    assert not re.search(r'value="live" checked>', page)


def test_every_page_links_to_the_form(client: FlaskClient) -> None:
    for path in ("/guides/troubleshooting", "/portal/login", "/console/login"):
        assert 'href="/helpdesk/contact' in client.get(path).get_data(as_text=True)


# --- refusals: nothing stored, the message names what is missing -------------------------------

MISSING = [
    ("role", {"role": None}, "role", forms.ROLE_MISSING),
    ("console", {"console": None}, "console", forms.CONSOLE_MISSING),
    (
        "error message and screenshot",
        {"error_message": ""},
        "error_message",
        forms.ERROR_OR_SCREENSHOT_MISSING,
    ),
    ("role (a made-up value)", {"role": "superuser"}, "role", forms.ROLE_MISSING),
    ("console (a made-up value)", {"console": "x"}, "console", forms.CONSOLE_MISSING),
    (
        "error message (only spaces)",
        {"error_message": "   "},
        "error_message",
        forms.ERROR_OR_SCREENSHOT_MISSING,
    ),
]


@pytest.mark.parametrize(
    ("changes", "field_id", "message"), [m[1:] for m in MISSING], ids=[m[0] for m in MISSING]
)
def test_a_missing_answer_is_refused_and_named(
    client: FlaskClient, changes: dict[str, str | None], field_id: str, message: str
) -> None:
    response = post_contact(client, contact_data(**changes))
    assert response.status_code == 422
    assert summary_links(response) == {message: field_id}
    assert field_errors(response, field_id) == [message]
    assert f'id="{field_id}"' in response.get_data(as_text=True)  # the link's target exists
    assert "<title>Error: Contact the Helpdesk" in response.get_data(as_text=True)
    assert counts() == NOTHING


def test_all_three_missing_are_named_together(client: FlaskClient) -> None:
    response = post_contact(client, contact_data(role=None, console=None, error_message=None))
    assert response.status_code == 422
    assert summary_links(response) == {
        forms.ROLE_MISSING: "role",
        forms.CONSOLE_MISSING: "console",
        forms.ERROR_OR_SCREENSHOT_MISSING: "error_message",
    }
    assert counts() == NOTHING


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("full_name", "Enter your full name"),
        ("email", "Enter your email address"),
        ("organisation", "Enter the name of your organisation"),
    ],
)
def test_who_you_are_is_required(client: FlaskClient, field: str, message: str) -> None:
    response = post_contact(client, contact_data(**{field: ""}))
    assert response.status_code == 422
    assert summary_links(response) == {message: field}
    assert counts() == NOTHING


def test_a_bad_email_address_is_refused(client: FlaskClient) -> None:
    response = post_contact(client, contact_data(email="not-an-address"))
    assert response.status_code == 422
    assert field_errors(response, "email") == [
        "Enter an email address in the correct format, like name@example.com"
    ]
    assert counts() == NOTHING


def test_a_refused_form_keeps_what_was_typed_and_asks_for_the_file_again(
    client: FlaskClient,
) -> None:
    typed = contact_data(
        full_name="Zoë O'Brien <b>",
        role=None,
        console="portal",
        environment="training",
        error_message="Something odd & <unexpected>",
        details="Line one\nLine two",
    )
    response = post_contact(client, typed, file=(image_bytes(), "shot.png"))
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'value="Zoë O&#39;Brien &lt;b&gt;"' in body
    assert 'value="acme.ada"' in body
    assert re.search(r'value="portal" checked>', body)
    assert re.search(r'value="training" checked>', body)
    assert ">\r\nSomething odd &amp; &lt;unexpected&gt;</textarea>" in body
    assert ">\r\nLine one\nLine two</textarea>" in body
    assert "Choose your screenshot again" in body
    assert counts() == NOTHING


def test_a_screenshot_alone_is_enough(client: FlaskClient) -> None:
    response = post_contact(client, contact_data(error_message=""), file=(image_bytes(), "s.png"))
    assert response.status_code == 302
    sent = only_request()
    assert sent.error_message is None
    assert sent.has_screenshot is True


# --- the screenshot -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "name", "message"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_the_upload_corpus_is_refused_by_the_field_without_a_500(
    client: FlaskClient, make: Callable[[], bytes], name: str, message: str
) -> None:
    response = post_contact(client, file=(make(), name))
    assert response.status_code == 422
    assert field_errors(response, "screenshot") == [message]
    assert summary_links(response) == {message: "screenshot"}
    assert counts() == NOTHING


def test_over_five_megabytes_is_refused_by_the_field(client: FlaskClient) -> None:
    data = noise_png(1340)  # about 5.4 MB: over the screenshot's limit, under the request's
    assert screenshots.MAX_BYTES < len(data) < 6 * 1024 * 1024 - 10_000
    response = post_contact(client, file=(data, "big.png"))
    assert response.status_code == 422
    assert field_errors(response, "screenshot") == [screenshots.TOO_BIG]
    assert counts() == NOTHING


def test_a_valid_png_is_stored_re_encoded_with_its_request(client: FlaskClient) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made on ada-laptop-7731")
    upload = image_bytes("PNG", size=(120, 80), pnginfo=info, compress_level=1)
    upload += b"<?php echo 'trailing-7731'; ?>"
    ref = sent_reference(client, post_contact(client, file=(upload, "My Screen (1).PNG")))
    sent = only_request()
    assert sent.reference == ref
    assert sent.has_screenshot is True
    shot = db.session.scalars(select(Screenshot).where(Screenshot.request_id == sent.id)).one()
    assert (shot.content_type, shot.width, shot.height) == ("image/png", 120, 80)
    assert shot.filename == f"{ref}-screenshot.png"  # the sender's file name is not kept
    assert shot.data != upload
    assert b"7731" not in shot.data
    with Image.open(io.BytesIO(shot.data)) as stored, Image.open(io.BytesIO(upload)) as sent_image:
        assert stored.format == "PNG"
        assert "Comment" not in stored.info
        assert stored.convert("RGB").tobytes() == sent_image.convert("RGB").tobytes()


def test_a_jpeg_is_stored_as_a_jpeg_without_its_exif(client: FlaskClient) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam-7731"
    upload = image_bytes("JPEG", size=(50, 40), exif=exif)
    assert post_contact(client, file=(upload, "photo.jpeg")).status_code == 302
    shot = db.session.scalars(select(Screenshot)).one()
    assert shot.content_type == "image/jpeg"
    assert shot.filename.endswith("-screenshot.jpg")
    assert b"SpyCam" not in shot.data


# --- a sent request -----------------------------------------------------------------------------


def test_a_sent_request_is_stored_with_its_timeline_and_acknowledgement(
    client: FlaskClient,
) -> None:
    data = contact_data(email="  Ada@Example.COM ", user_id="Acme.Ada", environment="training")
    ref = sent_reference(client, post_contact(client, data))
    sent = only_request()
    assert ref == reference(sent.id)
    assert (sent.kind, sent.status, sent.environment) == ("contact", "new", "training")
    assert (sent.stated_role, sent.console) == ("administrator", "admin_console")
    assert (sent.name, sent.organisation_name) == ("Ada Lovelace", "Acme Claims Ltd")
    assert (sent.email, sent.email_key) == ("Ada@Example.COM", "ada@example.com")
    assert (sent.user_id_given, sent.user_id_key) == ("Acme.Ada", "acme.ada")
    assert sent.error_message == "Your User ID has reached its expiry date."
    assert sent.details == "Since this morning."
    assert sent.has_screenshot is False
    assert sent.submitted_by_id is None
    events = db.session.scalars(
        select(RequestEvent).where(RequestEvent.request_id == sent.id).order_by(RequestEvent.id)
    ).all()
    assert [e.kind for e in events] == [EventKind.CREATED, EventKind.MAIL_QUEUED]
    assert (events[0].actor, events[0].to_status, events[0].actor_id) == (
        "Ada Lovelace",
        "new",
        None,
    )
    [queued] = db.session.scalars(select(QueuedMail)).all()
    assert (queued.to_address, queued.purpose, queued.ref) == (
        "Ada@Example.COM",
        "helpdesk.ack",
        ref,
    )
    assert queued.subject == f"Your Helpdesk request {ref}"
    assert ref in queued.body


def test_the_acknowledgement_reaches_the_smtp_server(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    ref = sent_reference(client, post_contact(client))
    settle(app)
    [message] = smtp_server.wait_for(1)
    assert smtp_server.recipients == ["ada@example.com"]
    assert message["Subject"] == f"Your Helpdesk request {ref}"
    body = message.get_content()
    assert ref in body
    assert "https://portal.example.test/guides/troubleshooting" in body
    # Nothing the sender typed is echoed to an unverified address (it could be anyone's).
    for typed in ("Ada Lovelace", "Acme Claims Ltd", "expiry date", "Since this morning"):
        assert typed not in body
    db.session.rollback()
    [queued] = db.session.scalars(select(QueuedMail)).all()
    assert (queued.status, queued.attempts) == (mail_queue.SENT, 1)


@pytest.mark.config(PORTAL_MAIL_SERVER="127.0.0.1", PORTAL_MAIL_PORT=1, PORTAL_MAIL_TIMEOUT=2)
def test_with_smtp_down_the_request_is_stored_and_its_mail_stays_pending(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    response = post_contact(client, file=(image_bytes(), "s.png"))
    ref = sent_reference(client, response)  # the sender sees their reference: no error page
    settle(app)
    sent = only_request()
    assert sent.reference == ref
    assert counts() == {
        "helpdesk_requests": 1,
        "helpdesk_screenshots": 1,
        "helpdesk_request_events": 2,
        "mail_queue": 1,
    }
    [queued] = db.session.scalars(select(QueuedMail)).all()
    assert (queued.status, queued.attempts, queued.ref) == (mail_queue.PENDING, 1, ref)
    assert "SMTP 127.0.0.1:1" in (queued.last_error or "")
    assert smtp_server.messages == []


def test_the_confirmation_is_only_for_the_browser_that_sent_it(
    app: Flask, client: FlaskClient
) -> None:
    ref = sent_reference(client, post_contact(client))
    stranger = app.test_client()
    response = stranger.get("/helpdesk/contact/sent")
    assert response.status_code == 302
    assert response.headers["Location"] == "/helpdesk/contact"
    for guess in (f"/helpdesk/contact/sent/{ref}", f"/helpdesk/contact/sent?reference={ref}"):
        assert ref not in stranger.get(guess).get_data(as_text=True)
    assert client.get("/helpdesk/contact/sent").status_code == 200  # the sender can reload it


def test_each_request_gets_its_own_reference(client: FlaskClient) -> None:
    first = sent_reference(client, post_contact(client))
    second = sent_reference(client, post_contact(client))
    assert first != second
    assert re.fullmatch(r"HD-\d{6}", first)


# --- logged in, and from a login page -----------------------------------------------------------


def test_logged_in_the_form_is_prefilled_and_the_request_linked(client: FlaskClient) -> None:
    org = make_org("Prefill & Co")
    user = make_user(org, user_id="pf.handler", email="pf.handler@example.com")
    assert login(client, user.user_id).status_code == 302
    page = client.get("/helpdesk/contact").get_data(as_text=True)
    assert 'value="Name pf.handler"' in page
    assert 'value="pf.handler@example.com"' in page
    assert 'value="Prefill &amp; Co"' in page
    assert 'value="pf.handler"' in page
    data = contact_data(
        full_name="Name pf.handler", email=user.email, organisation=org.name, user_id=user.user_id
    )
    assert post_contact(client, data).status_code == 302
    sent = only_request()
    assert sent.submitted_by_id == user.id
    created = db.session.scalars(
        select(RequestEvent).where(RequestEvent.kind == EventKind.CREATED)
    ).one()
    assert created.actor == "pf.handler"


def test_a_login_message_leads_to_the_form_with_the_message_filled_in(
    client: FlaskClient,
) -> None:
    refused = login(client, "nobody-here", "wrong password", door="console")
    link = re.search(
        r'href="(/helpdesk/contact\?[^"]+)" id="contact-helpdesk"', refused.get_data(as_text=True)
    )
    assert link is not None
    target = html.unescape(link.group(1))
    assert "code=LOGIN-01" in target
    assert "console=admin_console" in target
    page = client.get(target).get_data(as_text=True)
    assert ">\r\nLOGIN-01: The User ID or password is incorrect.</textarea>" in page
    assert re.search(r'value="admin_console" checked>', page)
    assert 'href="/guides/troubleshooting#LOGIN-01"' in page  # and the suggestion is there
    junk = client.get("/helpdesk/contact?code=<script>&console=root").get_data(as_text=True)
    assert "<script>" not in junk
    assert "checked>" in junk  # only the environment's default


def test_a_user_who_must_change_a_one_time_password_can_still_ask_for_help(
    client: FlaskClient,
) -> None:
    user = make_user(one_time=True)
    assert login(client, user.user_id, PASSWORD).status_code == 302
    assert client.get("/portal/").status_code == 302  # everything else waits for the change
    assert client.get("/helpdesk/contact").status_code == 200
    assert post_contact(client).status_code == 302
