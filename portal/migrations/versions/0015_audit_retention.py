"""audit retention and firm erasure: the append-only triggers let a transaction that holds an
audit_erasure_permits row delete audit events (``portal.audit.erasure``); updates stay refused

Revision ID: 0015_audit_retention
Revises: 0014_job_runs_lease
Create Date: 2026-12-02 17:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_audit_retention'
down_revision = '0014_job_runs_lease'
branch_labels = None
depends_on = None

REFUSE = "SELECT RAISE(ABORT, 'audit events are append-only')"

UPGRADE = {
    "sqlite": [
        "DROP TRIGGER audit_events_no_delete",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "WHEN NOT EXISTS (SELECT 1 FROM audit_erasure_permits) "
        f"BEGIN {REFUSE}; END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_erasure_permits) THEN "
        "RETURN OLD; END IF; "
        "RAISE EXCEPTION 'audit events are append-only'; END $$",
    ],
}
DOWNGRADE = {
    "sqlite": [
        "DROP TRIGGER audit_events_no_delete",
        f"CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events BEGIN {REFUSE}; END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$",
    ],
}


def upgrade():
    op.create_table(
        'audit_erasure_permits',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_erasure_permits')),
    )
    for statement in UPGRADE.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade():
    for statement in DOWNGRADE.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    op.drop_table('audit_erasure_permits')
