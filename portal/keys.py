"""Case-folded keys (one home): the trimmed, case-insensitive form in which User IDs, names and
email addresses are stored for uniqueness and look-up, and compared (docs/rules.md §2)."""

from __future__ import annotations


def normalise_key(text: str) -> str:
    """The case-insensitive, trimmed form used for uniqueness and look-up."""
    return text.strip().casefold()


def same_key(a: str, b: str) -> bool:
    """``a`` and ``b`` are the same once trimmed and case-folded."""
    return normalise_key(a) == normalise_key(b)


def key_fits(text: str, length: int) -> bool:
    """Does the stored key of ``text`` fit a ``*_key`` column of ``length`` characters?

    Case-folding can lengthen text ("ß" is "ss", "ﬃ" is "ffi", "ΐ" is three characters), so a
    value that fits its own column may not fit its key's: PostgreSQL then refused the row (a
    500).  Every length check on a keyed value runs on this stored form too.
    """
    return len(normalise_key(text)) <= length
