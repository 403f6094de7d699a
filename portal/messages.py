"""Every message the portal shows about accounts, in one module (docs/architecture.md §2).

* **Login codes**: every message a login or password reset page can show: code, text, cause,
  what to do, who can help.  One table, used by the login views and rendered by the
  Troubleshooting Guide, so a message cannot exist without its guide entry.  Codes are stable
  (people quote them to the Helpdesk).  The login service returns outcomes; the web layer turns
  them into messages here (:func:`for_login`).
* **Refusal texts**: what the Admin Console (:data:`CONSOLE_REFUSALS`,
  :data:`PROFILE_REFUSALS`), the operator pages (:data:`OPERATOR_REFUSALS`) and the CLI
  (:func:`cli_refusal`) say when ``rules`` refuses a change.

It imports only ``accounts.rules`` and ``accounts.states`` from the portal, so every layer may
use it; ``guides`` renders its table and nothing in ``accounts`` imports ``guides``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portal.accounts import rules
from portal.accounts import states

_DAYS = states.INACTIVITY_DAYS

YOURSELF = "Yourself"
ADMINISTRATOR = "Your Administrator"
HELPDESK = "The Helpdesk"
PORTAL_TEAM = "The Portal team"


@dataclass(frozen=True)
class Message:
    code: str
    text: str
    cause: str
    what_to_do: str
    who_can_help: tuple[str, ...]
    #: For messages with a number in them ("… at least 12 characters"): a regular expression
    #: the shown text matches in full.  ``text`` is then the message as shown by default.
    pattern: str | None = None

    @property
    def anchor(self) -> str:
        return self.code

    @property
    def section(self) -> str:
        return self.code.split("-")[0]

    @property
    def headline(self) -> str:
        """The first sentence: what happened. A message may go on with the next step
        ("… five times. Ask your Administrator to re-enable it."); requesters often quote only
        the first sentence, or an older text that had only it."""
        first, dot, _rest = self.text.partition(". ")
        return first + "." if dot else self.text

    def matches(self, shown: str) -> bool:
        if self.pattern is not None:
            return re.fullmatch(self.pattern, shown) is not None
        return shown == self.text


#: Who can help, as the guide explains them (the values of ``who_can_help``).
HELPERS: dict[str, str] = {
    YOURSELF: "You can put this right yourself, following “What to do”.",
    ADMINISTRATOR: "One of your organisation's Administrators (listed on your Portal home page) "
    "can re-enable your User ID, reset your password or extend your expiry date in the "
    "Admin Console.",
    HELPDESK: "The Helpdesk answers questions and refers problems on; it cannot enable User IDs "
    "or change passwords or expiry dates.",
    PORTAL_TEAM: "The Portal team can re-enable or extend any User ID when nobody in your "
    "organisation can; reach them through the Helpdesk.",
}

#: The guide's sections, in order: code prefix → heading.
SECTIONS: dict[str, str] = {
    "LOGIN": "Logging in",
    "RESET": "Resetting an Administrator password",
    "PASSWORD": "Choosing a password",
    "MFA": "Second factor (authenticator app, passkey, recovery codes)",
    "PASSKEY": "Using a passkey",
}


MESSAGES: tuple[Message, ...] = (
    Message(
        "LOGIN-01",
        "The User ID or password is incorrect.",
        "The User ID does not exist, or the password does not match it. For your security we "
        "do not say which. Five incorrect passwords in a row lock the User ID. Possibly "
        "locked: once a User ID is locked or disabled and five more incorrect passwords have "
        "been tried, this message is the answer to every attempt, even with the right "
        "password, until the User ID is re-enabled (so that nobody can keep guessing).",
        "Check the User ID (it is not your email address) and type the password again, "
        "watching for Caps Lock. If you have forgotten the password, ask one of your "
        "organisation's Administrators to reset it. If you are sure the password is right, "
        "your User ID is probably locked (you may have had an email saying so): stop trying, "
        "and ask one of your organisation's Administrators to tick Enabled for it in the "
        "Admin Console. An Administrator may instead reset their own password by email "
        '("Forgotten your password?" on the Admin Console login page), which also restores '
        "access after a lockout. If no Administrator can help, contact the Helpdesk.",
        (YOURSELF, ADMINISTRATOR, HELPDESK),
    ),
    Message(
        "LOGIN-02",
        "Your User ID is locked because the password was entered incorrectly five times. "
        'Reset your password with "Forgotten your password?" to unlock it.',
        "Five incorrect passwords in a row were entered for this User ID.",
        "As an Administrator disabled by the system you may reset your own password by "
        'email: follow "Forgotten your password?" on the Admin Console login page. A reset '
        "also restores your access. Or ask another Administrator of your organisation to "
        "re-enable you. If none can, contact the Helpdesk. Do not keep trying: after five "
        "more incorrect passwords the login page only says LOGIN-01.",
        (YOURSELF, ADMINISTRATOR),
    ),
    Message(
        "LOGIN-03",
        "Your User ID is locked because the password was entered incorrectly five times. "
        "Ask your Administrator to re-enable it.",
        "Five incorrect passwords in a row were entered for this User ID.",
        "Ask one of your organisation's Administrators to tick Enabled for your User ID "
        "(and, if you have forgotten it, to reset your password). Do not keep trying: after "
        "five more incorrect passwords the login page only says LOGIN-01.",
        (ADMINISTRATOR,),
    ),
    Message(
        "LOGIN-04",
        f"Your User ID was disabled because it had not been used for more than {_DAYS} days. "
        'Reset your password with "Forgotten your password?" to restore it.',
        f"Nobody logged in with this User ID for more than {_DAYS} days.",
        "As an Administrator disabled by the system you may reset your own password by "
        'email: follow "Forgotten your password?" on the Admin Console login page. A reset '
        "also restores your access. Or ask another Administrator of your organisation to "
        "re-enable you. If none can, contact the Helpdesk.",
        (YOURSELF, ADMINISTRATOR),
    ),
    Message(
        "LOGIN-05",
        f"Your User ID was disabled because it had not been used for more than {_DAYS} days. "
        "Ask your Administrator to re-enable it.",
        f"Nobody logged in with this User ID for more than {_DAYS} days.",
        "Ask one of your organisation's Administrators to tick Enabled for your User ID.",
        (ADMINISTRATOR,),
    ),
    Message(
        "LOGIN-06",
        "Your User ID has reached its expiry date. Ask an Administrator of your organisation "
        "to extend it; if you are the only one, contact the Helpdesk.",
        "Every User ID has an expiry date; access ends on that day.",
        "Ask one of your organisation's Administrators to extend the expiry date and then "
        "tick Enabled. An Administrator cannot extend its own expiry date once it is "
        "reached: ask another Administrator of your organisation, or, if there is none with "
        "access, contact the Helpdesk, who will refer you to the Portal team (they extend it).",
        (ADMINISTRATOR, HELPDESK, PORTAL_TEAM),
    ),
    Message(
        "LOGIN-07",
        "Your access has been removed by an Administrator of your organisation.",
        "An Administrator of your organisation unticked Enabled for your User ID.",
        "Speak to your organisation's Administrators; only they can restore it.",
        (ADMINISTRATOR,),
    ),
    Message(
        "LOGIN-08",
        "The Admin Console is for Administrators only. Log in to the Portal instead.",
        "Your User ID is not an Administrator's.",
        "Use the Portal login. If you should be an Administrator, ask one of your "
        "organisation's Administrators to change your profile.",
        (YOURSELF, ADMINISTRATOR),
    ),
    Message(
        "LOGIN-09",
        "Too many login attempts from your network. Wait a few minutes and try again.",
        "Many login attempts came from your network address in a short time.",
        "Wait a few minutes, then try again. Do not keep retrying a password you are unsure "
        "of: five incorrect passwords lock the User ID.",
        (YOURSELF, HELPDESK),
    ),
    Message(
        "LOGIN-10",
        "Your session has ended. Log in again.",
        "You were inactive for a while, logged in too long ago, logged out elsewhere, or "
        "your access or password changed.",
        "Log in again. If you are refused, the message you then see says why.",
        (YOURSELF,),
    ),
    Message(
        "LOGIN-11",
        "Enter your User ID.",
        "The User ID box was empty.",
        "Type the User ID your Administrator gave you.",
        (YOURSELF,),
    ),
    Message(
        "LOGIN-12",
        "Enter your password.",
        "The password box was empty.",
        "Type your password.",
        (YOURSELF,),
    ),
    Message(
        "LOGIN-13",
        "The password is too long.",
        "Passwords have a maximum length, and what was typed or pasted is longer.",
        "Check what was pasted into the password box and try again.",
        (YOURSELF,),
    ),
    Message(
        "LOGIN-14",
        "Welcome. Choose a password of your own to continue.",
        "You logged in with a one-time password, which must be changed at first login.",
        "Type a new password of your own twice. The one-time password you have just logged "
        "in with is not asked for again.",
        (YOURSELF,),
    ),
    Message(
        "LOGIN-15",
        "Your form expired. Please try again.",
        "The page was open too long or your browser blocked its security token (cookies).",
        "Reload the page and log in again. Make sure cookies are allowed for this site.",
        (YOURSELF, HELPDESK),
    ),
    # --- the self-service password reset for Administrators (docs/rules.md R7)
    Message(
        "RESET-01",
        "If the details match an Administrator who may reset their password, we have sent an "
        "email with a link to choose a new one.",
        "For your security this page gives the same answer whatever was typed. A link is sent "
        "only when the User ID and the email address both match an Administrator's account "
        "whose access was not removed by another Administrator.",
        "Open the link in the email; it works once, for 60 minutes as standard. If nothing "
        "arrives within a "
        "few minutes, check your spam folder and that you typed the email address your "
        "Administrator account has. At most 3 links are sent per account per hour. Claims "
        "Handlers cannot reset their own password: ask one of your organisation's "
        "Administrators. If another Administrator removed your access, only they can restore "
        "it.",
        (YOURSELF, ADMINISTRATOR, HELPDESK),
    ),
    Message(
        "RESET-02",
        "This password reset link is not valid.",
        "The link is incomplete, or it no longer works because the account changed after it "
        "was sent: the password was changed, someone logged in with the User ID, a newer "
        "reset was completed, or the access was disabled or removed.",
        'Ask for a new link from "Forgotten your password?" on the Admin Console login page, '
        "and use the newest email. Copy the whole link if your email program split it.",
        (YOURSELF, ADMINISTRATOR),
    ),
    Message(
        "RESET-03",
        "This password reset link has expired.",
        "A password reset link works for a limited time after it was sent (60 minutes as "
        "standard).",
        'Ask for a new link from "Forgotten your password?" on the Admin Console login page.',
        (YOURSELF,),
    ),
    Message(
        "RESET-04",
        "This password reset link has already been used.",
        "Each password reset link works once.",
        "If you have just chosen a new password, log in with it. Otherwise ask for a new link "
        'from "Forgotten your password?" on the Admin Console login page.',
        (YOURSELF,),
    ),
    Message(
        "RESET-05",
        "Too many password reset requests from your network. Wait an hour and try again.",
        "Many password reset requests came from your network address in a short time.",
        "Wait an hour, then ask once. Check your spam folder for the emails already sent.",
        (YOURSELF, HELPDESK),
    ),
    Message(
        "RESET-06",
        "Your password has been changed. Log in with your new password.",
        "You chose a new password with a password reset link. Every session of your User ID "
        "was ended, and access was restored if the system had disabled it for a lockout or "
        "inactivity.",
        "Log in with the new password.",
        (YOURSELF,),
    ),
    Message(
        "RESET-07",
        "Your password has been changed, but your User ID has reached its expiry date: access "
        "stays off until the expiry date is extended.",
        "A password reset does not change the expiry date of a User ID.",
        "Ask another Administrator of your organisation to extend your expiry date and tick "
        "Enabled. If there is none, contact the Helpdesk, who will refer you to the Portal "
        "team.",
        (ADMINISTRATOR, HELPDESK, PORTAL_TEAM),
    ),
    Message(
        "RESET-08",
        "Enter your User ID",
        "The User ID box of the password reset form was empty.",
        "Type the User ID of your Administrator account (it is not your email address).",
        (YOURSELF,),
    ),
    Message(
        "RESET-09",
        "Enter the email address of your account",
        "The email address box of the password reset form was empty.",
        "Type the email address your Administrator account was registered with; the link is "
        "sent only there.",
        (YOURSELF,),
    ),
    # --- choosing a password: the change-password page and the reset's new-password page
    Message(
        "PASSWORD-01",
        "Enter your current password",
        "The current password box was empty.",
        "Type the password you logged in with (the one-time password, at first login).",
        (YOURSELF,),
    ),
    Message(
        "PASSWORD-02",
        "The current password is wrong",
        "The current password does not match. Incorrect current passwords count towards the "
        "lockout, as at login.",
        "Type it again carefully. If you have forgotten it, log out and ask one of your "
        "organisation's Administrators to reset it (Administrators may reset their own by "
        "email).",
        (YOURSELF, ADMINISTRATOR),
    ),
    Message(
        "PASSWORD-03",
        "Enter a new password",
        "The new password box was empty.",
        "Type the new password you have chosen.",
        (YOURSELF,),
    ),
    Message(
        "PASSWORD-04",
        "Type the new password again",
        "The box to confirm the new password was empty.",
        "Type the new password a second time, exactly as in the first box.",
        (YOURSELF,),
    ),
    Message(
        "PASSWORD-05",
        "The two new passwords do not match",
        "What was typed in the two new-password boxes differs.",
        "Type the same new password in both boxes.",
        (YOURSELF,),
    ),
    Message(
        "PASSWORD-06",
        "The new password must be different from the current one",
        "The new password is the same as the current one.",
        "Choose a password you have not used here.",
        (YOURSELF,),
    ),
    Message(
        "PASSWORD-07",
        "Password must be at least 12 characters long",
        "The new password is shorter than the minimum length (12 characters as standard).",
        "Choose a longer password. A phrase of several words is easy to remember and hard to "
        "guess.",
        (YOURSELF,),
        pattern=r"Password must be at least \d+ characters long",
    ),
    Message(
        "PASSWORD-08",
        "Password must be 128 characters or fewer",
        "The new password is longer than the maximum length (128 characters as standard).",
        "Choose a shorter password, and check what was pasted into the box.",
        (YOURSELF,),
        pattern=r"Password must be \d+ characters or fewer",
    ),
    Message(
        "PASSWORD-09",
        "This password is too common: choose one that is harder to guess",
        "The password is on a list of passwords that are often used, and often guessed.",
        "Choose something less predictable, such as several unrelated words.",
        (YOURSELF,),
    ),
    Message(
        "PASSWORD-10",
        "This password has too few different characters: choose one that is harder to guess",
        "The password uses too few different characters (for example aaaaaaaaaaaa).",
        "Choose a password with more variety, such as several unrelated words.",
        (YOURSELF,),
    ),
    Message(
        "PASSWORD-11",
        "Password must not contain “acme” (your organisation’s name)",
        "Passwords built from what others know about you are easy to guess: your User ID, "
        "your name, your organisation's name or the name of this service. The message names "
        "the word it found.",
        "Leave that word out, and choose a password that has nothing to do with you, your "
        "firm or this service.",
        (YOURSELF,),
        pattern=r"Password must not contain “.+” \((your User ID|your name|your organisation’s "
        r"name|the name of this service|your User ID, your name or your organisation)\)",
    ),
    # --- the second factor (docs/rules.md R10): the login's code step and the enrolment page
    Message(
        "MFA-01",
        "The second-factor code is incorrect.",
        "The code typed is not the current code of your authenticator app, nor one of your "
        "unused recovery codes. A code works once: a code already used is refused too. Five "
        "incorrect codes in a row lock the User ID, even though the password was right.",
        "Type the 6-digit code your authenticator app shows now (not one you used already: "
        "wait for the next one), or one of your recovery codes. If the codes never work, "
        "check that the time on your phone is set automatically. If you lost your phone and "
        "your recovery codes, ask for your second factor to be reset: another Administrator "
        "of your organisation can, and for the last Administrator or operator staff the "
        "Portal team can, through the Helpdesk.",
        (YOURSELF, ADMINISTRATOR, HELPDESK),
    ),
    Message(
        "MFA-02",
        "Your password was right, but the second-factor code was entered incorrectly five "
        "times in a row, so your User ID is now locked.",
        "Five incorrect second-factor codes in a row were entered after the right password. "
        "The User ID is locked like after five incorrect passwords, and you were sent an "
        "email about it.",
        "If it was not you, someone knows your password: tell your Administrator. To get back "
        "in, ask another Administrator of your organisation to tick Enabled for your User ID "
        "(Administrators may instead reset their own password by email, which also restores "
        "access; the second factor is still asked afterwards). If you no longer have your "
        "authenticator app or recovery codes, ask for your second factor to be reset as well. "
        "Choose a new password once you are back in.",
        (ADMINISTRATOR, HELPDESK, PORTAL_TEAM),
    ),
    Message(
        "MFA-03",
        "Your login took too long. Enter your User ID and password again.",
        "After the password, the second-factor code must be entered within 5 minutes.",
        "Log in again and type the code when it is asked.",
        (YOURSELF,),
    ),
    Message(
        "MFA-04",
        "You must set up a second factor before you continue.",
        "Your profile (Administrator, Helpdesk or Portal team, as this portal is set up) must "
        "use a second factor: an authenticator app or a passkey, with recovery codes.",
        "Follow the steps on the page: read the code that was emailed to you (if asked), then "
        'scan the QR code with an authenticator app and type the code it shows. See "Setting '
        'up your second factor" in the User Guides.',
        (YOURSELF, HELPDESK),
    ),
    Message(
        "MFA-05",
        "The email code is incorrect or has expired.",
        "The code typed is not the one emailed for setting up a second factor, or it is older "
        "than 15 minutes, was used already, or was tried incorrectly five times.",
        'Choose "Email me a new code", then type the code from the newest email. It goes to '
        "the email address of your User ID; if that address is wrong, ask your Administrator "
        "to correct it.",
        (YOURSELF, ADMINISTRATOR),
    ),
    Message(
        "MFA-06",
        "Confirm it is you: enter a code from your second factor first.",
        "Adding or removing a second factor, or making new recovery codes, asks for a current "
        "code when the last one was entered more than 5 minutes ago.",
        "Type the code your authenticator app shows now, or one of your recovery codes. "
        "Incorrect codes count towards the lockout, as at login.",
        (YOURSELF,),
    ),
    Message(
        "MFA-07",
        "Enter the code.",
        "The code box was empty.",
        "Type the 6-digit code from your authenticator app, or one of your recovery codes.",
        (YOURSELF,),
    ),
    Message(
        "PASSKEY-01",
        "The passkey was not accepted. Try again, or use a code from your authenticator app "
        "or a recovery code.",
        "The answer from your browser could not be used: the page was open for more than 5 "
        "minutes, the passkey is not one registered for this User ID, or the browser sent "
        "something unreadable. This does not count as a wrong code.",
        "Select “Use a passkey” again and choose the passkey you added for this User ID. If it "
        "keeps failing, type a code from your authenticator app or one of your recovery codes "
        "instead, then add the passkey again on your Second factor page.",
        (YOURSELF,),
    ),
    Message(
        "PASSKEY-02",
        "The passkey did not match. This counts as a wrong code.",
        "Your browser answered with one of your passkeys, but its signature did not check out "
        "(a damaged or copied passkey). Five wrong codes in a row lock the User ID, even after a "
        "right password.",
        "Try again with the same device, or type a code from your authenticator app or a "
        "recovery code. If the passkey keeps failing, remove it on your Second factor page and "
        "add it again.",
        (YOURSELF,),
    ),
    Message(
        "PASSKEY-03",
        "This browser cannot use passkeys here. Use a code from your authenticator app or a "
        "recovery code.",
        "The browser has no passkey support, or the portal was opened at an address other than "
        "its own name (passkeys never work at a numeric address such as 127.0.0.1).",
        "Open the portal at the address your organisation uses (the one in your emails), or use "
        "another browser. A code from your authenticator app or a recovery code always works.",
        (YOURSELF,),
    ),
    Message(
        "PASSKEY-04",
        "The passkey was not used: the request was cancelled or took too long. Try again.",
        "The browser's passkey prompt was closed, timed out, or found no passkey of yours on "
        "this device. Nothing was sent, and it does not count as a wrong code.",
        "Select “Use a passkey” again and confirm with your fingerprint, face, PIN or security "
        "key. If this device has none of your passkeys, use a code from your authenticator app "
        "or a recovery code.",
        (YOURSELF,),
    ),
    Message(
        "PASSKEY-05",
        "Give the passkey a name (up to 100 characters), such as “Work laptop”.",
        "The name box was empty or too long. The name tells your passkeys apart in the list of "
        "your second factors.",
        "Type a short name for the device the passkey is on, then choose “Add a passkey” again.",
        (YOURSELF,),
    ),
)

BY_CODE: dict[str, Message] = {m.code: m for m in MESSAGES}
BY_TEXT: dict[str, Message] = {m.text: m for m in MESSAGES}

#: Login refusals after a *correct* password: (outcome, may reset own password) → code.
_REFUSAL_CODES: dict[tuple[rules.Outcome, bool], str] = {
    (rules.Outcome.REFUSED_LOCKOUT, True): "LOGIN-02",
    (rules.Outcome.REFUSED_LOCKOUT, False): "LOGIN-03",
    (rules.Outcome.REFUSED_INACTIVITY, True): "LOGIN-04",
    (rules.Outcome.REFUSED_INACTIVITY, False): "LOGIN-05",
    (rules.Outcome.REFUSED_EXPIRY, True): "LOGIN-06",
    (rules.Outcome.REFUSED_EXPIRY, False): "LOGIN-06",
    (rules.Outcome.REFUSED_REMOVED, True): "LOGIN-07",
    (rules.Outcome.REFUSED_REMOVED, False): "LOGIN-07",
}

GENERIC_FAILURE = "LOGIN-01"
CONSOLE_NOT_ALLOWED = "LOGIN-08"
RATE_LIMITED = "LOGIN-09"
SESSION_ENDED = "LOGIN-10"
MUST_CHANGE_PASSWORD = "LOGIN-14"
FORM_EXPIRED = "LOGIN-15"
RESET_REQUESTED = "RESET-01"
RESET_INVALID = "RESET-02"
RESET_EXPIRED = "RESET-03"
RESET_USED = "RESET-04"
RESET_RATE_LIMITED = "RESET-05"
RESET_DONE = "RESET-06"
RESET_DONE_EXPIRED = "RESET-07"
CODE_WRONG = "MFA-01"
CODE_LOCKOUT = "MFA-02"
CODE_TIMED_OUT = "MFA-03"
ENROL_REQUIRED = "MFA-04"
EMAIL_CODE_WRONG = "MFA-05"
CHECK_AGAIN = "MFA-06"
CODE_EMPTY = "MFA-07"
PASSKEY_NOT_ACCEPTED = "PASSKEY-01"
PASSKEY_MISMATCH = "PASSKEY-02"
PASSKEY_UNSUPPORTED = "PASSKEY-03"
PASSKEY_NOT_USED = "PASSKEY-04"
PASSKEY_NAME_NEEDED = "PASSKEY-05"


def for_refusal(outcome: rules.Outcome, *, may_self_reset: bool) -> Message:
    """The specific message shown after a correct password (docs/security.md D-1), while the rules
    still reveal the reason (R1 as amended: afterwards the login shows GENERIC_FAILURE)."""
    return BY_CODE[_REFUSAL_CODES[(outcome, may_self_reset)]]


def for_login(outcome: rules.Outcome | str, *, may_self_reset: bool) -> Message | None:
    """The message a login page shows for the login service's outcome (None: let in)."""
    if outcome == rules.Outcome.OK:
        return None
    if outcome == "refused_console":
        return BY_CODE[CONSOLE_NOT_ALLOWED]
    if outcome == rules.Outcome.BAD_PASSWORD:
        return BY_CODE[GENERIC_FAILURE]
    return for_refusal(rules.Outcome(outcome), may_self_reset=may_self_reset)


def get(code: str) -> Message:
    return BY_CODE[code]


def for_text(text: str) -> Message | None:
    """The message whose text this is (field messages on the login pages come from the table)."""
    found = BY_TEXT.get(text)
    if found is None:
        found = next((m for m in MESSAGES if m.pattern and m.matches(text)), None)
    return found


# --- refusal texts (docs/rules.md R3, R4, R6) ------------------------------------------------

EXPIRY_NOT_AFTER_TODAY = "The expiry date must be after today"

#: R4's question, in exactly these words (the Enabled box, its no-JavaScript page, bulk
#: removal, access reviews).
REMOVE_ACCESS_QUESTION = "Are you sure you want to remove this User’s access?"
#: The site's own 403 and 404 pages (portal/errors.py): status → (heading, explanation).
ERROR_PAGES: dict[int, tuple[str, str]] = {
    403: (
        "You cannot open this page",
        "Your User ID is not allowed to see this page. If you think it should be, ask one of "
        "your organisation's Administrators (or the Helpdesk, for the staff pages).",
    ),
    404: (
        "Page not found",
        "There is no page at this address. If you typed it, check it; if you followed a link, "
        "the page may have moved or the item may no longer exist.",
    ),
}

#: The Console's own confirmations (``{date}`` as portal/display.py shows it).
EXPIRY_SAVED = "Expiry date saved: access ends on {date}."
CONFIRM_RESET_PASSWORD = "Reset the password of {user}?"
CONFIRM_RESET_PASSWORD_DETAIL = (
    "A new one-time password replaces the current one at once, and every session of this user "
    "ends. You will see the one-time password once, on the next page."
)
CONFIRM_SIGN_OUT = "Sign {user} out everywhere?"
CONFIRM_SIGN_OUT_DETAIL = (
    "Every session of this user ends at once, on every device. Their password stays the same."
)
SIGNED_OUT_EVERYWHERE = "Every session of this user has ended."
ONE_TIME_PASSWORD_GONE = (
    "This one-time password has already been shown, or this page is too old. It is shown only "
    "once. If it was not passed on, reset the password again."
)
FUTURE_DATE = "The new expiry date must be after today"
USER_ID_TAKEN = "That User ID is already taken (User IDs ignore case)"

#: What an Administrator is told in the Console when the rules refuse a change.
CONSOLE_REFUSALS: dict[rules.Outcome, str] = {
    rules.Outcome.REFUSED_SELF: "You cannot remove your own access.",
    rules.Outcome.REFUSED_LAST_ADMIN: (
        "This is your organisation's last Administrator with access: its access cannot be removed."
    ),
    rules.Outcome.REFUSED_EXPIRED: (
        "The expiry date has been reached: extend the expiry date first, then tick Enabled."
    ),
    rules.Outcome.REFUSED_PAST_DATE: f"{EXPIRY_NOT_AFTER_TODAY}.",
}

#: Changing a user's profile away from Administrator (``management.update_details``).
PROFILE_REFUSALS: dict[rules.Outcome, str] = {
    rules.Outcome.REFUSED_SELF: "You cannot remove your own Administrator profile",
    rules.Outcome.REFUSED_LAST_ADMIN: (
        "This is the organisation's last Administrator with access: "
        "make another user an Administrator first"
    ),
}

#: The operator pages' refusals (``{user}`` is the User ID).
OPERATOR_REFUSALS: dict[rules.Outcome, str] = {
    rules.Outcome.REFUSED_EXPIRED: (
        "The expiry date of {user} has been reached: extend the expiry date first, "
        "or use “Extend and re-enable”."
    ),
    rules.Outcome.REFUSED_PAST_DATE: f"{FUTURE_DATE}.",
}

#: Why a user that still has Enabled ticked cannot log in (R2/R3), for ``portal enable``.
CLI_DUE: dict[rules.Reason, str] = {
    rules.Reason.EXPIRY: "its expiry date {expires_on} has been reached",
    rules.Reason.INACTIVITY: f"it was not used for more than {states.INACTIVITY_DAYS} days",
}


def cli_refusal(outcome: rules.Outcome, *, user_id: str, expires_on: object, due: bool) -> str:
    """What ``portal enable``/``disable`` says when the rules refuse (``due``: the user was
    still Enabled but due when the command ran)."""
    if outcome is rules.Outcome.REFUSED_EXPIRED:
        was = "due: " if due else ""
        return (
            f"{user_id}: {was}its expiry date {expires_on} has been reached, so it "
            "cannot log in: extend the expiry date first (portal extend "
            f"{user_id} --to YYYY-MM-DD), then enable it."
        )
    return CONSOLE_REFUSALS.get(outcome, f"{user_id}: refused ({outcome.value})")
