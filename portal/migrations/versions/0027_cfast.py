"""console: an index for the users list's "disabled by whom, when" (the latest disable event
of each user on the page), so that a page of disabled users reads each one's events by
subject, not every disable event of the kind (portal/audit/models.py)

Revision ID: 0027_cfast
Revises: 0026_hdperf2
Create Date: 2026-12-03 10:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0027_cfast'
down_revision = '0026_hdperf2'
branch_labels = None
depends_on = None

NAME = "ix_audit_events_subject_kind_id"


def upgrade() -> None:
    op.create_index(NAME, "audit_events", ["subject_id", "kind", "id"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="audit_events")
