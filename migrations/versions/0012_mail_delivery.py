"""mail queue: retries with backoff, atomic claims, sealed bodies

``next_attempt_at`` (backoff), ``claimed_until`` (a sender's lease), ``sealed`` (the body is
encrypted) and ``wipe_at`` (when a sealed body's secret stops working).  Rows already queued
become due at once and stay unsealed.

Revision ID: 0012_mail_delivery
Revises: 0010_user_sort_desc
Create Date: 2026-12-02 17:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_mail_delivery'
down_revision = '0010_user_sort_desc'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mail_queue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column('sealed', sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column('wipe_at', sa.DateTime(timezone=True), nullable=True))
    op.execute('UPDATE mail_queue SET next_attempt_at = created_at')
    with op.batch_alter_table('mail_queue', schema=None) as batch_op:
        batch_op.alter_column('next_attempt_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column('sealed', existing_type=sa.Boolean(), server_default=None)
        batch_op.create_index(
            'ix_mail_queue_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False
        )


def downgrade():
    # The older code cannot open sealed bodies: what is still pending of them is dropped.
    op.execute(
        "UPDATE mail_queue SET status = 'expired', body = '' "
        "WHERE sealed = true AND status = 'pending'"
    )
    with op.batch_alter_table('mail_queue', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_queue_status_next_attempt_at')
        batch_op.drop_column('wipe_at')
        batch_op.drop_column('sealed')
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('next_attempt_at')
