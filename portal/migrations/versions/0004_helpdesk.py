"""helpdesk requests, screenshots and timelines

Revision ID: 0004_helpdesk
Revises: 0003_mail_queue_job_runs
Create Date: 2026-11-22 05:08:29.012231

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_helpdesk'
down_revision = '0003_mail_queue_job_runs'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('helpdesk_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('environment', sa.String(length=10), nullable=False),
    sa.Column('stated_role', sa.String(length=20), nullable=True),
    sa.Column('console', sa.String(length=20), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('email_key', sa.String(length=254), nullable=False),
    sa.Column('organisation_name', sa.String(length=200), nullable=False),
    sa.Column('user_id_given', sa.String(length=64), nullable=True),
    sa.Column('user_id_key', sa.String(length=64), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('suggestions_shown', sa.String(length=500), nullable=True),
    sa.Column('has_screenshot', sa.Boolean(), nullable=False),
    sa.CheckConstraint("console IS NULL OR console IN ('admin_console', 'portal')", name=op.f('ck_helpdesk_requests_console')),
    sa.CheckConstraint("environment IN ('live', 'training')", name=op.f('ck_helpdesk_requests_environment')),
    sa.CheckConstraint("kind <> 'contact' OR (stated_role IS NOT NULL AND console IS NOT NULL)", name=op.f('ck_helpdesk_requests_contact_states_role_and_console')),
    sa.CheckConstraint("kind IN ('contact', 'resend_user_id')", name=op.f('ck_helpdesk_requests_kind')),
    sa.CheckConstraint("stated_role IS NULL OR stated_role IN ('administrator', 'claims_handler')", name=op.f('ck_helpdesk_requests_role')),
    sa.CheckConstraint("status IN ('new', 'in_progress', 'referred', 'resolved')", name=op.f('ck_helpdesk_requests_status')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_helpdesk_requests_submitted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helpdesk_requests'))
    )
    with op.batch_alter_table('helpdesk_requests', schema=None) as batch_op:
        batch_op.create_index('ix_helpdesk_requests_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_helpdesk_requests_email_key', ['email_key'], unique=False)
        batch_op.create_index('ix_helpdesk_requests_kind_created_at', ['kind', 'created_at'], unique=False)
        batch_op.create_index('ix_helpdesk_requests_status_created_at', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_helpdesk_requests_user_id_key', ['user_id_key'], unique=False)

    op.create_table('helpdesk_request_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_helpdesk_request_events_actor_id_users')),
    sa.ForeignKeyConstraint(['request_id'], ['helpdesk_requests.id'], name=op.f('fk_helpdesk_request_events_request_id_helpdesk_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helpdesk_request_events'))
    )
    with op.batch_alter_table('helpdesk_request_events', schema=None) as batch_op:
        batch_op.create_index('ix_helpdesk_request_events_request_id_id', ['request_id', 'id'], unique=False)

    op.create_table('helpdesk_screenshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=100), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.CheckConstraint("content_type IN ('image/png', 'image/jpeg')", name=op.f('ck_helpdesk_screenshots_content_type')),
    sa.ForeignKeyConstraint(['request_id'], ['helpdesk_requests.id'], name=op.f('fk_helpdesk_screenshots_request_id_helpdesk_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helpdesk_screenshots')),
    sa.UniqueConstraint('request_id', name=op.f('uq_helpdesk_screenshots_request_id'))
    )


def downgrade():
    op.drop_table('helpdesk_screenshots')
    with op.batch_alter_table('helpdesk_request_events', schema=None) as batch_op:
        batch_op.drop_index('ix_helpdesk_request_events_request_id_id')

    op.drop_table('helpdesk_request_events')
    with op.batch_alter_table('helpdesk_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_helpdesk_requests_user_id_key')
        batch_op.drop_index('ix_helpdesk_requests_status_created_at')
        batch_op.drop_index('ix_helpdesk_requests_kind_created_at')
        batch_op.drop_index('ix_helpdesk_requests_email_key')
        batch_op.drop_index('ix_helpdesk_requests_created_at')

    op.drop_table('helpdesk_requests')
