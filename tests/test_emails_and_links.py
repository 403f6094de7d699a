"""The one way to write an email body (``portal.emails``) and the one way to build a link that
leaves the portal (``portal.links``, docs/security.md RS-06)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from portal import emails
from portal import links

PORTAL = Path(__file__).resolve().parent.parent / "portal"
EMAIL_TEMPLATES = PORTAL / "templates" / emails.FOLDER


@pytest.mark.config(PORTAL_BASE_URL="https://claims.example.org/portal/")
def test_an_absolute_url_starts_with_the_configured_base_url(app: Flask) -> None:
    assert links.base_url() == "https://claims.example.org/portal"
    assert (
        links.absolute_url("/console/users?sort=expiry")
        == "https://claims.example.org/portal/console/users?sort=expiry"
    )


@pytest.mark.config(PORTAL_BASE_URL="https://claims.example.org")
def test_an_absolute_url_never_comes_from_the_host_header(app: Flask) -> None:
    with app.test_request_context("/", base_url="https://evil.example.net"):
        assert links.absolute_url("/guides/") == "https://claims.example.org/guides/"


def test_an_absolute_url_needs_a_path(app: Flask) -> None:
    with pytest.raises(ValueError, match="not an absolute path"):
        links.absolute_url("evil.example.net/guides/")


def test_links_are_built_from_the_base_url_in_one_place() -> None:
    """The copies read PORTAL_BASE_URL and stripped its slash on one line; only links.py may."""
    builders = {
        path.relative_to(PORTAL).as_posix()
        for path in PORTAL.rglob("*.py")
        if re.search(r"PORTAL_BASE_URL\W.*rstrip\(", path.read_text(encoding="utf-8"))
    }
    assert builders == {"links.py"}


def test_an_email_is_plain_text_as_written(app: Flask) -> None:
    """No HTML escaping in a .txt body, and the template's final newline is kept."""
    body = emails.render(
        "helpdesk_user_id.txt",
        full_name='Ada & <Bo> "Lovelace"',
        reference="HD-000001",
        user_id="ADA&1",
        login_link="https://p.test/console/login",
    )
    assert body.startswith('Hello Ada & <Bo> "Lovelace",\n\n')
    assert "Your User ID is: ADA&1\n" in body
    assert body.endswith("nothing has changed.\n")
    assert "&amp;" not in body


def test_a_block_tag_leaves_no_blank_line(app: Flask) -> None:
    body = emails.render(
        "lockout_administrators.txt",
        lockout_after=5,
        locked=[("U1", "One", "2 Mar 2026 09:00 GMT", "https://p.test/console/users/1")],
        more=0,
        lockouts_link="https://p.test/console/users?reason=lockout",
        every=15,
    )
    assert "in a row:\n\n- U1 (One) was locked out at 2 Mar 2026 09:00 GMT: " in body
    assert "/console/users/1\n\nIf this was not expected" in body
    assert "more" not in body


def test_every_email_template_is_used() -> None:
    """Each body in templates/email/ is rendered by some module (partials start with "_")."""
    code = "\n".join(path.read_text(encoding="utf-8") for path in PORTAL.rglob("*.py"))
    names = sorted(p.name for p in EMAIL_TEMPLATES.iterdir() if not p.name.startswith("_"))
    assert names
    unused = [name for name in names if not re.search(rf"[\"']{re.escape(name)}[\"']", code)]
    assert unused == []
