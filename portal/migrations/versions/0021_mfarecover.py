"""second factor: passkey challenges (``portal.second_factor.passkeys``), server-side,
single-use, 5 minutes

Chained after mfacore's ``0017_second_factor`` (this branch merged it); the integrator may
re-chain.

Revision ID: 0021_mfarecover
Revises: 0020_second_factor
Create Date: 2026-12-03 03:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0021_mfarecover'
down_revision = '0020_second_factor'
branch_labels = None
depends_on = None

def upgrade():
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
