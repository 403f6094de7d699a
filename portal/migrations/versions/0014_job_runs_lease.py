"""job_runs: a heartbeat, so that a run whose process died can be taken over

A nightly run renews ``heartbeat_at`` while it works.  A run still "running" whose heartbeat
is older than the lease (or whose process is known to be gone) is taken over by the next
scheduler that looks, instead of staying "running" for ever (``portal.jobs.lease``).
Runs recorded before this revision have no heartbeat: their start time counts instead.

Revision ID: 0014_job_runs_lease
Revises: 0013_upload_quota
Create Date: 2026-12-02 17:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_job_runs_lease'
down_revision = '0013_upload_quota'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')
