"""docs/security.md UP-05: the daily screenshot quota and the total storage cap, service-wide.

When a limit is reached the form refuses the screenshot with a message by its field, stores
nothing and never crashes; sent again without the screenshot (with the error message typed),
it goes through.
"""

from __future__ import annotations

import logging
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import clock
from portal.config import DEFAULTS
from portal.helpdesk import upload_quota
from tests.helpdesk_factories import make_request

from .conftest import NOTHING
from .conftest import contact_data
from .conftest import counts
from .conftest import image_bytes
from .conftest import post_contact

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def send_with_screenshot(client: FlaskClient) -> str:
    response = post_contact(client, file=(image_bytes(), "shot.png"))
    return response.get_data(as_text=True) if response.status_code == 422 else ""


def test_the_defaults() -> None:
    assert DEFAULTS["PORTAL_SCREENSHOTS_PER_DAY"] == 300
    assert DEFAULTS["PORTAL_SCREENSHOT_MB_PER_DAY"] == 500
    assert DEFAULTS["PORTAL_SCREENSHOT_STORAGE_MB"] == 5000


@pytest.mark.config(PORTAL_SCREENSHOTS_PER_DAY=2)
def test_the_daily_quota_refuses_the_screenshot_not_the_request(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with clock.frozen(NOON - timedelta(days=1)):
        make_request(screenshot=b"y" * 10)  # yesterday's does not count
    with clock.frozen(NOON):
        make_request(created_at=clock.now(), screenshot=b"x" * 10)
        assert send_with_screenshot(client) == ""  # the second today
        before = counts()
        with caplog.at_level(logging.WARNING, logger="portal.helpdesk.upload_quota"):
            page = send_with_screenshot(client)
        assert f'<a href="#screenshot">{upload_quota.DAILY_QUOTA_REACHED}</a>' in page
        assert counts() == before
        assert "daily quota reached (2 screenshots" in caplog.text
        # Without the screenshot, with the error message typed: sent.
        assert post_contact(client, contact_data()).status_code == 302
        assert counts()["helpdesk_requests"] == before["helpdesk_requests"] + 1
    with clock.frozen(NOON + timedelta(days=1)):  # a new day
        assert send_with_screenshot(client) == ""


@pytest.mark.config(PORTAL_SCREENSHOTS_PER_DAY=0)
def test_zero_takes_no_screenshot_and_the_honeypot_sees_the_same(client: FlaskClient) -> None:
    page = send_with_screenshot(client)
    assert upload_quota.DAILY_QUOTA_REACHED in page
    robot = post_contact(
        client, contact_data(website="http://spam.example"), file=(image_bytes(), "s.png")
    )
    assert robot.status_code == 422
    assert upload_quota.DAILY_QUOTA_REACHED in robot.get_data(as_text=True)
    assert counts() == NOTHING


@pytest.mark.config(PORTAL_SCREENSHOT_MB_PER_DAY=1)
def test_the_daily_quota_in_bytes(app: Flask, client: FlaskClient) -> None:
    make_request(created_at=clock.now(), screenshot=b"x" * (1024 * 1024 - 10))
    assert upload_quota.DAILY_QUOTA_REACHED in send_with_screenshot(client)
    assert counts()["helpdesk_screenshots"] == 1


@pytest.mark.config(PORTAL_SCREENSHOT_STORAGE_MB=1)
def test_the_storage_cap_counts_every_stored_screenshot(app: Flask, client: FlaskClient) -> None:
    with clock.frozen(NOON - timedelta(days=400)):
        make_request(screenshot=b"x" * (600 * 1024))
    assert send_with_screenshot(client) == ""  # 600 kB + a small one
    with clock.frozen(NOON - timedelta(days=300)):
        make_request(screenshot=b"x" * (430 * 1024))
    page = send_with_screenshot(client)
    assert f'<a href="#screenshot">{upload_quota.STORAGE_FULL}</a>' in page
    assert counts()["helpdesk_screenshots"] == 3


@pytest.mark.config(PORTAL_SCREENSHOT_STORAGE_MB=1)
def test_the_size_is_checked_again_when_stored(app: Flask, client: FlaskClient) -> None:
    """The check before decoding counts one byte; the stored size is checked as it is kept."""
    make_request(created_at=clock.now(), screenshot=b"x" * (1024 * 1024 - 100))
    page = send_with_screenshot(client)  # passes the first check, not the second
    assert f'<a href="#screenshot">{upload_quota.STORAGE_FULL}</a>' in page
    assert counts()["helpdesk_screenshots"] == 1


def test_the_form_states_the_limits(client: FlaskClient) -> None:
    page = client.get("/helpdesk/contact").get_data(as_text=True)
    assert "at most 5 MB and 15 megapixels (a whole 5K screen fits)" in page


@pytest.mark.config(PORTAL_SCREENSHOTS_PER_DAY=0)
def test_a_full_quota_refuses_before_the_file_is_read(client: FlaskClient) -> None:
    """No decode is spent on a file that could not be kept: even a damaged one gets the
    quota's message."""
    response = post_contact(client, file=(b"\x89PNG\r\n\x1a\n broken", "shot.png"))
    page = response.get_data(as_text=True)
    assert f'<a href="#screenshot">{upload_quota.DAILY_QUOTA_REACHED}</a>' in page
    assert "could not be read" not in page
