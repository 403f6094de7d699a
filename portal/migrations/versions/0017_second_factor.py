"""second factor (R10): factors, recovery codes, email proof codes, two-person resets

``users.failed_codes`` counts consecutive wrong second-factor codes (the fifth locks the
account like R1).  ``second_factors`` holds TOTP authenticators (secret sealed) and passkeys;
``recovery_codes`` and ``email_proof_codes`` keep sha256 hashes only; ``second_factor_resets``
holds the Portal team's two-person requests.

Revision ID: 0017_second_factor
Revises: 0016_helpdesk_waiting
Create Date: 2026-12-03 03:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_second_factor'
down_revision = '0016_helpdesk_waiting'
branch_labels = None
depends_on = None


USER_CHECKS = {
    "ck_users_failed_codes_range": "failed_codes >= 0 AND failed_codes <= 5",
    "ck_users_enabled_below_code_lockout": "NOT enabled OR failed_codes < 5",
}


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        # Plain ADD COLUMN, never batch mode: re-creating ``users`` would drop the search
        # triggers of 0009 (as in 0011_lock_cycle).
        checks = " ".join(f"CONSTRAINT {name} CHECK ({sql})" for name, sql in USER_CHECKS.items())
        op.execute(
            f"ALTER TABLE users ADD COLUMN failed_codes INTEGER NOT NULL DEFAULT 0 {checks}"
        )
    else:
        op.add_column('users', sa.Column('failed_codes', sa.Integer(), server_default='0',
                                         nullable=False))
        for name, sql in USER_CHECKS.items():
            op.create_check_constraint(op.f(name), 'users', sql)

    op.create_table('second_factors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_secret_sealed', sa.String(length=500), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('credential_id', sa.LargeBinary(length=1023), nullable=True),
    sa.Column('public_key', sa.LargeBinary(), nullable=True),
    sa.Column('sign_count', sa.Integer(), nullable=True),
    sa.Column('transports', sa.String(length=200), nullable=True),
    sa.CheckConstraint("kind IN ('totp', 'passkey')", name=op.f('ck_second_factors_kind_known')),
    sa.CheckConstraint("(kind = 'totp') = (totp_secret_sealed IS NOT NULL)", name=op.f('ck_second_factors_totp_secret_iff_totp')),
    sa.CheckConstraint("kind = 'totp' OR totp_last_step IS NULL", name=op.f('ck_second_factors_totp_step_only_totp')),
    sa.CheckConstraint("totp_last_step IS NULL OR totp_last_step >= 0", name=op.f('ck_second_factors_totp_step_range')),
    sa.CheckConstraint("(kind = 'passkey') = (credential_id IS NOT NULL)", name=op.f('ck_second_factors_credential_iff_passkey')),
    sa.CheckConstraint("(kind = 'passkey') = (public_key IS NOT NULL AND sign_count IS NOT NULL)", name=op.f('ck_second_factors_public_key_iff_passkey')),
    sa.CheckConstraint("sign_count IS NULL OR sign_count >= 0", name=op.f('ck_second_factors_sign_count_range')),
    sa.CheckConstraint("length(name) > 0", name=op.f('ck_second_factors_name_not_empty')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_second_factors_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_second_factors')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_second_factors_credential_id'))
    )
    with op.batch_alter_table('second_factors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_second_factors_user_id'), ['user_id'], unique=False)

    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index('ix_recovery_codes_user_id_code_hash', ['user_id', 'code_hash'], unique=False)

    op.create_table('email_proof_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('email_key', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_email_proof_codes_attempts_range')),
    sa.CheckConstraint('expires_at > created_at', name=op.f('ck_email_proof_codes_expires_after_created')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_email_proof_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_proof_codes'))
    )
    with op.batch_alter_table('email_proof_codes', schema=None) as batch_op:
        batch_op.create_index('ix_email_proof_codes_user_id_created_at', ['user_id', 'created_at'], unique=False)

    op.create_table('second_factor_resets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('helpdesk_reference', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('approved_by_id IS NULL OR approved_by_id <> requested_by_id', name=op.f('ck_second_factor_resets_approver_not_requester')),
    sa.CheckConstraint('(approved_by_id IS NULL) = (approved_at IS NULL)', name=op.f('ck_second_factor_resets_approved_by_iff_approved_at')),
    sa.CheckConstraint('(cancelled_by_id IS NULL) = (cancelled_at IS NULL)', name=op.f('ck_second_factor_resets_cancelled_by_iff_cancelled_at')),
    sa.CheckConstraint('approved_at IS NULL OR cancelled_at IS NULL', name=op.f('ck_second_factor_resets_approved_or_cancelled')),
    sa.CheckConstraint('expires_at > created_at', name=op.f('ck_second_factor_resets_expires_after_created')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_second_factor_resets_user_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_second_factor_resets_requested_by_id_users')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_second_factor_resets_approved_by_id_users')),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['users.id'], name=op.f('fk_second_factor_resets_cancelled_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_second_factor_resets'))
    )
    with op.batch_alter_table('second_factor_resets', schema=None) as batch_op:
        batch_op.create_index('ix_second_factor_resets_user_id_created_at', ['user_id', 'created_at'], unique=False)


def downgrade():
    op.drop_table('second_factor_resets')
    op.drop_table('email_proof_codes')
    op.drop_table('recovery_codes')
    op.drop_table('second_factors')
    if op.get_bind().dialect.name == "sqlite":  # SQLite 3.35+, as in 0011_lock_cycle
        op.execute("ALTER TABLE users DROP COLUMN failed_codes")
        return
    for name in USER_CHECKS:
        op.drop_constraint(op.f(name), 'users', type_='check')
    op.drop_column('users', 'failed_codes')
