"""The password policy (docs/security.md D-3, PW-01…PW-04), as a pure function: no app, no database.

D-3 settles the figures: at least 12 characters (configurable), at most 128, a blocklist of
common passwords, context words, no composition rules.  Length counts Unicode code points.
"""

from __future__ import annotations

import re
import string

import pytest
from argon2.exceptions import VerifyMismatchError
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from portal import messages
from portal.accounts import passwords
from portal.accounts.password_policy import context_of
from portal.accounts.password_policy import problems

MIN, MAX = 12, 128

TOO_SHORT = f"Password must be at least {MIN} characters long"
TOO_LONG = f"Password must be {MAX} characters or fewer"
TOO_COMMON = "This password is too common: choose one that is harder to guess"
TOO_REPETITIVE = (
    "This password has too few different characters: choose one that is harder to guess"
)
#: A context word's refusal names the word and what it is (PASSWORD-11's pattern).
CONTEXT = re.compile(r"Password must not contain “.+” \(.+\)", re.S)


def is_content_message(message: str) -> bool:
    """Every message problems() may give for a password of an allowed length."""
    return message in {TOO_COMMON, TOO_REPETITIVE} or CONTEXT.fullmatch(message) is not None


#: Not on any list, no repeated runs, no context: the policy has nothing against it.
GOOD_12 = "Tundra!Mosq7"
FOX = "\N{FOX FACE}"  # one code point (U+1F98A), two UTF-16 units, four UTF-8 bytes


def check(password: str, context: tuple[str, ...] = ()) -> list[str]:
    return problems(password, min_length=MIN, max_length=MAX, context=context)


def _long(n: int) -> str:
    """An ``n``-character password with plenty of different characters."""
    text = "".join(f"Plover{i}-Kettle^{chr(0x41 + i % 26)} " for i in range(20))
    assert len(text) >= n
    return text[:n]


# --------------------------------------------------------------------------------------------
# length (PW-01, PW-02)


def test_eleven_characters_are_too_few() -> None:
    assert len("qzv-lumen-8") == 11
    assert check("qzv-lumen-8") == [TOO_SHORT]


def test_twelve_characters_are_enough() -> None:
    assert len(GOOD_12) == 12
    assert check(GOOD_12) == []


def test_128_characters_are_accepted_and_129_are_not() -> None:
    assert check(_long(64)) == []
    assert check(_long(128)) == []
    assert check(_long(129)) == [TOO_LONG]
    assert "128 characters or fewer" in check(_long(129))[0]


def test_a_huge_password_is_refused_for_length_alone() -> None:
    """The cap comes first, so nothing else (blocklist, hashing) looks at 10 kB of input."""
    assert check("password" * 1250) == [TOO_LONG]


def test_an_emoji_counts_as_one_character() -> None:
    twelve = "mxtrbvkelzo" + FOX
    assert len(twelve) == 12
    assert len(twelve.encode("utf-16-le")) // 2 == 13
    assert check(twelve) == []
    eleven = "mxtrbvkelz" + FOX
    assert check(eleven) == [TOO_SHORT]


def test_the_minimum_is_configurable() -> None:
    assert problems("Tundra!Mosq", min_length=8, max_length=MAX) == []
    assert problems(GOOD_12 + "xyz", min_length=16, max_length=MAX) == [
        "Password must be at least 16 characters long"
    ]


# --------------------------------------------------------------------------------------------
# blocklist and context (PW-04)

COMMON = frozenset(FREQUENCY_LISTS["passwords"])
COMMON_LONG = [p for p in FREQUENCY_LISTS["passwords"] if len(p) >= MIN]


def test_the_blocklist_has_enough_long_entries() -> None:
    assert len(FREQUENCY_LISTS["passwords"]) >= 3000
    assert len(COMMON_LONG) >= 5


@pytest.mark.parametrize("password", COMMON_LONG[:8] + COMMON_LONG[-2:])
def test_common_passwords_are_refused(password: str) -> None:
    assert check(password) == [TOO_COMMON]
    assert check(password.upper()) == [TOO_COMMON]


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "Password1234!",
        "iloveyou2024!!",
        "!!!qwerty12345",
        "Sunshine_2026",
        "football123456",
        "PASSWORD123456",
    ],
)
def test_a_common_word_with_digits_or_symbols_is_refused(password: str) -> None:
    assert len(password) >= MIN
    assert check(password) == [TOO_COMMON]


@pytest.mark.parametrize(
    ("password", "context"),
    [
        ("jsmith.acme-winter-lake", ("jsmith.acme", "Acme Insurance Brokers")),
        ("Winter-JSMITH.ACME-lake", ("jsmith.acme", "Acme Insurance Brokers")),
        ("AcmeInsuranceBrokers99!", ("jsmith.acme", "Acme Insurance Brokers")),
        ("my acme insurance brokers pw", ("jsmith.acme", "Acme Insurance Brokers")),
        ("Janet Smith rules 4ever", ("jsmith", "Janet Smith")),
        ("MyClaimsPortal#2026x", ()),
        ("claims portal is my pw", ()),
    ],
)
def test_context_words_are_refused(password: str, context: tuple[str, ...]) -> None:
    result = check(password, context)
    assert len(result) == 1
    assert CONTEXT.fullmatch(result[0])


def test_the_refusal_names_the_word_and_what_it_is() -> None:
    """Issue 12 point 5: "acme lighthouse winter garden 5" says that "Acme" is the problem."""
    context = context_of("jsmith", "Janet Smith", "Acme")
    assert check("acme lighthouse winter garden 5", context) == [
        "Password must not contain “Acme” (your organisation’s name)"
    ]
    assert check("Janet lighthouse winter 5", context) == [
        "Password must not contain “Janet” (your name)"
    ]
    assert check("my claims portal pass", context) == [
        "Password must not contain “claims portal” (the name of this service)"
    ]
    assert messages.for_text(check("acme lighthouse winter garden 5", context)[0]) is (
        messages.get("PASSWORD-11")
    )


def test_short_context_words_do_not_block_everything() -> None:
    """A three-letter organisation like "ABC" would otherwise forbid many good passwords."""
    assert check("abc-Tundra!Mosq7", ("abc",)) == []


def test_repetitive_passwords_are_refused() -> None:
    assert check("aaaaaaaaaaaa") == [TOO_REPETITIVE]
    assert check("abababababab") == [TOO_REPETITIVE]


# --------------------------------------------------------------------------------------------
# no composition rules, no folding (PW-03)


@pytest.mark.parametrize(
    "password",
    [
        "all lower case letters here",
        "ALL UPPER CASE LETTERS HERE",
        "9182736450918273",
        "spaces  inside  are fine",
        "ünïcödé pässwörd tëxt",
        "密码很长而且不常见的句子",
        "🦊🐻🐼🐨🐯🦁🐮🐷🐸🐵🐔🐧",
    ],
)
def test_no_composition_rules(password: str) -> None:
    assert len(password) >= MIN
    assert check(password) == []


def test_case_matters() -> None:
    """Trivial but stated: "Pass…" and "pass…" are different passwords (PW-03), both allowed,
    and the hash of one does not verify the other."""
    upper, lower = "PassTundra!Mosq7", "passTundra!Mosq7"
    assert upper != lower
    assert check(upper) == check(lower) == []
    hasher = passwords.make_hashing(time_cost=1, memory_cost=1024, parallelism=1).hasher
    stored = hasher.hash(upper)
    assert hasher.verify(stored, upper)
    with pytest.raises(VerifyMismatchError):
        hasher.verify(stored, lower)


def test_no_truncation() -> None:
    """A 128-character password verifies only in full (no silent truncation, PW-03)."""
    hasher = passwords.make_hashing(time_cost=1, memory_cost=1024, parallelism=1).hasher
    long = _long(MAX)
    stored = hasher.hash(long)
    assert hasher.verify(stored, long)
    with pytest.raises(VerifyMismatchError):
        hasher.verify(stored, long[:-1])


# --------------------------------------------------------------------------------------------
# the property (PW-03): for any text of an allowed length, problems() either accepts it or
# gives one of the documented content messages; it never raises and never folds lengths

PASSWORD_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(string.ascii_letters + string.digits + string.punctuation + " "),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    min_size=MIN,
    max_size=64,
)


@settings(max_examples=300, deadline=None)
@given(password=PASSWORD_TEXT, context=st.lists(st.text(max_size=20), max_size=3))
@example(password="correct horse battery staple", context=[])
@example(password="x" * 12, context=[])
@example(password="\u00e9" * 6 + "e\u0301" * 3, context=[])  # combining marks: code points count
def test_any_text_of_an_allowed_length_is_accepted_or_refused_with_a_reason(
    password: str, context: list[str]
) -> None:
    result = check(password, tuple(context))
    assert result == [] or (len(result) == 1 and is_content_message(result[0])), result
    if result == []:
        # accepted: so it is not common, repetitive or a context word (checked independently)
        assert password.casefold() not in COMMON
        assert len(set(password)) >= 4


@settings(max_examples=200, deadline=None)
@given(password=st.text(min_size=0, max_size=400))
def test_any_text_gets_a_verdict_never_an_exception(password: str) -> None:
    result = check(password)
    if len(password) < MIN:
        assert result == [TOO_SHORT]
    elif len(password) > MAX:
        assert result == [TOO_LONG]
    else:
        assert result == [] or is_content_message(result[0])


@settings(max_examples=200, deadline=None)
@given(
    password=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
        min_size=MIN,
        max_size=64,
    ).filter(lambda p: len(set(p)) >= 4)
)
def test_varied_text_without_context_is_refused_only_as_common_or_a_product_word(
    password: str,
) -> None:
    """With ≥4 distinct characters and no context, the only possible refusals are a common
    password (after stripping leading/trailing digits and symbols) or a product word."""
    result = check(password)
    if result:
        assert result[0] == TOO_COMMON or CONTEXT.fullmatch(result[0])
