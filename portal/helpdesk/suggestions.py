"""Check this first: the Troubleshooting Guide entries that match a typed error message.

The entries are the login-message table (``portal.messages``), so a suggestion always
names a message the app really shows, and links to its guide entry.  Best first:

1. a code it mentions (``LOGIN-06``, ``login 6``, ``reset-03``), in the order typed;
2. the message itself: the typed text is part of its text (three words or more, typing in
   progress) or contains it (a pasted message, with or without more around it), the closer in
   length the better;
3. plain words: each entry has phrases people use instead of the message
   (:mod:`portal.helpdesk.search_terms`: ``locked``, ``expired``, ``forgot password``…), and
   its own words.  An entry is suggested when one of its phrases was typed, or when most of the
   typed words (at least two) appear in it.  Rarer words count for more than words that many
   messages share (``user id``, ``password``), so ``my user id is locked`` finds the lockout
   entries, not "Enter your User ID".

Before comparing, text is casefolded, :data:`search_terms.SYNONYMS` are applied (``account`` →
``user id``, ``blocked`` → ``locked``), and words compare by their first four letters
(``expired``/``expiry``, ``locked``/``lockout``).  Pure functions: no Flask, no database.  The
view records which codes it showed.
"""

from __future__ import annotations

import math
import re

from portal import messages
from portal.helpdesk import search_terms

#: At most this many suggestions are shown.
LIMIT = 3
#: Shorter typed text (after normalising) is not matched by its text: too many false hits.
MIN_CHARS = 5
#: Only this much of what was typed is looked at.
MAX_CHARS = 2000
#: Share of the typed words that must appear in a message (and at least two of them).
MIN_WORD_SHARE = 0.6

#: The guide's code prefixes (LOGIN, RESET, PASSWORD, MFA, PASSKEY…), read from the messages
#: themselves so that a new family of codes is recognised without another list to keep.
_PREFIXES = sorted({m.code.split("-")[0] for m in messages.MESSAGES}, key=len, reverse=True)
_CODE = re.compile(rf"\b({'|'.join(_PREFIXES)})\s*[-‐‑–—]?\s*0*(\d{{1,2}})\b", re.IGNORECASE)
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


_SYNONYM = re.compile(
    r"\b("
    + "|".join(re.escape(w) for w in sorted(search_terms.SYNONYMS, key=len, reverse=True))
    + r")\b"
)
#: Typed text must have this many words to match as part of a message (not one word in it).
MIN_PART_WORDS = 3
#: What a matched phrase adds to an entry's score (per word of the phrase, at most two).
PHRASE_BONUS = 0.25


def _normalise(text: str) -> str:
    """Casefolded words, apostrophes dropped (``can't`` → ``cant``), other marks as spaces,
    synonyms replaced."""
    text = text.casefold().replace("’", "").replace("'", "")
    words = " ".join(_NOT_WORD.sub(" ", text).split())
    return _SYNONYM.sub(lambda m: search_terms.SYNONYMS[m.group(1)], words)


def _keys(normalised: str) -> set[str]:
    return {word[:4] for word in normalised.split() if word not in _STOP_WORDS and len(word) > 1}


def _phrases(code: str) -> tuple[frozenset[str], ...]:
    found = (frozenset(_keys(_normalise(p))) for p in search_terms.TERMS.get(code, ()))
    return tuple(keys for keys in found if keys)


#: Per entry: the message, its normalised text and first sentence, its words (with its
#: phrases'), its phrases.
_TABLE = tuple(
    (
        m,
        _normalise(m.text),
        _normalise(m.headline),
        _keys(_normalise(m.text)).union(*_phrases(m.code)),
        _phrases(m.code),
    )
    for m in messages.MESSAGES
)
#: The words of each first sentence (the tie-break in _text_score).
_HEADLINE_KEYS = {entry[2]: _keys(entry[2]) for entry in _TABLE}
#: How telling a word is: words in few entries weigh more (inverse document frequency).
_WEIGHT: dict[str, float] = {}
for _entry in _TABLE:
    for _key in _entry[3]:
        _WEIGHT[_key] = _WEIGHT.get(_key, 0) + 1
_WEIGHT = {key: 1 + math.log(len(_TABLE) / count) for key, count in _WEIGHT.items()}
#: An unknown word weighs as much as the rarest.
_UNKNOWN = 1 + math.log(len(_TABLE))


def _weight(keys: set[str]) -> float:
    return sum(_WEIGHT.get(key, _UNKNOWN) for key in keys)


def codes_mentioned(text: str) -> list[messages.Message]:
    found: list[messages.Message] = []
    for prefix, number in _CODE.findall(text[:MAX_CHARS]):
        message = messages.BY_CODE.get(f"{prefix.upper()}-{int(number):02d}")
        if message is not None and message not in found:
            found.append(message)
    return found


def _text_score(
    typed: str,
    typed_keys: set[str],
    message_text: str,
    headline: str,
    keys: set[str],
    phrases: tuple[frozenset[str], ...],
) -> float:
    """0 for no match; higher is better: the message itself (above 2) beats plain words, and its
    first sentence alone counts as the message when the typed text holds it."""
    if len(typed) >= MIN_CHARS and (
        message_text in typed or (len(typed.split()) >= MIN_PART_WORDS and typed in message_text)
    ):
        # The closer the two lengths, the more of the message was typed.
        whole = headline if typed in headline else message_text
        shorter, longer = sorted((len(typed), len(whole)))
        return 2.0 + shorter / longer
    if headline != message_text and len(headline) >= MIN_CHARS and headline in typed:
        return 2.0 + len(headline) / len(typed)
    if not typed_keys:
        return 0.0
    phrase = max((len(p) for p in phrases if p <= typed_keys), default=0)
    common = typed_keys & keys
    share = len(common) / len(typed_keys)
    if not phrase and (len(common) < 2 or share < MIN_WORD_SHARE):
        return 0.0
    covered = _weight(common) / _weight(typed_keys)
    # Ties go to the entry whose first sentence says most of it (a next step adds no weight).
    said = keys & _HEADLINE_KEYS[headline] or keys
    return covered + PHRASE_BONUS * min(phrase, 2) + 0.01 * _weight(common & said) / _weight(said)


def matching(text: str | None, limit: int = LIMIT) -> list[messages.Message]:
    """The guide entries for ``text``, best first: codes it mentions, then matches by text."""
    text = (text or "")[:MAX_CHARS]
    found = codes_mentioned(text)
    typed = _normalise(_CODE.sub(" ", text))
    typed_keys = _keys(typed)
    scored = []
    for position, (message, message_text, headline, keys, phrases) in enumerate(_TABLE):
        if message in found:
            continue
        score = _text_score(typed, typed_keys, message_text, headline, keys, phrases)
        if score > 0:
            scored.append((-score, position, message))
    found += [message for _score, _position, message in sorted(scored)]
    return found[:limit]
