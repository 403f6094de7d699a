"""Check this first: matching typed error messages to the Troubleshooting Guide (the login
message table), the HTMX fragment, and the record of what was shown."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from portal import messages as codes
from portal.helpdesk import suggestions

from .conftest import contact_data
from .conftest import only_request
from .conftest import post_contact


def matched(text: str) -> list[str]:
    return [m.code for m in suggestions.matching(text)]


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("LOGIN-06", "LOGIN-06"),
        ("it says login 6", "LOGIN-06"),
        ("Reset-03", "RESET-03"),
        ("LOGIN‑09 (non-breaking hyphen)", "LOGIN-09"),
        ("Your User ID has reached its exp", "LOGIN-06"),  # typing in progress
        ("your user id has reached its expiry date.", "LOGIN-06"),
        (
            "I see: Your access has been removed by an Administrator of your organisation. Help!",
            "LOGIN-07",
        ),
        ("my password reset link has expired", "RESET-03"),
        ("account locked after five incorrect passwords", "LOGIN-02"),
        ("Too many login attempts", "LOGIN-09"),
    ],
)
def test_codes_and_message_text_match(typed: str, first: str) -> None:
    assert matched(typed)[0] == first


@pytest.mark.parametrize("typed", ["", "   ", "hi", "hello there", "LOGIN-99", "the thing broke"])
def test_unrelated_text_matches_nothing(typed: str) -> None:
    assert matched(typed) == []


def test_every_message_finds_itself_and_at_most_three_are_shown() -> None:
    for message in codes.MESSAGES:
        found = matched(message.text)
        # Two pages may show the same words ("Enter your User ID": LOGIN-11 and RESET-08): each
        # is then suggested, the best match first.
        same_words = [
            m.code
            for m in codes.MESSAGES
            if m.text.rstrip(".").casefold() == message.text.rstrip(".").casefold()
        ]
        assert message.code in found
        assert found[0] in same_words
        assert matched(message.code) == [message.code]
    assert len(matched("Your User ID")) == suggestions.LIMIT


def test_codes_mentioned_come_first_in_the_order_typed() -> None:
    assert matched("RESET-02 then LOGIN-01") == ["RESET-02", "LOGIN-01"]


# --- over HTTP ---------------------------------------------------------------------------------


def suggestion_links(html: str) -> list[str]:
    return re.findall(r'href="/guides/troubleshooting#([A-Z]+-\d+)"', html)


def test_the_fragment_links_each_match_to_its_guide_entry(client: FlaskClient) -> None:
    response = client.get(
        "/helpdesk/contact/suggestions",
        query_string={"error_message": "Your User ID has reached its expiry date."},
        headers={"HX-Request": "true", "HX-Target": "suggestions"},
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Check this first" in html
    assert suggestion_links(html)[0] == "LOGIN-06"
    assert "<html" not in html  # a fragment, not a page
    empty = client.get("/helpdesk/contact/suggestions", query_string={"error_message": "hello"})
    assert empty.status_code == 200
    assert empty.get_data(as_text=True).strip() == ""


def test_the_form_asks_for_suggestions_while_the_message_is_typed(client: FlaskClient) -> None:
    html = client.get("/helpdesk/contact").get_data(as_text=True)
    textarea = re.search(r"<textarea[^>]*name=\"error_message\"[^>]*>", html)
    assert textarea is not None
    tag = textarea.group(0)
    assert 'hx-get="/helpdesk/contact/suggestions"' in tag
    assert 'hx-trigger="input changed delay:300ms"' in tag
    assert 'hx-target="#suggestions"' in tag
    assert 'id="suggestions"' in html


def test_the_request_records_the_suggestions_this_browser_was_shown(client: FlaskClient) -> None:
    client.get("/helpdesk/contact")
    for partial in ("Your User ID", "Your User ID has reached its expiry date"):
        client.get("/helpdesk/contact/suggestions", query_string={"error_message": partial})
    shown_while_typing = {
        *matched("Your User ID"),
        *matched("Your User ID has reached its expiry date"),
    }
    # A field claiming other suggestions is not believed: only what the server sent counts.
    response = post_contact(client, contact_data(suggestions_shown="RESET-01 LOGIN-99"))
    assert response.status_code == 302
    recorded = (only_request().suggestions_shown or "").split()
    assert set(recorded) == shown_while_typing
    assert len(recorded) == len(set(recorded))  # each once, in the order first shown
    assert recorded[0] == matched("Your User ID")[0]


def test_nothing_suggested_records_nothing_and_a_new_form_starts_afresh(
    client: FlaskClient,
) -> None:
    client.get("/helpdesk/contact/suggestions", query_string={"error_message": "LOGIN-01"})
    client.get("/helpdesk/contact")  # opening the form again: a new start
    assert post_contact(client, contact_data(error_message="zzz qqq")).status_code == 302
    assert only_request().suggestions_shown is None


def test_a_refused_form_shows_suggestions_without_javascript_and_they_count(
    client: FlaskClient,
) -> None:
    client.get("/helpdesk/contact")
    refused = post_contact(client, contact_data(error_message="LOGIN-07", role=None))
    assert refused.status_code == 422
    assert suggestion_links(refused.get_data(as_text=True)) == ["LOGIN-07"]
    assert post_contact(client, contact_data(error_message="LOGIN-07")).status_code == 302
    assert only_request().suggestions_shown == "LOGIN-07"
