"""How often "Check this first" puts the right Troubleshooting Guide entry in its top three, on
phrases people really type (issue 14 point 6).  ``pytest -s`` prints the rate; the assertion
message carries it too, and every miss."""

from __future__ import annotations

import pytest

from portal import messages
from portal.helpdesk import suggestions

#: (what someone types, the entry that answers it).  LOGIN-02/03 and LOGIN-04/05 are the same
#: problem seen by an Administrator or a Claims Handler: either counts for the other.
PHRASES: tuple[tuple[str, str], ...] = (
    ("my user id is locked", "LOGIN-02"),
    ("my account is locked", "LOGIN-02"),
    ("locked out", "LOGIN-02"),
    ("I am locked out of the portal", "LOGIN-02"),
    ("account blocked", "LOGIN-02"),
    ("my login is blocked after too many wrong passwords", "LOGIN-02"),
    ("typed the password wrong five times", "LOGIN-02"),
    ("expired", "LOGIN-06"),
    ("my user id has expired", "LOGIN-06"),
    ("account expired", "LOGIN-06"),
    ("it says my expiry date has passed", "LOGIN-06"),
    ("user id out of date", "LOGIN-06"),
    ("disabled", "LOGIN-04"),
    ("my account has been disabled", "LOGIN-04"),
    ("account deactivated because I had not logged in", "LOGIN-04"),
    ("inactive", "LOGIN-04"),
    ("not used for 90 days", "LOGIN-04"),
    ("dormant account", "LOGIN-04"),
    ("forgot my password", "RESET-01"),
    ("forgotten password", "RESET-01"),
    ("reset my password", "RESET-01"),
    ("I did not get the password reset email", "RESET-01"),
    ("forgot my user id", "LOGIN-01"),
    ("wrong password", "LOGIN-01"),
    ("user id or password incorrect", "LOGIN-01"),
    ("password not accepted", "LOGIN-01"),
    ("reset link expired", "RESET-03"),
    ("the password reset link has expired", "RESET-03"),
    ("reset link does not work", "RESET-02"),
    ("link already used", "RESET-04"),
    ("access removed", "LOGIN-07"),
    ("my access has been revoked", "LOGIN-07"),
    ("too many attempts", "LOGIN-09"),
    ("too many login attempts from my network", "LOGIN-09"),
    ("session ended", "LOGIN-10"),
    ("it keeps logging me out", "LOGIN-10"),
    ("session timed out", "LOGIN-10"),
    ("form expired", "LOGIN-15"),
    ("the page expired when I tried to log in", "LOGIN-15"),
    ("admin console is for administrators only", "LOGIN-08"),
    ("I am not an administrator", "LOGIN-08"),
    ("must change my temporary password", "LOGIN-14"),
    ("one time password", "LOGIN-14"),
    ("passwords do not match", "PASSWORD-05"),
    ("password too short", "PASSWORD-07"),
    ("password must be 12 characters", "PASSWORD-07"),
    ("password too common", "PASSWORD-09"),
    ("password repeats characters", "PASSWORD-10"),
    ("old password is wrong", "PASSWORD-02"),
    ("cannot use the same password", "PASSWORD-06"),
    ("too many reset requests", "RESET-05"),
    ("password has my name in it", "PASSWORD-11"),
    ("reset", "RESET-01"),
    ("forgot", "RESET-01"),
    ("I cannot log in", "LOGIN-01"),
    ("can't log in, says user id or password is wrong", "LOGIN-01"),
    ("LOGIN-06", "LOGIN-06"),
    ("login 3", "LOGIN-03"),
    ("Your User ID has reached its expiry date.", "LOGIN-06"),
    ("Your access has been removed by an Administrator", "LOGIN-07"),
)
SAME_PROBLEM = {"LOGIN-02": {"LOGIN-03"}, "LOGIN-04": {"LOGIN-05"}}
TARGET = 0.9


def _hit(found: list[str], expected: str) -> bool:
    return bool({expected, *SAME_PROBLEM.get(expected, set())} & set(found))


def test_the_table_names_real_entries() -> None:
    assert len(PHRASES) >= 40
    assert all(code in messages.BY_CODE for _typed, code in PHRASES)


def test_top_three_hit_rate() -> None:
    misses = []
    for typed, expected in PHRASES:
        found = [m.code for m in suggestions.matching(typed, limit=3)]
        if not _hit(found, expected):
            misses.append(f"{typed!r}: expected {expected}, got {found}")
    rate = 1 - len(misses) / len(PHRASES)
    report = f"suggestion top-3 hit rate: {rate:.1%} of {len(PHRASES)} phrases"
    print(f"\n{report}" + "".join(f"\n  miss {m}" for m in misses))
    assert rate >= TARGET, report + "; misses:\n" + "\n".join(misses)


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("my user id is locked", {"LOGIN-02", "LOGIN-03"}),
        ("my account is locked", {"LOGIN-02", "LOGIN-03"}),
        ("expired", {"LOGIN-06"}),
        ("LOGIN-06", {"LOGIN-06"}),
        ("Your form expired. Please try again.", {"LOGIN-15"}),
    ],
)
def test_plain_words_put_the_right_entry_first(typed: str, first: set[str]) -> None:
    assert suggestions.matching(typed)[0].code in first


def test_expiry_comes_before_the_expired_form() -> None:
    found = [m.code for m in suggestions.matching("expired", limit=10)]
    assert "LOGIN-06" in found
    assert "LOGIN-15" not in found or found.index("LOGIN-06") < found.index("LOGIN-15")
