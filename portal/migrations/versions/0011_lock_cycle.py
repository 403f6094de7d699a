"""R1 as amended: wrong passwords counted while without access; lockout emails batched

``users.failed_attempts_without_access`` (0 while enabled) stops a locked account from being a
password oracle; ``users.lockout_notice_sent_at`` keeps the user's own notice to one a day;
``lockout_alerts`` and ``lockout_alert_windows`` batch the Administrators' emails (at most one
each per 15 minutes).

Revision ID: 0011_lock_cycle
Revises: 0010_user_sort_desc
Create Date: 2026-12-02 17:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_lock_cycle'
down_revision = '0010_user_sort_desc'
branch_labels = None
depends_on = None


CHECKS = {
    "ck_users_failed_attempts_without_access_range": "failed_attempts_without_access >= 0",
    "ck_users_no_count_without_access_while_enabled":
        "NOT enabled OR failed_attempts_without_access = 0",
}


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        # Plain ADD COLUMN, never batch mode: re-creating ``users`` would drop the search
        # triggers of 0009 and, with foreign keys on, cascade into the rows that refer to it.
        checks = " ".join(f"CONSTRAINT {name} CHECK ({sql})" for name, sql in CHECKS.items())
        op.execute(
            "ALTER TABLE users ADD COLUMN failed_attempts_without_access INTEGER NOT NULL "
            f"DEFAULT 0 {checks}"
        )
        op.execute("ALTER TABLE users ADD COLUMN lockout_notice_sent_at DATETIME")
    else:
        op.add_column('users', sa.Column('failed_attempts_without_access', sa.Integer(),
                                         server_default='0', nullable=False))
        op.add_column('users', sa.Column('lockout_notice_sent_at', sa.DateTime(timezone=True),
                                         nullable=True))
        for name, sql in CHECKS.items():
            op.create_check_constraint(op.f(name), 'users', sql)

    op.create_table('lockout_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('administrator_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['administrator_id'], ['users.id'], name=op.f('fk_lockout_alerts_administrator_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subject_id'], ['users.id'], name=op.f('fk_lockout_alerts_subject_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lockout_alerts'))
    )
    with op.batch_alter_table('lockout_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lockout_alerts_administrator_id'), ['administrator_id'], unique=False)

    op.create_table('lockout_alert_windows',
    sa.Column('administrator_id', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['administrator_id'], ['users.id'], name=op.f('fk_lockout_alert_windows_administrator_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('administrator_id', name=op.f('pk_lockout_alert_windows'))
    )


def downgrade():
    op.drop_table('lockout_alert_windows')
    with op.batch_alter_table('lockout_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lockout_alerts_administrator_id'))
    op.drop_table('lockout_alerts')
    if op.get_bind().dialect.name == "sqlite":  # SQLite 3.35+, as RETURNING needs anyway
        op.execute("ALTER TABLE users DROP COLUMN lockout_notice_sent_at")
        op.execute("ALTER TABLE users DROP COLUMN failed_attempts_without_access")
        return
    for name in CHECKS:
        op.drop_constraint(op.f(name), 'users', type_='check')
    op.drop_column('users', 'lockout_notice_sent_at')
    op.drop_column('users', 'failed_attempts_without_access')
