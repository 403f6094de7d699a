"""helpdesk: the status "Waiting on requester" (``waiting``) joins the status CHECK

Revision ID: 0016_helpdesk_waiting
Revises: 0015_audit_retention
Create Date: 2026-12-03 02:50:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0016_helpdesk_waiting'
down_revision = '0015_audit_retention'
branch_labels = None
depends_on = None

OLD = "status IN ('new', 'in_progress', 'referred', 'resolved')"
FTS = "helpdesk_requests_fts"
NEW = "status IN ('new', 'in_progress', 'referred', 'waiting', 'resolved')"


def _replace(check: str) -> None:
    """On SQLite the batch operation copies the table to a new one, which drops its triggers:
    those of the error-text index (0007) are read first and created again, and the index is
    rebuilt."""
    bind = op.get_bind()
    triggers = []
    if bind.dialect.name == "sqlite":
        triggers = [
            row[0]
            for row in bind.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'helpdesk_requests'"
            )
        ]
    with op.batch_alter_table('helpdesk_requests', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_helpdesk_requests_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_helpdesk_requests_status'), check)
    for statement in triggers:
        op.execute(statement)
    if triggers:
        op.execute(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")


def upgrade():
    _replace(NEW)


def downgrade():
    op.execute("UPDATE helpdesk_requests SET status = 'in_progress' WHERE status = 'waiting'")
    _replace(OLD)
