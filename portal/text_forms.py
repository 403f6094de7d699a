"""Forms whose text fields refuse control characters, by the field (docs/security.md: bad input gets
a clear message and changes nothing).

NUL cannot be stored by PostgreSQL at all (a 500 before this), and no control character
belongs in what a person types; tabs and line breaks stay allowed (text areas), and a field
that must be on one line says so itself (``one_line``).
"""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MESSAGE = (
    "Remove the control characters (such as NUL): only letters, digits, spaces, punctuation "
    "and line breaks can be sent"
)


class TextForm(FlaskForm):
    """A FlaskForm that also refuses control characters in every text field."""

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            if isinstance(field.data, str) and CONTROL_CHARACTERS.search(field.data):
                field.errors = [*field.errors, MESSAGE]
                valid = False
        return valid
