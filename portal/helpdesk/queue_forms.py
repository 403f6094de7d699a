"""The staff queue's forms: they check the shape of input only."""

from __future__ import annotations

from typing import Any

from wtforms import SelectField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import Length

from portal.helpdesk.actions import NOTE_MAX
from portal.helpdesk.actions import guide_sections
from portal.helpdesk.models import STATUS_LABELS
from portal.text_forms import TextForm


class StatusForm(TextForm):
    status = SelectField(
        "Status",
        choices={s.value: label for s, label in STATUS_LABELS.items()},
        validate_choice=True,
    )


class NoteForm(TextForm):
    note = TextAreaField(
        "Internal note",
        validators=[
            DataRequired("Write the note first"),
            Length(max=NOTE_MAX, message=f"A note has at most {NOTE_MAX} characters"),
        ],
    )


class GuideReplyForm(TextForm):
    section = SelectField("Guide section", validate_choice=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Short labels (code and the start of the message) keep the select inside the page.
        self.section.choices = {s.key: short_label(s.label) for s in guide_sections()}


#: Characters of a guide section's label shown in the select.
LABEL_MAX = 48


def short_label(label: str) -> str:
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1].rstrip() + "…"


class ReferForm(TextForm):
    note = TextAreaField(
        "Why (optional, for the Portal team)",
        validators=[Length(max=NOTE_MAX, message=f"At most {NOTE_MAX} characters")],
    )


class AssignForm(TextForm):
    """``me``, a staff user's row id, or empty (nobody); checked against the staff in the view."""

    assignee = StringField("Assigned to", validators=[Length(max=20)])


class BulkStatusForm(TextForm):
    """The status to set on the ticked requests (``ids``: read as whole numbers in the view)."""

    status = SelectField(
        "Set the status of the ticked requests to",
        choices={s.value: label for s, label in STATUS_LABELS.items()},
        validate_choice=True,
    )
