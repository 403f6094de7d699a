"""Abuse protection on the public Helpdesk forms (issue 4 item 8; docs/security.md UP-01, UP-05,
UP-06, CS-*): CSRF, the per-address rate limit, the honeypot, the request size limit and
line breaks in fields that may reach a mail header."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.config import DEFAULTS
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from tests.helpers import csrf_token_in
from tests.mail_server import SmtpServer

from .conftest import NOTHING
from .conftest import contact_data
from .conftest import counts
from .conftest import image_bytes
from .conftest import noise_png
from .conftest import post_contact
from .conftest import resend_data
from .conftest import same_shape
from .conftest import settle

RESEND = "/helpdesk/resend-admin-user-id"


def all_requests() -> list[HelpdeskRequest]:
    db.session.rollback()
    return list(db.session.scalars(select(HelpdeskRequest).order_by(HelpdeskRequest.id)))


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return csrf_token_in(page)


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_both_forms_need_a_csrf_token(client: FlaskClient) -> None:
    assert post_contact(client).status_code == 400
    assert client.post(RESEND, data=resend_data()).status_code == 400
    assert counts() == NOTHING
    token = csrf_token(client, "/helpdesk/contact")
    assert post_contact(client, contact_data(csrf_token=token)).status_code == 302
    token = csrf_token(client, RESEND)
    assert client.post(RESEND, data=resend_data(csrf_token=token)).status_code == 302
    assert counts()["helpdesk_requests"] == 2


# --- rate limit ---------------------------------------------------------------------------------


def test_the_default_limit_is_20_an_hour_and_240_a_day() -> None:
    assert DEFAULTS["PORTAL_HELPDESK_RATE_LIMIT"] == "20 per hour;240 per day"


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_each_address_may_send_20_forms_an_hour(client: FlaskClient) -> None:
    robot = contact_data(website="http://spam.example")  # cheap: nothing is stored
    for _ in range(15):
        assert post_contact(client, robot).status_code == 302
    for _ in range(5):  # one budget for both forms
        assert client.post(RESEND, data=resend_data(website="x")).status_code == 302
    refused = post_contact(client, contact_data())
    assert refused.status_code == 429
    assert "Too many requests" in refused.get_data(as_text=True)
    assert "Nothing was stored" in refused.get_data(as_text=True)
    assert client.post(RESEND, data=resend_data()).status_code == 429
    assert counts() == NOTHING
    assert client.get("/helpdesk/contact").status_code == 200  # only the POSTs are limited
    assert client.get(RESEND).status_code == 200
    elsewhere = post_contact(client, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert elsewhere.status_code == 302


@pytest.mark.config(RATELIMIT_ENABLED=True, PORTAL_HELPDESK_RATE_LIMIT="2 per day")
def test_the_limit_is_a_setting(client: FlaskClient) -> None:
    assert post_contact(client).status_code == 302
    assert post_contact(client).status_code == 302
    assert post_contact(client).status_code == 429
    assert counts()["helpdesk_requests"] == 2


# --- honeypot -----------------------------------------------------------------------------------


def test_a_filled_honeypot_gets_the_same_answer_and_stores_nothing(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    human = app.test_client()
    real = post_contact(human)
    robot = post_contact(client, contact_data(website="http://cheap-pills.example"))
    assert (robot.status_code, robot.headers["Location"]) == (
        real.status_code,
        real.headers["Location"],
    )
    human_page = human.get("/helpdesk/contact/sent").get_data(as_text=True)
    robot_page = client.get("/helpdesk/contact/sent").get_data(as_text=True)
    assert re.search(r"HD-\d{6}", robot_page)
    assert same_shape(robot_page) == same_shape(human_page)
    settle(app)
    assert counts()["helpdesk_requests"] == 1  # the human's only
    assert len(smtp_server.wait_for(1)) == 1


def _reference_shown(client: FlaskClient) -> str:
    found = re.search(r"HD-\d{6}", client.get("/helpdesk/contact/sent").get_data(as_text=True))
    assert found is not None
    return found.group(0)


def test_a_honeypot_answer_takes_its_reference_from_the_real_sequence(
    app: Flask, client: FlaskClient
) -> None:
    """Issue 10: a random ``HD-145096`` gave the trap away (real ones are sequential) and told
    a robot nothing true; now the robot gets the next number, and the next real request the
    one after it, on both databases."""
    human, robot = app.test_client(), app.test_client()
    bot_data = contact_data(website="http://cheap-pills.example", details="bot-text-7731")
    shown = []
    for who, data in ((human, None), (robot, bot_data), (robot, bot_data), (human, None)):
        assert post_contact(who, data).status_code == 302
        shown.append(_reference_shown(who))
    first = int(shown[0].removeprefix("HD-"))
    assert shown == [f"HD-{first + i:06d}" for i in range(4)]
    settle(app)
    assert counts()["helpdesk_requests"] == 2  # the humans' only
    assert [r.reference for r in all_requests()] == [shown[0], shown[3]]
    assert all(r.details != "bot-text-7731" for r in all_requests())


def test_the_honeypot_is_hidden_from_people(client: FlaskClient) -> None:
    page = client.get("/helpdesk/contact").get_data(as_text=True)
    pot = re.search(r'<div class="honeypot" aria-hidden="true">.*?</div>', page, re.S)
    assert pot is not None
    assert 'tabindex="-1"' in pot.group(0)
    assert 'autocomplete="off"' in pot.group(0)
    with client.get("/static/app.css") as response:
        css = response.get_data(as_text=True)
    assert re.search(r"\.honeypot \{ position: absolute !important; left: -10000px;", css)


# --- size ---------------------------------------------------------------------------------------


def test_the_whole_request_is_limited_to_6_mb_with_a_friendly_page(client: FlaskClient) -> None:
    assert DEFAULTS["MAX_CONTENT_LENGTH"] == 6 * 1024 * 1024
    data = noise_png(1450)  # a 6 MB image
    assert len(data) > 6 * 1024 * 1024
    response = post_contact(client, file=(data, "huge.png"))
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "What you sent is too large" in page
    assert "at most 6 MB" in page
    assert 'href="/helpdesk/contact"' in page
    assert counts() == NOTHING


@pytest.mark.config(WTF_CSRF_ENABLED=True, MAX_CONTENT_LENGTH=50_000)
def test_the_limit_is_a_setting_and_holds_before_the_csrf_check(client: FlaskClient) -> None:
    response = post_contact(client, file=(noise_png(200), "s.png"))
    assert response.status_code == 413
    assert "What you sent is too large" in response.get_data(as_text=True)
    assert "at most 49 kB" in response.get_data(as_text=True)
    assert counts() == NOTHING


# --- line breaks in header-bound fields -----------------------------------------------------------

INJECTIONS = [
    ("full_name", "Ada\r\nBcc: victim@example.com", "Your name must be on one line"),
    ("full_name", "Ada\nSubject: hi", "Your name must be on one line"),
    (
        "email",
        "ada@example.com\r\nBcc: victim@example.com",
        "The email address must be on one line",
    ),
    ("email", "ada@example.com\rBcc: victim@example.com", "The email address must be on one line"),
    ("organisation", "Acme\r\nX-Spam: 1", "The organisation must be on one line"),
]


@pytest.mark.parametrize(("field", "value", "message"), INJECTIONS)
def test_line_breaks_are_refused_in_contact_us(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer, field: str, value: str, message: str
) -> None:
    response = post_contact(client, contact_data(**{field: value}), file=(image_bytes(), "s.png"))
    assert response.status_code == 422
    assert f'<a href="#{field}">{message}</a>' in response.get_data(as_text=True)
    settle(app)
    assert counts() == NOTHING
    assert smtp_server.messages == []


def test_line_breaks_are_refused_in_the_user_id(client: FlaskClient) -> None:
    response = post_contact(client, contact_data(user_id="ada\r\nBcc: x@example.com"))
    assert response.status_code == 422
    assert '<a href="#user_id">The User ID must be on one line</a>' in response.get_data(
        as_text=True
    )
    assert counts() == NOTHING


@pytest.mark.parametrize(("field", "value", "message"), INJECTIONS)
def test_line_breaks_are_refused_in_resend_user_id(
    client: FlaskClient, field: str, value: str, message: str
) -> None:
    response = client.post(RESEND, data=resend_data(**{field: value}))
    assert response.status_code == 422
    assert f'<a href="#{field}">{message}</a>' in response.get_data(as_text=True)
    assert counts() == NOTHING
