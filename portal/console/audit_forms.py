"""The audit log's filter form (docs/rules.md R9): the shape of the GET filters only."""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from typing import cast

from wtforms import DateField
from wtforms import Form
from wtforms import SelectField
from wtforms import StringField
from wtforms import ValidationError
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.audit import kinds

#: Far enough back and ahead for any real search; beyond these, date arithmetic overflows.
EARLIEST = date(1900, 1, 1)
LATEST = date(9998, 12, 31)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(_form: Form, field: StringField) -> None:
    if field.data and _CONTROL.search(field.data):
        raise ValidationError("Enter a User ID using letters, digits and . _ - @ only")


def _real_date(label: str) -> Any:
    def check(_form: Form, field: DateField) -> None:
        if field.data is not None and not EARLIEST <= field.data <= LATEST:
            raise ValidationError(
                f"Enter a ‘{label}’ date between {EARLIEST.year} and {LATEST.year}"
            )

    return check


class AuditFilterForm(Form):
    """The GET filters: ``user``, ``kind``, ``from``, ``to`` (no CSRF: it changes nothing)."""

    user = StringField(
        "User ID",
        validators=[
            Optional(),
            Length(max=64, message="Enter a User ID of 64 characters or fewer"),
            _no_control_characters,
        ],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )
    kind = SelectField("What happened", validate_choice=False)
    date_from = DateField(
        "From",
        name="from",
        validators=[Optional(), _real_date("From")],
        format="%Y-%m-%d",
    )
    date_to = DateField(
        "To",
        name="to",
        validators=[Optional(), _real_date("To")],
        format="%Y-%m-%d",
    )

    def __init__(self, formdata: Any, kinds_in_use: list[str]) -> None:
        super().__init__(formdata)
        self.kind.choices = [("", "Any")] + [(k, kinds.label(k)) for k in kinds_in_use]
        self._kinds = set(kinds_in_use)

    def validate_kind(self, field: SelectField) -> None:
        if field.data and field.data not in self._kinds:
            raise ValidationError("Choose what happened from the list")

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for field, label in ((self.date_from, "From"), (self.date_to, "To")):
            if field.raw_data and field.raw_data[0].strip() and field.data is None:
                # DateField's own message ("Not a valid date value.") says too little.
                cast("list[str]", field.errors)[:] = [
                    f"Enter a real ‘{label}’ date, in the form YYYY-MM-DD, for example 2025-03-31"
                ]
                ok = False
        if (
            ok
            and self.date_from.data is not None
            and self.date_to.data is not None
            and self.date_from.data > self.date_to.data
        ):
            self.date_to.errors = [*self.date_to.errors, "‘To’ must be the same as or after ‘From’"]
            ok = False
        return ok

    def query_args(self) -> dict[str, str]:
        """The valid filters as query parameters (for pagination and the CSV link)."""
        args = {
            "user": self.user.data or "",
            "kind": self.kind.data or "",
            "from": self.date_from.data.isoformat() if self.date_from.data else "",
            "to": self.date_to.data.isoformat() if self.date_to.data else "",
        }
        return {key: value for key, value in args.items() if value}
