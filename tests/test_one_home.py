"""One home for each small helper and writer (issue 15, docs/architecture.md §3 rule 10): the
source of portal/ is searched for the copies that used to be there."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from portal import keys
from portal import link_tokens
from portal import paging
from portal import search_text

PORTAL = Path(__file__).resolve().parent.parent / "portal"

#: What each copy looked like → the one module allowed to hold it.
HOMES = {
    "LIKE escaping": (re.compile(r'\.replace\("%", "\\\\%"\)'), "search_text.py"),
    "query cleaning": (re.compile(r"isprintable\(\)\)\.strip\(\)"), "search_text.py"),
    "full-text phrase": (re.compile(r"""replace\('"', '""'\)"""), "search_text.py"),
    "page count": (re.compile(r"max\(1, -\(-\w+ // \w+\)\)"), "paging.py"),
    "case-folded key": (re.compile(r"\.strip\(\)\.casefold\(\)"), "keys.py"),
    "token hash": (re.compile(r"sha256\(token\.encode"), "link_tokens.py"),
    "timeline row": (re.compile(r"\bRequestEvent\("), "helpdesk/timeline.py"),
    "audit row": (re.compile(r"\bAuditEvent\("), "audit/record.py"),
}


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(PORTAL)): path.read_text(encoding="utf-8")
        for path in sorted(PORTAL.rglob("*.py"))
        if "migrations" not in path.parts
    }


@pytest.mark.parametrize("what", sorted(HOMES))
def test_each_helper_has_one_home(what: str) -> None:
    pattern, home = HOMES[what]
    sources = _sources()
    assert pattern.search(sources[home]), f"the pattern for {what} no longer finds its home"
    found = sorted(
        name
        for name, text in sources.items()
        if name != home and pattern.search(text.replace(f"class {_class(what)}(", ""))
    )
    assert found == []


def _class(what: str) -> str:
    """The model whose class statement is not a construction of a row."""
    return {"timeline row": "RequestEvent", "audit row": "AuditEvent"}.get(what, "-")


def test_the_helpers_do_what_the_copies_did() -> None:
    assert search_text.escape_like(r"50%_a\b") == r"50\%\_a\\b"
    assert search_text.contains_pattern("a%") == r"%a\%%"
    assert search_text.starts_with_pattern("a_") == r"a\_%"
    assert search_text.fts_phrase('say "hi"') == '"say ""hi"""'
    assert search_text.clean_query(" a\x00b\tc ", 2) == "ab"
    assert paging.page_count(0, 50) == 1
    assert paging.page_count(101, 50) == 3
    assert paging.offset(3, 50) == 100
    assert paging.whole_number(" 7 ", 1, 9) == 7
    assert paging.whole_number("10", 1, 9) is None
    assert paging.whole_number("-1", 0, 9) is None
    assert paging.whole_number("1" * 10, 0, 10**12) is None
    assert keys.normalise_key("  Straße ") == "strasse"
    assert keys.same_key("A@B.example ", "a@b.EXAMPLE")
    assert not keys.key_fits("ß", 1)
    assert link_tokens.hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(link_tokens.hash_token("\ud800")) == 64  # any text, even a lone surrogate
    assert len(link_tokens.new_token()) == 43
