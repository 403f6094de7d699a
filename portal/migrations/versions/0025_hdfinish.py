"""helpdesk indexes for issue 14's bench at 100,000 requests: two filters counted from one
index, "Mine"/"Unassigned" by age, the report's medians in value order
(portal/helpdesk/models.py)

Revision ID: 0025_hdfinish
Revises: 0024_cpolish
Create Date: 2026-12-03 07:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0025_hdfinish'
down_revision = '0024_cpolish'
branch_labels = None
depends_on = None

INDEXES = {
    "ix_helpdesk_requests_kind_environment_id": ["kind", "environment", "id"],
    "ix_helpdesk_requests_assigned_to_id_status_age_seconds": [
        "assigned_to_id",
        "status",
        "age_seconds",
    ],
    "ix_helpdesk_requests_first_reply_seconds": ["first_reply_seconds", "created_at"],
    "ix_helpdesk_requests_resolve_seconds": ["resolve_seconds", "created_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "helpdesk_requests", columns)


def downgrade() -> None:
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="helpdesk_requests")
