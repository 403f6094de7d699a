"""The plain words people use for a login problem, mapped to Troubleshooting Guide entries: the
data behind "Check this first" (:mod:`portal.helpdesk.suggestions`), kept in one place.

* :data:`SYNONYMS`: words that mean the same to us, rewritten before anything is compared (in
  what was typed *and* in the messages), so ``my account is blocked`` reads as ``my user id is
  locked``.
* :data:`TERMS`: per entry, the phrases someone might type instead of the message itself.  A
  phrase matches when each of its words appears in what was typed (in any order; words compare
  by their first four letters, so ``lock`` covers ``locked`` and ``lockout``).  A matched phrase
  is the strongest clue after a code or the message's own words.

To improve a suggestion, add a phrase here and a line to the table in
``tests/helpdesk/test_suggestion_hit_rate.py`` that proves it.
"""

from __future__ import annotations

#: word → what we read it as (whole words, casefolded, apostrophes already dropped).
SYNONYMS: dict[str, str] = {
    "account": "user id",
    "accounts": "user id",
    "username": "user id",
    "userid": "user id",
    "login id": "user id",
    "logon": "login",
    "blocked": "locked",
    "block": "locked",
    "frozen": "locked",
    "deactivated": "disabled",
    "suspended": "disabled",
    "dormant": "inactive",
    "unused": "inactive",
    "forgotten": "forgot",
    "lost": "forgot",
    "pwd": "password",
    "passcode": "password",
    "timed out": "session ended",
    "timeout": "session ended",
    "kicked": "session ended",
    "logged out": "session ended",
    "out of date": "expired",
    "lapsed": "expired",
}

#: code → plain-language phrases (after :data:`SYNONYMS`).
TERMS: dict[str, tuple[str, ...]] = {
    "LOGIN-01": (
        "incorrect",
        "wrong password",
        "password wrong",
        "password not accepted",
        "password not working",
        "user id not recognised",
        "invalid",
        "forgot password",
        "forgot user id",
        "log in",
    ),
    "LOGIN-02": (
        "locked",
        "five times",
        "too many wrong",
        "locked reset",
    ),
    "LOGIN-03": ("locked", "locked administrator re-enable"),
    "LOGIN-04": (
        "inactive",
        "disabled",
        "not used",
        "not logged",
        "90 days",
        "not used for a while",
    ),
    "LOGIN-05": ("inactive", "disabled", "not used", "90 days"),
    "LOGIN-06": (
        "expired",
        "expiry",
        "expiry date",
        "user id expired",
        "end date",
        "extend",
        "renew",
    ),
    "LOGIN-07": (
        "removed",
        "access removed",
        "revoked",
        "no access",
        "access taken away",
        "left organisation",
    ),
    "LOGIN-08": (
        "administrators only",
        "not an administrator",
        "admin console only",
        "claims handler admin console",
    ),
    "LOGIN-09": ("too many attempts", "network", "try again later", "rate limit"),
    "LOGIN-10": ("session ended", "session expired", "log in again", "keeps logging out"),
    "LOGIN-11": ("empty user id", "blank user id"),
    "LOGIN-12": ("empty password", "blank password"),
    "LOGIN-13": ("password too long", "long password"),
    "LOGIN-14": (
        "one time password",
        "temporary password",
        "first login",
        "new password before",
        "change password first",
    ),
    "LOGIN-15": ("form expired", "page expired", "cookies", "security token", "csrf"),
    "RESET-01": (
        "reset",
        "forgot",
        "no reset email",
        "reset email not arrived",
        "reset email",
        "forgot password",
        "reset password",
        "password reset",
        "email link",
    ),
    "RESET-02": ("link not valid", "link invalid", "link does not work", "broken link"),
    "RESET-03": ("link expired", "reset link expired"),
    "RESET-04": ("link used", "link already used"),
    "RESET-05": ("too many reset", "too many requests", "reset requests"),
    "RESET-06": ("password changed",),
    "RESET-07": ("password changed expired", "changed but expired"),
    "RESET-08": ("reset user id",),
    "RESET-09": ("reset email address", "which email"),
    "PASSWORD-01": ("current password empty",),
    "PASSWORD-02": ("current password wrong", "old password wrong", "old password"),
    "PASSWORD-03": ("new password empty",),
    "PASSWORD-04": ("confirm password", "type again"),
    "PASSWORD-05": ("passwords do not match", "not match", "mismatch"),
    "PASSWORD-06": ("same password", "same as current", "reuse password"),
    "PASSWORD-07": ("too short", "password short", "12 characters", "minimum length"),
    "PASSWORD-08": ("128 characters", "maximum length"),
    "PASSWORD-09": ("too common", "common password", "easy to guess", "weak password"),
    "PASSWORD-10": (
        "repeats",
        "repeated characters",
        "same character",
        "different characters",
    ),
    "PASSWORD-11": (
        "contains my name",
        "contains user id",
        "organisation name in password",
        "name of this service",
    ),
}
