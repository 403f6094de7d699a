"""Forms check the shape of input only; business refusals come from ``rules``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import current_app
from flask import request
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms import Field
from wtforms import Form
from wtforms import PasswordField
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import Email
from wtforms.validators import EqualTo
from wtforms.validators import Length
from wtforms.validators import Regexp
from wtforms.validators import ValidationError

from portal import messages
from portal.accounts import rules
from portal.accounts import service
from portal.accounts.models import key_fits

USER_ID_LENGTH = "A User ID is 3 to 64 characters long"
USER_ID_CHARACTERS = "A User ID may use only letters, digits and . _ - @"


def within_password_limit(message: str) -> Callable[[Form, Field], None]:
    """Refuse passwords over PORTAL_PASSWORD_MAX_LENGTH before anything is hashed (PW-02)."""

    def check(_form: Form, field: Field) -> None:
        if len(field.data or "") > current_app.config["PORTAL_PASSWORD_MAX_LENGTH"]:
            raise ValidationError(message)

    return check


class LoginForm(FlaskForm):
    user_id = StringField(
        "User ID",
        validators=[DataRequired(messages.get("LOGIN-11").text)],
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(messages.get("LOGIN-12").text),
            within_password_limit(messages.get("LOGIN-13").text),
        ],
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[
            DataRequired("Enter your current password"),
            within_password_limit("The current password is wrong"),
        ],
    )
    password = PasswordField("New password", validators=[DataRequired("Enter a new password")])
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Type the new password again"),
            EqualTo("password", message="The two new passwords do not match"),
        ],
    )


PROFILE_CHOICES = {"claims_handler": "Claims Handler", "administrator": "Administrator"}


class _AccountErrors:
    """Put a service.AccountError by the field it is about (or above the form)."""

    def add_account_error(self, exc: Exception) -> None:
        name = getattr(exc, "field", None)
        field = getattr(self, name, None) if name else None
        if field is not None:
            field.errors = [*field.errors, str(exc)]
        else:
            self.form_errors.append(str(exc))  # type: ignore[attr-defined]


EMAIL_FORMAT = "Enter an email address in the correct format, like name@example.com"
CONTROL_CHARACTERS = "Use letters, digits, spaces and punctuation only (no control characters)"


def printable(_form: Form, field: Field) -> None:
    """Refuse control characters (PostgreSQL refuses NUL; none belongs in a name)."""
    if field.data and not all(ch.isprintable() for ch in field.data):
        raise ValidationError(CONTROL_CHARACTERS)


def key_length(length: int, message: str) -> Callable[[Form, Field], None]:
    """Refuse text whose stored, case-folded key would not fit ``length`` (ß is ss)."""

    def check(_form: Form, field: Field) -> None:
        if isinstance(field.data, str) and not key_fits(field.data, length):
            raise ValidationError(message)

    return check


def full_name_field() -> StringField:
    too_long = service.FULL_NAME_TOO_LONG
    return StringField(
        "Full name",
        validators=[
            DataRequired("Enter the user's full name"),
            Length(max=service.NAME_MAX, message=too_long),
            key_length(service.NAME_MAX, too_long),
            printable,
        ],
    )


def email_field() -> StringField:
    too_long = service.EMAIL_TOO_LONG
    return StringField(
        "Email address",
        validators=[
            DataRequired("Enter an email address"),
            Length(max=service.EMAIL_MAX, message=too_long),
            key_length(service.EMAIL_MAX, too_long),
            printable,
            Email(EMAIL_FORMAT, check_deliverability=False),
        ],
    )


class UserCreateForm(_AccountErrors, FlaskForm):
    """A new organisation user (the Console's form, and the operator's first Administrator)."""

    user_id = StringField(
        "User ID",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[
            DataRequired("Enter a User ID"),
            Length(min=3, max=64, message=USER_ID_LENGTH),
            Regexp(r"^[A-Za-z0-9._@-]+$", message=USER_ID_CHARACTERS),
        ],
    )
    full_name = full_name_field()
    email = email_field()
    profile = SelectField("Profile", choices=PROFILE_CHOICES, default="claims_handler")
    expires_on = DateField(
        "Expiry date",
        validators=[DataRequired("Enter an expiry date, for example 2027-03-31")],
    )

    def validate_new(
        self,
        today: date,
        *,
        user_id_taken: Callable[[str], bool],
        past_expiry: str = messages.EXPIRY_NOT_AFTER_TODAY,
    ) -> bool:
        """Validate a POST, then what the fields alone cannot tell: the expiry date is in the
        future (``rules``) and the User ID is not taken (``user_id_taken``, the service's
        look-up, ignoring case).  Every problem is reported at once; a value already refused
        is never looked up (NUL breaks PostgreSQL)."""
        valid = self.validate_on_submit()
        if request.method != "POST":
            return valid
        new_date = self.expires_on.data
        if new_date and not rules.expiry_allowed(new_date, today=today):
            self.expires_on.errors = [*self.expires_on.errors, past_expiry]
            valid = False
        if self.user_id.data and not self.user_id.errors and user_id_taken(self.user_id.data):
            self.user_id.errors = [*self.user_id.errors, messages.USER_ID_TAKEN]
            valid = False
        return valid


class UserDetailsForm(_AccountErrors, FlaskForm):
    full_name = full_name_field()
    email = email_field()
    profile = SelectField("Profile", choices=PROFILE_CHOICES)


class UserExpiryForm(FlaskForm):
    expires_on = DateField(
        "Expiry date",
        validators=[DataRequired("Enter an expiry date, for example 2027-03-31")],
    )
