"""second factor: two-person reset requests (``portal.second_factor.reset_requests``) and
passkey challenges (``portal.second_factor.passkeys``)

Revision ID: 0017_mfarecover
Revises: 0016_helpdesk_waiting
Create Date: 2026-12-03 03:00:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0017_mfarecover'
down_revision = '0016_helpdesk_waiting'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'second_factor_reset_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('helpdesk_request_id', sa.Integer(), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'cancelled')",
            name=op.f('ck_second_factor_reset_requests_status_known'),
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_by_id IS NULL AND decided_at IS NULL)",
            name=op.f('ck_second_factor_reset_requests_decided_iff_not_pending'),
        ),
        sa.CheckConstraint(
            "status <> 'approved' OR decided_by_id <> requested_by_id",
            name=op.f('ck_second_factor_reset_requests_approver_is_not_requester'),
        ),
        sa.CheckConstraint(
            'expires_at > requested_at',
            name=op.f('ck_second_factor_reset_requests_expires_after_request'),
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'],
            name=op.f('fk_second_factor_reset_requests_user_id_users'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['helpdesk_request_id'], ['helpdesk_requests.id'],
            name=op.f('fk_second_factor_reset_requests_helpdesk_request_id_helpdesk_requests'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['requested_by_id'], ['users.id'],
            name=op.f('fk_second_factor_reset_requests_requested_by_id_users'),
        ),
        sa.ForeignKeyConstraint(
            ['decided_by_id'], ['users.id'],
            name=op.f('fk_second_factor_reset_requests_decided_by_id_users'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_second_factor_reset_requests')),
    )
    with op.batch_alter_table('second_factor_reset_requests', schema=None) as batch_op:
        batch_op.create_index(
            'ix_second_factor_reset_requests_status_id', ['status', 'id'], unique=False
        )
        batch_op.create_index(
            'ix_second_factor_reset_requests_user_id', ['user_id'], unique=False
        )
    op.create_table(
        'passkey_challenges',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=10), nullable=False),
        sa.Column('challenge_hash', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "purpose IN ('register', 'login')",
            name=op.f('ck_passkey_challenges_purpose_known'),
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'],
            name=op.f('fk_passkey_challenges_user_id_users'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_passkey_challenges')),
        sa.UniqueConstraint('challenge_hash', name=op.f('uq_passkey_challenges_challenge_hash')),
    )
    with op.batch_alter_table('passkey_challenges', schema=None) as batch_op:
        batch_op.create_index('ix_passkey_challenges_user_id', ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('passkey_challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_passkey_challenges_user_id')
    op.drop_table('passkey_challenges')
    with op.batch_alter_table('second_factor_reset_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_second_factor_reset_requests_user_id')
        batch_op.drop_index('ix_second_factor_reset_requests_status_id')
    op.drop_table('second_factor_reset_requests')
