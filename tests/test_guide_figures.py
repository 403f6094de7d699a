"""The guides quote the inactivity period from its one home (docs/rules.md R2), not as typed
text: ``{{ inactivity_days }}`` in a content file is filled in when the page is read."""

from __future__ import annotations

import pytest

from portal.accounts import rules
from portal.guides import pages


def test_the_guides_say_the_rules_inactivity_period() -> None:
    text = "\n".join(page.markdown for page in pages.all_pages())
    days = rules.INACTIVITY.days
    assert f"more than {days} days" in text
    assert f"{days}-day inactivity" in text
    assert "{{" not in text


def test_an_unknown_placeholder_is_refused() -> None:
    source = "---\ntitle: T\nsummary: S\ngroup: G\norder: 1\n---\nWait {{ lockout_hours }} hours.\n"
    with pytest.raises(pages.ContentError, match="lockout_hours"):
        pages.parse("example", source)


def test_a_known_placeholder_is_filled() -> None:
    source = "---\ntitle: T\nsummary: S\ngroup: G\norder: 1\n---\nAfter {{inactivity_days}} days.\n"
    assert pages.parse("example", source).markdown == f"After {rules.INACTIVITY.days} days.\n"


def test_the_helpdesk_queue_guide_quotes_the_helpdesk_defaults() -> None:
    """Working hours, the overdue target, reopening and the status link's life: from the
    settings' defaults (portal/config.py), not typed into the guide."""
    from portal import config

    page = pages.get("working-the-helpdesk-queue")
    assert page is not None
    d = config.DEFAULTS
    assert f"{d['PORTAL_HELPDESK_DAY_STARTS']} to {d['PORTAL_HELPDESK_DAY_ENDS']}" in page.markdown
    assert f"({d['PORTAL_HELPDESK_TARGET_DAYS']} working days by" in page.markdown
    assert f"within {d['PORTAL_HELPDESK_REOPEN_DAYS']} days" in page.markdown
    assert f"{d['PORTAL_HELPDESK_STATUS_LINK_DAYS']} days after the" in page.markdown
    assert "{{" not in page.markdown
