"""Check this first: the Troubleshooting Guide entries that match a typed error message.

The entries are the login-message table (``portal.messages``), so a suggestion always
names a message the app really shows, and links to its guide entry.  A message matches when

1. its code is mentioned (``LOGIN-06``, ``login 6``, ``reset-03``), or
2. the typed text is part of its text, or contains it (a pasted message, with or without more
   around it), or
3. most of the typed words appear in it (``my password reset link has expired``); words are
   compared by their first four letters, so ``passwords``/``password`` and
   ``expired``/``expiry`` agree.

Pure functions: no Flask, no database.  The view records which codes it showed.
"""

from __future__ import annotations

import re

from portal import messages

#: At most this many suggestions are shown.
LIMIT = 3
#: Shorter typed text (after normalising) is not matched by its text: too many false hits.
MIN_CHARS = 5
#: Only this much of what was typed is looked at.
MAX_CHARS = 2000
#: Share of the typed words that must appear in a message (and at least two of them).
MIN_WORD_SHARE = 0.6

_CODE = re.compile(r"\b(LOGIN|RESET|PASSWORD|MFA)\s*[-‐‑–—]?\s*0*(\d{1,2})\b", re.IGNORECASE)
_NOT_WORD = re.compile(r"[^\w]+")
_STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "the",
        "this",
        "that",
        "to",
        "was",
        "we",
        "were",
        "with",
        "you",
        "your",
        "im",
        "can",
        "cannot",
        "cant",
        "says",
        "said",
    }
)


def _normalise(text: str) -> str:
    """Casefolded words, apostrophes dropped (``can't`` → ``cant``), other marks as spaces."""
    text = text.casefold().replace("’", "").replace("'", "")
    return " ".join(_NOT_WORD.sub(" ", text).split())


def _keys(normalised: str) -> set[str]:
    return {word[:4] for word in normalised.split() if word not in _STOP_WORDS and len(word) > 1}


_TABLE = tuple((m, _normalise(m.text), _keys(_normalise(m.text))) for m in messages.MESSAGES)


def codes_mentioned(text: str) -> list[messages.Message]:
    found: list[messages.Message] = []
    for prefix, number in _CODE.findall(text[:MAX_CHARS]):
        message = messages.BY_CODE.get(f"{prefix.upper()}-{int(number):02d}")
        if message is not None and message not in found:
            found.append(message)
    return found


def _text_score(typed: str, typed_keys: set[str], message_text: str, keys: set[str]) -> float:
    """0 for no match; higher is better (a containment beats a word overlap)."""
    if len(typed) >= MIN_CHARS and (typed in message_text or message_text in typed):
        # The closer the two lengths, the more of the message was typed.
        shorter, longer = sorted((len(typed), len(message_text)))
        return 1.0 + shorter / longer
    common = typed_keys & keys
    if len(common) >= 2 and len(common) / len(typed_keys) >= MIN_WORD_SHARE:
        return len(common) / len(typed_keys) * len(common) / len(keys)
    return 0.0


def matching(text: str | None, limit: int = LIMIT) -> list[messages.Message]:
    """The guide entries for ``text``, best first: codes it mentions, then matches by text."""
    text = (text or "")[:MAX_CHARS]
    found = codes_mentioned(text)
    typed = _normalise(_CODE.sub(" ", text))
    typed_keys = _keys(typed)
    scored = []
    for position, (message, message_text, keys) in enumerate(_TABLE):
        if message in found:
            continue
        score = _text_score(typed, typed_keys, message_text, keys)
        if score > 0:
            scored.append((-score, position, message))
    found += [message for _score, _position, message in sorted(scored)]
    return found[:limit]
