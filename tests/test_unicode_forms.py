"""No 5xx from any text a form accepts: hypothesis posts arbitrary Unicode to every public and
Console form field, and the Portal team's, and asserts the server never fails.

What it draws, per field: any text (NUL and other control characters included; surrogates
cannot travel in a ``str`` over HTTP), lone combining marks, right-to-left and other format
marks, very long strings, and text that grows when case-folded ("ΐ" becomes three characters,
"ﬃ" three, "ß" two), alone or inside otherwise valid values (an email address of 254 characters
whose key is 382), with the other fields valid so that the drawn one reaches the database.
It found the ``*_key`` overflows (a 500 on PostgreSQL) in the Contact Us, Resend Admin User
ID, Console create and edit user and operator create organisation forms.

One app per form and database (examples share it: accounts created by one example stay for
the next, as on a real server); examples per form are bounded (a fifth of the profile's
``max_examples``: 60 with ``HYPOTHESIS_PROFILE=ci``) so the file runs in about a minute per
database.  Background jobs (the reset request's look-up runs after the response) must not fail
either: their failures are logged, and the log is checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from portal import background
from portal import clock
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.mail_server import SmtpServer
from tests.mail_server import smtp_settings

#: Characters that grow when case-folded, and other troublemakers.
EXPANDERS = ("ΐ", "ΰ", "ﬃ", "ß", "ŉ", "ǰ", "İ", "ﬆ", "ᾷ")
#: Two octets in UTF-8 but three characters once case-folded: the only way an email address
#: within the syntax check's 254 octets gets a key longer than 254 characters.
DENSE = ("ΐ", "ΰ")
MARKS = ("\u0301", "\u0308", "\u200f", "\u200e", "\u202e", "\u2066", "\ufeff", "\u200d")
ODD = ("\x00", "\x07", "\r", "\n", "\t", "\u2028", "\x85", "\ufffd", "\U0001f600", "ǅ", "K")

EXAMPLES = max(10, hypothesis_settings.default.max_examples // 5)


def _repeat(unit: str, times: int) -> str:
    return unit * times


#: Just under a column's length (64, 200, 254) in characters, longer once case-folded.
grown = st.builds(
    _repeat, st.sampled_from(EXPANDERS), st.sampled_from((22, 33, 65, 67, 85, 100, 150, 200))
)

#: Text of any kind: what a robot, a copy-paste or a strange keyboard sends.
any_text = st.one_of(
    grown,
    grown,
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(EXPANDERS + MARKS + ODD), max_size=300),
    st.builds(_repeat, st.sampled_from(EXPANDERS + MARKS + ODD), st.integers(1, 300)),
    st.builds(_repeat, st.sampled_from(("a", "é", "ß")), st.sampled_from((63, 64, 65, 200, 201))),
    st.text(min_size=250, max_size=600),
)

#: Local parts the syntax check takes: the limit is 254 octets for the whole address, and
#: "ΐ" is two octets but three characters once case-folded.
local_parts = st.one_of(
    st.builds(_repeat, st.sampled_from(EXPANDERS), st.integers(40, 130)),
    st.text(alphabet=st.sampled_from((*EXPANDERS, "a", "b", ".", "+")), min_size=1, max_size=64),
)


def _address(local: str, domain_length: int) -> str:
    """``local@`` a domain of about ``domain_length`` characters, in labels of up to 60."""
    labels, left = [], max(domain_length, 4)
    while left > 0:
        size = min(60, max(left - 1, 1))
        labels.append("d" * size)
        left -= size + 1
    return f"{local}@{'.'.join(labels)}.example"


#: Email addresses that pass the syntax check but may grow when case-folded, and any text
#: (``map`` keeps ``any_text`` one branch of four: ``one_of`` would flatten its branches in).
emails = st.one_of(
    st.builds(
        "{}@ab.example".format, st.builds(_repeat, st.sampled_from(DENSE), st.integers(82, 124))
    ),
    st.builds(_address, local_parts, st.integers(4, 120)),
    st.builds(_address, local_parts, st.just(4)),
    any_text.map(str),
)


def field_values(valid: dict[str, Any], special: dict[str, Any] | None = None) -> Any:
    """Valid form data in which any subset of the fields is replaced by drawn text."""
    special = special or {}

    @st.composite
    def draw(draw_: Callable[..., Any]) -> dict[str, Any]:
        data = dict(valid)
        # Fields with a strategy of their own (emails) are drawn four times as often.
        names = sorted(valid) + sorted(special) * 3
        chosen = draw_(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
        for name in chosen:
            data[name] = draw_(special.get(name, any_text))
        return data

    return draw()


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    settings: dict[str, Any],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> dict[str, Any]:
    """Mail goes to the real SMTP server (acknowledgements, newsletter confirmations)."""
    return smtp_settings(request, settings, smtp_server, tmp_path / "outbox", "https://x.test")


class World:
    """One app's logged-in clients and the accounts the forms act on."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.org: Organisation = make_org("Unicode Claims Ltd")
        self.admin: User = make_user(self.org, user_id="uni.admin", profile=Profile.ADMINISTRATOR)
        make_user(self.org, user_id="uni.admin2", profile=Profile.ADMINISTRATOR)
        self.handler: User = make_user(self.org, user_id="uni.handler")
        self.console = app.test_client()
        assert login(self.console, "uni.admin", door="console").status_code == 302
        self.operator = app.test_client()
        make_user(None, user_id="uni.operator", profile=Profile.PORTAL_TEAM)
        assert login(self.operator, "uni.operator").status_code == 302
        self.public = app.test_client()


def _no_server_error(response: Any, form: str, data: dict[str, Any]) -> None:
    assert response.status_code < 500, f"{form}: {response.status_code} for {data!r}"


def _check(
    app: Flask, caplog: pytest.LogCaptureFixture, client: FlaskClient, path: str, data: Any
) -> None:
    caplog.clear()
    response = client.post(path, data=data)
    _no_server_error(response, path, data)
    background.wait_idle(app)
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failed, f"{path}: {failed[0].getMessage()} for {data!r}"


def _tomorrow() -> str:
    return (clock.today() + timedelta(days=1)).isoformat()


FORMS: dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]] = {
    # name: (client, path, valid data, special strategies)
    "portal login": (
        "public",
        "/portal/login",
        {"user_id": "someone", "password": "a long enough password"},
        {},
    ),
    "console login": (
        "public",
        "/console/login",
        {"user_id": "someone", "password": "a long enough password"},
        {},
    ),
    "reset request": (
        "public",
        "/password-reset",
        {"user_id": "uni.admin", "email": "uni.admin@example.com"},
        {"email": emails},
    ),
    "contact": (
        "public",
        "/helpdesk/contact",
        {
            "full_name": "Ada Lovelace",
            "email": "ada@example.com",
            "organisation": "Acme Claims Ltd",
            "user_id": "acme.ada",
            "role": "administrator",
            "console": "portal",
            "environment": "live",
            "error_message": "Your User ID is locked",
            "details": "",
        },
        {"email": emails},
    ),
    "resend": (
        "public",
        "/helpdesk/resend-admin-user-id",
        {
            "environment": "live",
            "organisation": "Acme Claims Ltd",
            "full_name": "Ada Lovelace",
            "email": "ada@example.com",
        },
        {"email": emails},
    ),
    "newsletter": ("public", "/newsletter", {"email": "reader@example.com"}, {"email": emails}),
    "console create user": (
        "console",
        "/console/users/new",
        {
            "user_id": "new.user",
            "full_name": "New User",
            "email": "new.user@example.com",
            "profile": "claims_handler",
            "expires_on": "TOMORROW",
        },
        {"email": emails},
    ),
    "console edit user": (
        "console",
        "/console/users/HANDLER",
        {"full_name": "Handler", "email": "handler@example.com", "profile": "claims_handler"},
        {"email": emails},
    ),
    "console expiry": ("console", "/console/users/HANDLER/expiry", {"expires_on": "TOMORROW"}, {}),
    "operator create organisation": (
        "operator",
        "/operator/organisations/new",
        {"name": "Another Claims Ltd"},
        {},
    ),
    "operator first administrator": (
        "operator",
        "/operator/organisations/ORG/administrators/new",
        {
            "user_id": "first.admin",
            "full_name": "First Admin",
            "email": "first.admin@example.com",
            "expires_on": "TOMORROW",
        },
        {"email": emails},
    ),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_no_server_error_from_any_text(
    app: Flask, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    world = World(app)
    who, path, valid, special = FORMS[form]
    path = path.replace("HANDLER", str(world.handler.id)).replace("ORG", str(world.org.id))
    client: FlaskClient = getattr(world, who)
    caplog.set_level(logging.ERROR)

    @hypothesis_settings(
        max_examples=EXAMPLES,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(data=field_values(valid, special))
    def post(data: dict[str, Any]) -> None:
        data = {k: _tomorrow() if v == "TOMORROW" else v for k, v in data.items()}
        _check(app, caplog, client, path, data)

    post()
    # The logged-in clients are still logged in: nothing drawn broke their sessions.
    assert world.console.get("/console/").status_code == 200
    assert world.operator.get("/operator/").status_code == 200
