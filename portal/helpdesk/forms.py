"""The public Helpdesk forms: shape of the input only (docs/rules.md §5; docs/security.md UP-06).

Every message names what is missing or wrong, in the GOV.UK style.  Single-line fields refuse
line breaks (name, email and organisation can end up in mail headers or subject lines: header
injection), before any other check, with a message by the field.  ``website`` is the honeypot:
hidden from people, filled in by form-filling robots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import current_app
from flask_wtf.file import FileField
from wtforms import Field
from wtforms import Form
from wtforms import RadioField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import Email
from wtforms.validators import Length
from wtforms.validators import Optional
from wtforms.validators import StopValidation
from wtforms.validators import ValidationError

from portal.accounts.forms import EMAIL_FORMAT
from portal.accounts.models import normalise_key
from portal.helpdesk import screenshots
from portal.helpdesk.models import CONSOLE_LABELS
from portal.helpdesk.models import ENVIRONMENT_LABELS
from portal.helpdesk.models import ROLE_LABELS
from portal.helpdesk.models import Environment
from portal.text_forms import TextForm

log = logging.getLogger(__name__)

ROLE_MISSING = "Say whether you are an Administrator or a Claims Handler"
CONSOLE_MISSING = "Say whether you were logging in to the Admin Console or the Portal"
ENVIRONMENT_MISSING = "Say whether this is about Live or Training"
ERROR_OR_SCREENSHOT_MISSING = (
    "Enter the exact error message, or choose a screenshot of it (or both)"
)
ERROR_MESSAGE_MAX = 2000
DETAILS_MAX = 5000


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def one_line(what: str) -> Callable[[Form, Field], None]:
    """Refuse CR/LF (and other line breaks) in a field that may reach a mail header."""

    def check(_form: Form, field: Field) -> None:
        if isinstance(field.data, str) and len(field.data.splitlines()) > 1:
            raise StopValidation(f"{what} must be on one line")

    return check


def deployment_environment() -> str:
    """Live or Training: this deployment's own (``PORTAL_ENVIRONMENT``), default Live."""
    configured = str(current_app.config.get("PORTAL_ENVIRONMENT", Environment.LIVE.value))
    known = {e.value for e in Environment}
    return configured if configured in known else Environment.LIVE.value


def _choices(labels: dict[Any, str]) -> dict[str, str]:
    """``{value: label}`` (WTForms' shorthand; tuples are deprecated in WTForms 3.3)."""
    return {key.value: label for key, label in labels.items()}


def _name_field() -> StringField:
    return StringField(
        "Your full name",
        filters=[_strip],
        validators=[
            one_line("Your name"),
            DataRequired("Enter your full name"),
            Length(max=200, message="Your name must be 200 characters or fewer"),
        ],
    )


EMAIL_TOO_LONG = "The email address must be 254 characters or fewer"


def _email_key_length(_form: Form, field: Field) -> None:
    """The look-up key (casefolded: "ß" is "ss", "ﬃ" is "ffi") is stored too and must fit."""
    if field.data and len(normalise_key(field.data)) > 254:
        raise ValidationError(EMAIL_TOO_LONG)


def _email_field(label: str) -> StringField:
    return StringField(
        label,
        filters=[_strip],
        validators=[
            one_line("The email address"),
            DataRequired("Enter your email address"),
            Length(max=254, message=EMAIL_TOO_LONG),
            _email_key_length,
            Email(EMAIL_FORMAT, check_deliverability=False),
        ],
    )


def _organisation_field() -> StringField:
    return StringField(
        "Organisation",
        filters=[_strip],
        validators=[
            one_line("The organisation"),
            DataRequired("Enter the name of your organisation"),
            Length(max=200, message="The organisation must be 200 characters or fewer"),
        ],
    )


def _environment_field() -> RadioField:
    return RadioField(
        "Live or Training?",
        choices=_choices(ENVIRONMENT_LABELS),
        default=deployment_environment,
        # The stubs (types-WTForms 3.2) lack WTForms 3.3's invalid_choice_message.
        invalid_choice_message=ENVIRONMENT_MISSING,  # type: ignore[call-arg]
    )


def _honeypot() -> StringField:
    return StringField("Leave this empty", filters=[_strip])


def _user_id_key_length(_form: Form, field: Field) -> None:
    """The look-up key (casefolded: "ß" is "ss") must fit too; no User ID is longer."""
    if field.data and len(normalise_key(field.data)) > 64:
        raise ValidationError("A User ID is 64 characters or fewer")


class _Honeypot:
    def is_robot(self) -> bool:
        """The hidden field was filled in: answer as if sent, store nothing."""
        return bool(self.website.data)  # type: ignore[attr-defined]


class ContactForm(_Honeypot, TextForm):
    full_name = _name_field()
    email = _email_field("Your email address")
    organisation = _organisation_field()
    user_id = StringField(
        "Your User ID (optional)",
        filters=[_strip],
        validators=[
            one_line("The User ID"),
            Optional(),
            Length(max=64, message="A User ID is 64 characters or fewer"),
            _user_id_key_length,
        ],
    )
    role = RadioField(
        "Are you an Administrator or a Claims Handler?",
        choices=_choices(ROLE_LABELS),
        # The stubs (types-WTForms 3.2) lack WTForms 3.3's invalid_choice_message.
        invalid_choice_message=ROLE_MISSING,  # type: ignore[call-arg]
    )
    console = RadioField(
        "Were you logging in to the Admin Console or the Portal?",
        choices=_choices(CONSOLE_LABELS),
        # The stubs (types-WTForms 3.2) lack WTForms 3.3's invalid_choice_message.
        invalid_choice_message=CONSOLE_MISSING,  # type: ignore[call-arg]
    )
    environment = _environment_field()
    error_message = TextAreaField(
        "The exact error message",
        filters=[_strip],
        validators=[
            Length(
                max=ERROR_MESSAGE_MAX,
                message=f"The error message must be {ERROR_MESSAGE_MAX} characters or fewer",
            )
        ],
    )
    screenshot = FileField("Screenshot")
    details = TextAreaField(
        "Anything else we should know (optional)",
        filters=[_strip],
        validators=[
            Length(max=DETAILS_MAX, message=f"Details must be {DETAILS_MAX} characters or fewer")
        ],
    )
    website = _honeypot()

    #: The re-encoded screenshot, once the form has validated one.
    clean_screenshot: screenshots.CleanImage | None = None
    #: Set by the view when a service-wide quota refuses any screenshot (docs/security.md UP-05):
    #: the file is then refused with this message, unread.
    screenshot_refusal: str | None = None

    def has_screenshot(self) -> bool:
        return self.screenshot.data is not None

    def validate_screenshot(self, field: Field) -> None:
        """PNG or JPEG by name and content, ≤ 5 MB, decoded and re-encoded (UP-02)."""
        self.clean_screenshot = None
        if field.data is None:
            return
        if self.screenshot_refusal is not None:
            raise ValidationError(self.screenshot_refusal)
        try:
            self.clean_screenshot = screenshots.clean(field.data.stream, field.data.filename)
        except screenshots.ScreenshotRefused as exc:
            log.info("screenshot refused: %s", exc.reason)
            raise ValidationError(str(exc)) from None

    def validate(self, extra_validators: Any = None) -> bool:
        """Each field, then: the exact error message or a screenshot, at least one."""
        valid = super().validate(extra_validators)
        if not self.error_message.data and not self.has_screenshot():
            self.error_message.errors = [*self.error_message.errors, ERROR_OR_SCREENSHOT_MISSING]
            valid = False
        return valid


class ResendUserIdForm(_Honeypot, TextForm):
    environment = _environment_field()
    organisation = _organisation_field()
    full_name = _name_field()
    email = _email_field("The email address registered for your Administrator account")
    website = _honeypot()
