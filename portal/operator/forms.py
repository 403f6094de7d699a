"""The Portal team's forms: shape only (business refusals come from ``rules`` and the services)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import DateField
from wtforms import Field
from wtforms import Form
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.validators import ValidationError

from portal.accounts import service
from portal.accounts.forms import UserCreateForm
from portal.accounts.forms import key_length
from portal.accounts.forms import printable
from portal.helpdesk.models import parse_reference

REFERENCE_FORMAT = "Enter a helpdesk request reference like HD-000123, or leave it empty"


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _reference_format(_form: Form, field: Field) -> None:
    if field.data and parse_reference(field.data) is None:
        raise ValidationError(REFERENCE_FORMAT)


def reference_field() -> StringField:
    """The optional helpdesk request an action is taken for (carried from the request's page)."""
    return StringField(
        "Helpdesk request reference (optional)",
        filters=[_strip],
        validators=[Length(max=20, message=REFERENCE_FORMAT), _reference_format],
    )


class OrganisationForm(FlaskForm):
    name = StringField(
        "Organisation name",
        filters=[_strip],
        validators=[
            DataRequired("Enter the organisation's name"),
            Length(max=service.NAME_MAX, message=service.ORGANISATION_NAME_TOO_LONG),
            key_length(service.NAME_MAX, service.ORGANISATION_NAME_TOO_LONG),
            printable,
        ],
    )


class AdministratorForm(UserCreateForm):
    """A firm's Administrator: the Console's create-user form without the profile choice."""

    profile = None  # type: ignore[assignment]  # always an Administrator: WTForms drops the field


def resolve_field() -> BooleanField:
    """With a linked request: resolve it and tell the requester, in the same step."""
    return BooleanField("and resolve the request, telling the requester")


class EnableForm(FlaskForm):
    reference = reference_field()
    resolve = resolve_field()


class ExpiryForm(FlaskForm):
    """Extend the expiry date (alone, or and re-enable in one step)."""

    expires_on = DateField(
        "New expiry date",
        validators=[DataRequired("Enter an expiry date, for example 2027-03-31")],
    )
    reference = reference_field()
    resolve = resolve_field()
