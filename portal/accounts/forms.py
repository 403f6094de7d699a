"""Forms check the shape of input only; business refusals come from ``rules``."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo
from wtforms.validators import Length

from portal.guides import codes

MAX_PASSWORD = 128


class LoginForm(FlaskForm):
    user_id = StringField(
        "User ID",
        validators=[DataRequired(codes.get("LOGIN-11").text)],
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(codes.get("LOGIN-12").text),
            Length(max=MAX_PASSWORD, message=codes.get("LOGIN-13").text),
        ],
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[
            DataRequired("Enter your current password"),
            Length(max=MAX_PASSWORD, message="The current password is wrong"),
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
