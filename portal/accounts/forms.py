"""Forms check the shape of input only; business refusals come from ``rules``."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import Field
from wtforms import Form
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo
from wtforms.validators import ValidationError

from portal.guides import codes


def within_password_limit(message: str) -> Callable[[Form, Field], None]:
    """Refuse passwords over PORTAL_PASSWORD_MAX_LENGTH before anything is hashed (PW-02)."""

    def check(_form: Form, field: Field) -> None:
        if len(field.data or "") > current_app.config["PORTAL_PASSWORD_MAX_LENGTH"]:
            raise ValidationError(message)

    return check


class LoginForm(FlaskForm):
    user_id = StringField(
        "User ID",
        validators=[DataRequired(codes.get("LOGIN-11").text)],
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(codes.get("LOGIN-12").text),
            within_password_limit(codes.get("LOGIN-13").text),
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
