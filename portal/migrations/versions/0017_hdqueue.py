"""helpdesk queue: assignment, search by name, age in business hours (stored for sorting)

Revision ID: 0017_hdqueue
Revises: 0016_helpdesk_waiting
Create Date: 2026-12-03 03:05:00

The age columns are explained in portal/helpdesk/ageing.py.  Existing requests get their age
from their timeline: the clock ran from ``created_at`` except between a status change into
``waiting``/``resolved`` and the next change out of it.
"""
from datetime import UTC

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017_hdqueue'
down_revision = '0016_helpdesk_waiting'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_helpdesk_requests_assigned_to_id_id', ['assigned_to_id', 'id']),
    ('ix_helpdesk_requests_assigned_to_id_status_id', ['assigned_to_id', 'status', 'id']),
    ('ix_helpdesk_requests_assigned_to_id_age_origin', ['assigned_to_id', 'age_origin']),
    ('ix_helpdesk_requests_name_key', ['name_key']),
    ('ix_helpdesk_requests_age_origin_age_seconds', ['age_origin', 'age_seconds']),
    ('ix_helpdesk_requests_status_age_origin', ['status', 'age_origin']),
    ('ix_helpdesk_requests_status_age_seconds', ['status', 'age_seconds']),
)
PAUSED = ("waiting", "resolved")


def _aware(value):
    if isinstance(value, str):
        from datetime import datetime

        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _backfill(bind):
    from portal.accounts.models import normalise_key
    from portal.helpdesk import business_hours

    hours = business_hours.from_app()
    rows = bind.execute(
        sa.text("SELECT id, name, status, created_at FROM helpdesk_requests ORDER BY id")
    ).fetchall()
    for pk, name, status, created_at in rows:
        changes = bind.execute(
            sa.text(
                "SELECT occurred_at, to_status FROM helpdesk_request_events"
                " WHERE request_id = :pk AND to_status IS NOT NULL ORDER BY id"
            ),
            {"pk": pk},
        ).fetchall()
        age, running_since = 0, _aware(created_at)
        for occurred_at, to_status in changes:
            at = _aware(occurred_at)
            if to_status in PAUSED and running_since is not None:
                age += hours.clock(at) - hours.clock(running_since)
                running_since = None
            elif to_status not in PAUSED and running_since is None:
                running_since = at
        values = {"pk": pk, "name_key": normalise_key(name or ""), "age": max(0, age)}
        if status in PAUSED:
            values.update(since=None, origin=None)
        else:
            since = running_since or _aware(created_at)
            stored = since if bind.dialect.name == "postgresql" else since.replace(tzinfo=None)
            values.update(since=stored, origin=hours.clock(since) - values["age"])
        bind.execute(
            sa.text(
                "UPDATE helpdesk_requests SET name_key = :name_key, age_seconds = :age,"
                " age_since = :since, age_origin = :origin WHERE id = :pk"
            ).bindparams(sa.bindparam("since", type_=sa.DateTime(timezone=True))),
            values,
        )


#: On SQLite the columns are added in place (ALTER TABLE ADD COLUMN takes a REFERENCES clause
#: and CHECK constraints): a batch copy of ``helpdesk_requests`` would have to DROP the table,
#: which foreign_keys=ON refuses once requests have timeline events.
SQLITE_COLUMNS = (
    "assigned_to_id INTEGER REFERENCES users (id)",
    "name_key VARCHAR(200) NOT NULL DEFAULT ''",
    "age_seconds BIGINT NOT NULL DEFAULT 0"
    " CONSTRAINT ck_helpdesk_requests_age_seconds CHECK (age_seconds >= 0)",
    "age_since DATETIME",
    "age_origin BIGINT"
    " CONSTRAINT ck_helpdesk_requests_age_clock CHECK ((age_origin IS NULL) = (age_since IS NULL))",
)


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for column in SQLITE_COLUMNS:
            op.execute(f"ALTER TABLE helpdesk_requests ADD COLUMN {column}")
    else:
        with op.batch_alter_table('helpdesk_requests', schema=None) as batch_op:
            batch_op.add_column(sa.Column('assigned_to_id', sa.Integer(), nullable=True))
            batch_op.add_column(
                sa.Column('name_key', sa.String(length=200), nullable=False, server_default='')
            )
            batch_op.add_column(
                sa.Column('age_seconds', sa.BigInteger(), nullable=False, server_default='0')
            )
            batch_op.add_column(sa.Column('age_since', sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('age_origin', sa.BigInteger(), nullable=True))
            batch_op.create_foreign_key(
                batch_op.f('fk_helpdesk_requests_assigned_to_id_users'),
                'users',
                ['assigned_to_id'],
                ['id'],
            )
            batch_op.create_check_constraint(
                batch_op.f('ck_helpdesk_requests_age_seconds'), 'age_seconds >= 0'
            )
            batch_op.create_check_constraint(
                batch_op.f('ck_helpdesk_requests_age_clock'),
                '(age_origin IS NULL) = (age_since IS NULL)',
            )
    _backfill(bind)
    for name, columns in INDEXES:
        op.create_index(name, 'helpdesk_requests', columns)
    if bind.dialect.name == "postgresql":
        # A prefix LIKE under a non-C collation needs varchar_pattern_ops (as 0007 for email).
        op.execute(
            "CREATE INDEX ix_helpdesk_requests_name_key_pattern"
            " ON helpdesk_requests (name_key varchar_pattern_ops)"
        )


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_helpdesk_requests_name_key_pattern")
    for name, _columns in INDEXES:
        op.drop_index(name, table_name='helpdesk_requests')
    if bind.dialect.name == "sqlite":  # in place (SQLite 3.35+): each CHECK goes with its column
        for column in ('age_origin', 'age_since', 'age_seconds', 'name_key', 'assigned_to_id'):
            op.execute(f"ALTER TABLE helpdesk_requests DROP COLUMN {column}")
        return
    with op.batch_alter_table('helpdesk_requests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_helpdesk_requests_age_clock'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_helpdesk_requests_age_seconds'), type_='check')
        batch_op.drop_constraint(
            batch_op.f('fk_helpdesk_requests_assigned_to_id_users'), type_='foreignkey'
        )
        for column in ('age_origin', 'age_since', 'age_seconds', 'name_key', 'assigned_to_id'):
            batch_op.drop_column(column)
