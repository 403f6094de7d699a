"""Small helpers the tests share: one home each, so that no test module copies them."""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: An itsdangerous-signed value (payload.timestamp.signature), as Flask-WTF makes CSRF tokens.
#: Each carries the second it was signed, so two pages made a second apart differ there.
SIGNED_VALUE = re.compile(r"[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{16,}")
#: The request id an error page quotes ("quote this reference"): new for every request.
REQUEST_ID = re.compile(r"<code>[0-9a-f]{32}</code>")


def without_signed_tokens(page: str) -> str:
    """``page`` with every signed token blanked (the form fields' and the one in ``hx-headers``),
    and the request id an error page quotes.

    Compare two pages through this, never raw: a token signed in another second differs.
    """
    return REQUEST_ID.sub("<code></code>", SIGNED_VALUE.sub("", page))


class _CsrfFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name") == "csrf_token" and found.get("value"):
            self.tokens.append(str(found["value"]))


def csrf_token_in(page: str) -> str:
    """The first form CSRF token in ``page`` (read with an HTML parser, not a regex)."""
    finder = _CsrfFinder()
    finder.feed(page)
    if not finder.tokens:
        raise AssertionError("no csrf_token field on the page")
    return finder.tokens[0]
