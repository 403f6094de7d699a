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
