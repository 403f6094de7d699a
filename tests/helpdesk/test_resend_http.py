"""Resend Admin User ID for Live/Training over HTTP (docs/rules.md §5; docs/security.md EN-03): the
same answer whatever was typed, stored for the queue as its own kind, nothing looked up or sent."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from portal.accounts.models import Profile
from portal.extensions import db
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import RequestEvent
from tests.factories import make_org
from tests.factories import make_user
from tests.mail_server import SmtpServer

from .conftest import NOTHING
from .conftest import counts
from .conftest import only_request
from .conftest import resend_data
from .conftest import same_shape
from .conftest import settle

PATH = "/helpdesk/resend-admin-user-id"


def ask(client: FlaskClient, **changes: str | None) -> TestResponse:
    return client.post(PATH, data=resend_data(**changes))


def answer(client: FlaskClient, response: TestResponse) -> tuple[int, str, str]:
    """What the sender sees: the POST's status and redirect, then the page it leads to."""
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    return response.status_code, response.headers["Location"], same_shape(page)


def test_the_form_asks_for_live_or_training_organisation_name_and_email(
    client: FlaskClient,
) -> None:
    response = client.get(PATH)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>Resend Admin User ID for Live/Training</h1>" in page
    for label in (
        "Live or Training?",
        "Organisation",
        "Your full name",
        "The email address registered for your Administrator account",
    ):
        assert label in page
    assert re.search(r'value="live" checked>', page)
    assert 'class="honeypot"' in page


def test_the_same_answer_whatever_was_typed(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    org = make_org("Resend Ltd")
    admin = make_user(org, profile=Profile.ADMINISTRATOR, email="boss@resend.example")
    handler = make_user(org, email="handler@resend.example")
    answers = {
        "a matching Administrator": answer(
            client, ask(client, organisation="Resend Ltd", email=admin.email)
        ),
        "the same, other case": answer(
            client, ask(client, organisation="resend ltd", email="BOSS@resend.example")
        ),
        "a Claims Handler": answer(
            client, ask(client, organisation="Resend Ltd", email=handler.email)
        ),
        "nobody": answer(client, ask(client, organisation="No Such Ltd", email="x@y.example")),
        "a robot (honeypot)": answer(client, ask(client, website="http://spam.example")),
    }
    assert len(set(answers.values())) == 1, answers
    status, location, page = answers["nobody"]
    assert (status, location) == (302, "/helpdesk/resend-admin-user-id/sent")
    assert "If the details match an Administrator account" in page
    settle(app)
    # Each real request is acknowledged to the typed address (its reference and status link,
    # issue 14): the same email whoever matches, and never a User ID (staff send that, from
    # the queue, to the registered address only).
    sent = smtp_server.messages
    assert sorted(m["To"] for m in sent) == sorted(
        [admin.email, "BOSS@resend.example", handler.email, "x@y.example"]
    )
    for message in sent:
        body = message.get_content()
        assert "/helpdesk/status/" in body
        assert admin.user_id not in body
        assert handler.user_id not in body
    assert counts()["helpdesk_requests"] == 4  # not the robot's
    assert counts()["mail_queue"] == 4


def test_it_is_stored_as_its_own_kind_for_the_queue(client: FlaskClient) -> None:
    response = ask(
        client,
        environment="training",
        organisation=" Acme Claims Ltd ",
        full_name="Ada Lovelace",
        email="Ada@Example.com",
    )
    assert response.status_code == 302
    sent = only_request()
    assert (sent.kind, sent.status, sent.environment) == ("resend_user_id", "new", "training")
    assert (sent.organisation_name, sent.name) == ("Acme Claims Ltd", "Ada Lovelace")
    assert (sent.email, sent.email_key) == ("Ada@Example.com", "ada@example.com")
    assert (sent.stated_role, sent.console, sent.error_message) == (None, None, None)
    assert sent.has_screenshot is False
    events = db.session.scalars(select(RequestEvent)).all()
    assert [(e.kind, e.actor) for e in events] == [
        (EventKind.CREATED, "Ada Lovelace"),
        (EventKind.MAIL_QUEUED, "system"),  # the acknowledgement (issue 14)
    ]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("organisation", "Enter the name of your organisation"),
        ("full_name", "Enter your full name"),
        ("email", "Enter your email address"),
    ],
)
def test_a_missing_answer_is_refused_and_named(
    client: FlaskClient, field: str, message: str
) -> None:
    response = ask(client, **{field: ""})
    assert response.status_code == 422
    assert f'<a href="#{field}">{message}</a>' in response.get_data(as_text=True)
    assert counts() == NOTHING


def test_live_or_training_must_be_one_of_the_two(client: FlaskClient) -> None:
    response = ask(client, environment="staging")
    assert response.status_code == 422
    assert '<a href="#environment">Say whether this is about Live or Training</a>' in (
        response.get_data(as_text=True)
    )
    assert counts() == NOTHING
