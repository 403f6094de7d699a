"""Password policy (docs/security.md D-3, PW-01…PW-04): length, a blocklist, context words.

No composition rules.  Length counts Unicode code points.  The maximum is checked before
anything is hashed.  The blocklist is zxcvbn's list of the 30,000 most common passwords.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

_TRAILING_JUNK = re.compile(r"[\d\W_]+$")
_LEADING_JUNK = re.compile(r"^[\d\W_]+")
PRODUCT_WORDS = ("claims portal", "claimsportal", "portal console")

#: What a context word is, as the refusal names it (``problems(context=[(word, what), ...])``).
USER_ID = "your User ID"
NAME = "your name"
ORGANISATION = "your organisation’s name"
SERVICE = "the name of this service"
#: For a context word given without saying what it is.
ABOUT_YOU = "your User ID, your name or your organisation"
#: The refusal of a context word: it names the word and what it is (PASSWORD-11).
CONTAINS = "Password must not contain “{word}” ({what})"


def context_of(user_id: str, full_name: str, organisation: str) -> list[tuple[str, str]]:
    """The words a password of this user must not contain, each with what it is."""
    return [
        (user_id, USER_ID),
        (full_name, NAME),
        (organisation, ORGANISATION),
        *((part, NAME) for part in full_name.split()),
    ]


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text.casefold())


def problems(
    password: str,
    *,
    min_length: int,
    max_length: int,
    context: Iterable[str | tuple[str, str]] = (),
) -> list[str]:
    """What is wrong with ``password``, as messages for the person choosing it (empty: fine)."""
    length = len(password)
    if length > max_length:
        return [f"Password must be {max_length} characters or fewer"]
    if length < min_length:
        return [f"Password must be at least {min_length} characters long"]
    lowered = password.casefold()
    base = _LEADING_JUNK.sub("", _TRAILING_JUNK.sub("", lowered))
    common = common_passwords()
    if lowered in common or (len(base) >= 4 and base in common):
        return ["This password is too common: choose one that is harder to guess"]
    if len(set(password)) < 4:
        return [
            "This password has too few different characters: choose one that is harder to guess"
        ]
    squashed = _squash(password)
    labelled = [item if isinstance(item, tuple) else (item, ABOUT_YOU) for item in context]
    for word, what in (*labelled, *((w, SERVICE) for w in PRODUCT_WORDS)):
        if len(_squash(word)) >= 4 and _squash(word) in squashed:
            # Name the word, so that the person knows what to leave out.
            return [CONTAINS.format(word=word.strip(), what=what)]
    return []
