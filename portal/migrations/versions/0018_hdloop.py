"""helpdesk: the requester's status link (a per-request salt) and when a request was resolved

``status_salt``: part of what the status link's HMAC covers; a new salt revokes every link
sent so far.  ``resolved_at``: when the request was last resolved (the link works for 90 days
after it; information added within 30 days reopens the request).  Both nullable: a request
from before gets its salt when its link is first made.

Revision ID: 0018_hdloop
Revises: 0017_hdqueue
Create Date: 2026-12-03 03:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0018_hdloop'
down_revision = '0017_hdqueue'
branch_labels = None
depends_on = None

def upgrade():
    # Adding nullable columns is an ALTER TABLE ... ADD COLUMN on SQLite too (no table copy:
    # the error-text index's triggers stay).
    with op.batch_alter_table('helpdesk_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_salt', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
    # Requests resolved before: when they were last set to resolved (else their last change), so
    # their links expire and reopening follows the same rule as for new ones.
    op.execute(
        "UPDATE helpdesk_requests SET resolved_at = COALESCE("
        "(SELECT max(e.occurred_at) FROM helpdesk_request_events e"
        " WHERE e.request_id = helpdesk_requests.id AND e.to_status = 'resolved'),"
        " updated_at) WHERE status = 'resolved'"
    )


def downgrade():
    """In place (SQLite 3.35+), as they were added: a table copy would drop the error-text
    index's triggers and turn 0017's column CHECKs into table CHECKs that SQLite's DROP COLUMN
    in 0017's downgrade cannot remove."""
    if op.get_bind().dialect.name == "sqlite":
        for column in ('resolved_at', 'status_salt'):
            op.execute(f"ALTER TABLE helpdesk_requests DROP COLUMN {column}")
        return
    with op.batch_alter_table('helpdesk_requests', schema=None) as batch_op:
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('status_salt')
