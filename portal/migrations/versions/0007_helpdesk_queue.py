"""helpdesk queue: an index per filter in reference order; search indexes: error text (SQLite
FTS5 trigram / PostgreSQL pg_trgm) and prefixes of email and User ID keys on PostgreSQL

Revision ID: 0007_helpdesk_queue
Revises: 0006_site
Create Date: 2026-11-22 05:30:00.000000

See portal/helpdesk/search_index.py.  Where the database cannot have the index (SQLite built
without FTS5, PostgreSQL without pg_trgm or the right to create it), nothing is created and
the queue's error-text search scans instead: slower, same answers.
"""
import logging

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007_helpdesk_queue"
down_revision = "0006_site"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

FTS = "helpdesk_requests_fts"
SQLITE_UP = [
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(error_message, content='helpdesk_requests', "
    "content_rowid='id', tokenize='trigram')",
    f"""CREATE TRIGGER {FTS}_ai AFTER INSERT ON helpdesk_requests BEGIN
      INSERT INTO {FTS}(rowid, error_message) VALUES (new.id, new.error_message);
    END""",
    f"""CREATE TRIGGER {FTS}_ad AFTER DELETE ON helpdesk_requests BEGIN
      INSERT INTO {FTS}({FTS}, rowid, error_message) VALUES ('delete', old.id, old.error_message);
    END""",
    f"""CREATE TRIGGER {FTS}_au AFTER UPDATE OF error_message ON helpdesk_requests BEGIN
      INSERT INTO {FTS}({FTS}, rowid, error_message) VALUES ('delete', old.id, old.error_message);
      INSERT INTO {FTS}(rowid, error_message) VALUES (new.id, new.error_message);
    END""",
    f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS {FTS}_au",
    f"DROP TRIGGER IF EXISTS {FTS}_ad",
    f"DROP TRIGGER IF EXISTS {FTS}_ai",
    f"DROP TABLE IF EXISTS {FTS}",
]
PG_PATTERN = [
    "CREATE INDEX ix_helpdesk_requests_email_key_pattern "
    "ON helpdesk_requests (email_key varchar_pattern_ops)",
    "CREATE INDEX ix_helpdesk_requests_user_id_key_pattern "
    "ON helpdesk_requests (user_id_key varchar_pattern_ops)",
]
PG_TRGM = (
    "CREATE INDEX ix_helpdesk_requests_error_message_trgm "
    "ON helpdesk_requests USING gin (lower(error_message) gin_trgm_ops)"
)


def _sqlite_has_fts5_trigram(bind) -> bool:
    try:
        bind.exec_driver_sql("CREATE VIRTUAL TABLE temp._fts5_probe USING fts5(x, tokenize='trigram')")
        bind.exec_driver_sql("DROP TABLE temp._fts5_probe")
    except sa.exc.DBAPIError:
        return False
    return True


QUEUE_INDEXES = {
    "ix_helpdesk_requests_status_id": ["status", "id"],
    "ix_helpdesk_requests_kind_id": ["kind", "id"],
    "ix_helpdesk_requests_environment_id": ["environment", "id"],
    "ix_helpdesk_requests_stated_role_id": ["stated_role", "id"],
    "ix_helpdesk_requests_console_id": ["console", "id"],
}


def upgrade():
    with op.batch_alter_table("helpdesk_requests", schema=None) as batch_op:
        for name, columns in QUEUE_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        if not _sqlite_has_fts5_trigram(bind):
            log.warning("SQLite has no FTS5 trigram tokenizer: error-text search will scan")
            return
        for statement in SQLITE_UP:
            op.execute(statement)
        return
    if bind.dialect.name != "postgresql":
        return
    for statement in PG_PATTERN:
        op.execute(statement)
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.  Try
    # in a savepoint so that a refusal leaves the rest of the migration standing.
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            bind.exec_driver_sql(PG_TRGM)
    except sa.exc.DBAPIError as exc:
        log.warning("no pg_trgm index (%s): error-text search will scan", exc.orig)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_DOWN:
            op.execute(statement)
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_helpdesk_requests_error_message_trgm")
        op.execute("DROP INDEX IF EXISTS ix_helpdesk_requests_user_id_key_pattern")
        op.execute("DROP INDEX IF EXISTS ix_helpdesk_requests_email_key_pattern")
    with op.batch_alter_table("helpdesk_requests", schema=None) as batch_op:
        for name in reversed(list(QUEUE_INDEXES)):
            batch_op.drop_index(name)
