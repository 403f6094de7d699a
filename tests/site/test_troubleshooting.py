"""The Troubleshooting Guide has an entry for every message a login page, the password pages or
the Administrator password reset can show (docs/rules.md §3, §6; issue 6 item 1).

Three nets, so that a message added later without an entry fails here:

* every code in the table has its entry (``id="LOGIN-03"``) on /guides/troubleshooting, with its
  cause, what to do and who can help; every ``codes.X`` constant names a code in the table;
* every validator message of the login, change-password and reset forms, and every message the
  password policy can give, is found in the table (``codes.for_text``);
* the real pages are driven into each failure, and every message they show (error summary,
  messages by the fields, the message box, flashed notices) carries a code that links to its
  entry, which the guide page really has.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse
from wtforms import Form
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo
from wtforms.validators import Length
from wtforms.validators import Regexp

from portal import clock
from portal import messages as codes
from portal.accounts import password_policy
from portal.accounts.forms import ChangePasswordForm
from portal.accounts.forms import LoginForm
from portal.accounts.models import Profile
from portal.auth.reset import NewPasswordForm
from portal.auth.reset import ResetRequestForm
from tests.factories import PASSWORD
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import remove_access

CODE_LINK = re.compile(r'href="/guides/troubleshooting#((?:[A-Z]+)-\d+)"')
WHO = {codes.YOURSELF, codes.ADMINISTRATOR, codes.HELPDESK, codes.PORTAL_TEAM}
LOGIN_PAGE_FORMS = (LoginForm, ChangePasswordForm, ResetRequestForm, NewPasswordForm)


def _guide_ids(client: FlaskClient) -> set[str]:
    page = client.get("/guides/troubleshooting")
    assert page.status_code == 200
    return set(re.findall(r'<section class="guide-entry" id="([A-Z]+-\d+)"', page.text))


def test_codes_are_unique_and_well_formed() -> None:
    seen = [m.code for m in codes.MESSAGES]
    assert len(seen) == len(set(seen))
    for m in codes.MESSAGES:
        assert re.fullmatch(rf"({'|'.join(codes.SECTIONS)})-\d\d", m.code), m.code
        assert m.section in codes.SECTIONS
        assert all((m.text, m.cause, m.what_to_do)), m.code
        assert m.who_can_help, m.code
        assert set(m.who_can_help) <= WHO, m.code
        assert m.matches(m.text), f"{m.code}: its own text does not match its pattern"


def test_every_code_constant_names_an_entry() -> None:
    constants = {
        name: value
        for name, value in vars(codes).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[A-Z]+-\d+", value)
    }
    assert constants  # GENERIC_FAILURE, RATE_LIMITED, RESET_DONE, …
    for name, value in constants.items():
        assert value in codes.BY_CODE, f"codes.{name} = {value!r} has no entry"
    for outcome_and_flag, code in codes._REFUSAL_CODES.items():
        assert code in codes.BY_CODE, outcome_and_flag


def test_the_guide_has_an_entry_for_every_code(client: FlaskClient) -> None:
    page = client.get("/guides/troubleshooting").text
    ids = _guide_ids(client)
    for m in codes.MESSAGES:
        assert m.code in ids, f"{m.code} has no entry in the Troubleshooting Guide"
        entry = page.split(f'id="{m.code}"', 1)[1].split("</section>", 1)[0]
        for part in (m.cause, m.what_to_do, ", ".join(m.who_can_help)):
            assert unescape(part) in unescape(entry), (m.code, part)
    for who in WHO:  # the guide explains each of the four who can help
        assert unescape(page).count(who) >= 1


def _validator_messages(form_class: type[Form]) -> list[str]:
    found = []
    for name in dir(form_class):
        unbound = getattr(form_class, name)
        for validator in getattr(unbound, "kwargs", {}).get("validators", []) or []:
            if isinstance(validator, DataRequired | EqualTo | Length | Regexp):
                assert validator.message, f"{form_class.__name__}.{name}: a message is needed"
                found.append(str(validator.message))
    return found


@pytest.mark.parametrize("form_class", LOGIN_PAGE_FORMS, ids=lambda f: f.__name__)
def test_every_form_message_has_an_entry(form_class: type[Form]) -> None:
    messages = _validator_messages(form_class)
    assert messages
    missing = [text for text in messages if codes.for_text(text) is None]
    assert not missing, f"{form_class.__name__} can show messages with no guide entry: {missing}"


@pytest.mark.parametrize(
    "password",
    [
        "short",
        "x" * 200,
        "password1234",
        "aaaaaaaaaaaaaaaa",
        "claims portal forever",
        "ada-lovelace-2026!",
    ],
)
def test_every_password_policy_message_has_an_entry(password: str) -> None:
    problems = password_policy.problems(
        password, min_length=12, max_length=128, context=("ada-lovelace", "Ada Lovelace")
    )
    assert problems, password
    for text in problems:
        assert codes.for_text(text) is not None, f"no guide entry for {text!r}"


# --- the real pages, driven into each failure ----------------------------------------------


def shown_codes(response: TestResponse) -> list[str]:
    return CODE_LINK.findall(response.text)


def error_texts(response: TestResponse) -> list[str]:
    """Every message shown in the error summary and by the fields."""
    page = response.text
    summary = re.findall(r'<li><a href="#[^"]+">([^<]+)</a>', page)
    by_fields = re.findall(r'class="error-message"[^>]*>.*?</span>\s*([^<]+?)\s*</p>', page, re.S)
    return [unescape(t) for t in summary + by_fields]


def assert_all_coded(response: TestResponse, ids: set[str]) -> list[str]:
    for text in error_texts(response):
        assert codes.for_text(text) is not None, f"{text!r} has no guide entry"
    found = shown_codes(response)
    for code in found:
        assert code in ids, f"{code} links to a missing entry"
    return found


def test_login_pages_link_every_message_to_its_entry(app: Flask, client: FlaskClient) -> None:
    """Walks the login codes: each one the login can show is shown, linked, and in the guide."""
    ids = _guide_ids(client)
    org = make_org()
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    make_user(org, profile=Profile.ADMINISTRATOR)  # not the last Administrator
    handler = make_user(org)
    locked_admin = lock_out(make_user(org, profile=Profile.ADMINISTRATOR))
    locked_handler = lock_out(make_user(org))
    removed = remove_access(make_user(org))
    expired = make_user(org, expires_on=clock.today() + timedelta(days=1))
    seen: set[str] = set()

    def attempt(door: str, **form: str) -> None:
        response = client.post(f"/{door}/login", data=form)
        seen.update(assert_all_coded(response, ids))

    attempt("portal", user_id="", password="")  # LOGIN-11, LOGIN-12
    attempt("portal", user_id="x", password="p" * 500)  # LOGIN-13
    attempt("portal", user_id="nobody", password="wrong password")  # LOGIN-01
    attempt("console", user_id=locked_admin.user_id, password=PASSWORD)  # LOGIN-02
    attempt("portal", user_id=locked_handler.user_id, password=PASSWORD)  # LOGIN-03
    attempt("portal", user_id=removed.user_id, password=PASSWORD)  # LOGIN-07
    attempt("console", user_id=handler.user_id, password=PASSWORD)  # LOGIN-08
    clock.advance(timedelta(days=2))
    attempt("portal", user_id=expired.user_id, password=PASSWORD)  # LOGIN-06
    clock.advance(timedelta(days=95))
    attempt("console", user_id=admin.user_id, password=PASSWORD)  # LOGIN-04
    attempt("portal", user_id=handler.user_id, password=PASSWORD)  # LOGIN-05
    expected = {f"LOGIN-{n:02}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13)}
    assert expected <= seen, sorted(expected - seen)


#: Where each LOGIN code is shown by a real page in this module's tests.
WALKED_LOGIN_CODES = {
    **{f"LOGIN-{n:02}": "test_login_pages_link_every_message_to_its_entry" for n in range(1, 9)},
    "LOGIN-09": "test_the_rate_limit_message_links_to_its_entry",
    "LOGIN-10": "test_the_session_ended_message_links_to_its_entry",
    **{f"LOGIN-{n}": "test_login_pages_link_every_message_to_its_entry" for n in (11, 12, 13)},
    "LOGIN-14": "test_password_pages_link_every_message_to_its_entry",
    "LOGIN-15": "test_the_form_expired_message_links_to_its_entry",
}


def test_every_login_code_is_walked_by_a_page_test() -> None:
    """A new LOGIN code fails here until a test above shows it on a real page."""
    in_table = {m.code for m in codes.MESSAGES if m.section == "LOGIN"}
    assert in_table == set(WALKED_LOGIN_CODES), sorted(in_table ^ set(WALKED_LOGIN_CODES))
    assert all(name in globals() for name in WALKED_LOGIN_CODES.values())


def test_the_session_ended_message_links_to_its_entry(client: FlaskClient) -> None:
    user = make_user(make_org())
    login(client, user.user_id)
    clock.advance(timedelta(minutes=31))  # past the idle timeout
    response = client.get("/portal/", follow_redirects=True)
    assert codes.SESSION_ENDED in shown_codes(response)
    assert codes.SESSION_ENDED in _guide_ids(client)


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_the_form_expired_message_links_to_its_entry(client: FlaskClient) -> None:
    response = client.post("/portal/login", data={"user_id": "a", "password": "b"})
    assert response.status_code == 400
    assert shown_codes(response) == [codes.FORM_EXPIRED]


@pytest.mark.config(RATELIMIT_ENABLED=True, PORTAL_LOGIN_RATE_LIMIT="2 per minute")
def test_the_rate_limit_message_links_to_its_entry(client: FlaskClient) -> None:
    for _ in range(2):
        login(client, "nobody", "wrong password")
    response = login(client, "nobody", "wrong password")
    assert response.status_code == 429
    assert codes.RATE_LIMITED in shown_codes(response)


def test_password_pages_link_every_message_to_its_entry(client: FlaskClient) -> None:
    ids = _guide_ids(client)
    org = make_org()
    user = make_user(org, one_time=True)
    login(client, user.user_id)
    seen: set[str] = set()
    page = client.get("/account/password")
    seen.update(assert_all_coded(page, ids))  # LOGIN-14, the must-change message
    # The one-time password is not asked again in the login that used it: the current
    # password's messages are walked with a user changing an own password.
    client.post("/logout")
    login(client, make_user(org).user_id)
    for form in (
        {"current_password": "", "password": "", "confirm": ""},
        {"current_password": "wrong one", "password": "a" * 20, "confirm": "a" * 20},
        {"current_password": PASSWORD, "password": "short", "confirm": "other"},
        {"current_password": PASSWORD, "password": "short", "confirm": "short"},
        {"current_password": PASSWORD, "password": PASSWORD, "confirm": PASSWORD},
        {"current_password": PASSWORD, "password": "password1234", "confirm": "password1234"},
    ):
        response = client.post("/account/password", data=form)
        seen.update(assert_all_coded(response, ids))
    assert {"LOGIN-14", "PASSWORD-01", "PASSWORD-03", "PASSWORD-04", "PASSWORD-05"} <= seen
    assert {"PASSWORD-06", "PASSWORD-07", "PASSWORD-09"} <= seen


def test_reset_pages_link_every_message_to_its_entry(client: FlaskClient) -> None:
    ids = _guide_ids(client)
    seen: set[str] = set()
    for form in ({"user_id": "", "email": ""}, {"user_id": "someone", "email": "a@b.example"}):
        response = client.post("/password-reset", data=form)
        seen.update(assert_all_coded(response, ids))
    seen.update(assert_all_coded(client.get("/password-reset/not-a-real-token"), ids))
    assert {"RESET-01", "RESET-02", "RESET-08", "RESET-09"} <= seen
