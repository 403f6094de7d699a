"""The shared test helpers do what the tests rely on."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime

import pytest
from itsdangerous import URLSafeTimedSerializer

from tests.helpers import csrf_token_in
from tests.helpers import today_at
from tests.helpers import without_signed_tokens


class _At(URLSafeTimedSerializer):
    """A serializer whose signer signs at a fixed second (as two requests a second apart do)."""

    def __init__(self, second: int) -> None:
        super().__init__("secret", salt="wtf-csrf-token")
        second_ = second

        class Signer(self.signer):  # type: ignore[name-defined,misc]
            def get_timestamp(self) -> int:
                return second_

        self.signer = Signer


def _page(token: str) -> str:
    return (
        f'<body hx-headers=\'{{"X-CSRFToken": "{token}"}}\'>'
        f'<form><input name="csrf_token" type="hidden" value="{token}"></form></body>'
    )


def test_pages_signed_in_different_seconds_compare_equal_without_their_tokens() -> None:
    value = "a" * 40
    first = _page(str(_At(1_700_000_000).dumps(value)))
    second = _page(str(_At(1_700_000_001).dumps(value)))
    assert first != second  # what made the newsletter test fail on a slow run
    assert without_signed_tokens(first) == without_signed_tokens(second)


def test_other_text_is_kept() -> None:
    page = "<p>HD-000123 user.name@example.com v1.2.3</p>"
    assert without_signed_tokens(page) == page


def test_the_csrf_field_is_read_with_a_parser() -> None:
    token = str(_At(1).dumps("b" * 40))
    assert csrf_token_in(_page(token)) == token


def test_the_csrf_field_is_found_whatever_its_attributes_order() -> None:
    page = '<form><input value="tok.en.value" id="x" name="csrf_token"></form>'
    assert csrf_token_in(page) == "tok.en.value"


def test_a_page_without_a_csrf_field_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="no csrf_token field"):
        csrf_token_in('<form><input name="user_id" value="x"></form>')


def test_today_at_is_the_london_date() -> None:
    # 23:30 UTC on the day British Summer Time begins is 00:30 the next day in London.
    assert today_at(datetime(2026, 3, 29, 23, 30, tzinfo=UTC)) == date(2026, 3, 30)
    assert today_at(datetime(2026, 1, 10, 23, 30, tzinfo=UTC)) == date(2026, 1, 10)
