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


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text.casefold())


def problems(
    password: str, *, min_length: int, max_length: int, context: Iterable[str] = ()
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
    for word in (*context, *PRODUCT_WORDS):
        word = _squash(word)
        if len(word) >= 4 and word in squashed:
            return [
                "Password must not contain your User ID, your name, your organisation "
                "or the name of this service"
            ]
    return []
