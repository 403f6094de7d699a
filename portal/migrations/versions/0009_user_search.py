"""user search: substring search by User ID, name or email through a trigram index

SQLite: an FTS5 table with the trigram tokenizer over the users' look-up keys, kept in step by
triggers (external content: the text is not stored twice).  PostgreSQL: pg_trgm GIN indexes on
the same keys, which ``LIKE '%…%'`` uses.  Where pg_trgm cannot be created (no privilege), the
search still works, by a scan.  See portal/accounts/search.py.

Revision ID: 0009_user_search
Revises: 0004_helpdesk
Create Date: 2026-11-22 05:20:00

"""
import logging

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_user_search'
down_revision = '0004_helpdesk'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
KEYS = ("user_id_key", "full_name_key", "email_key")

SQLITE_UP = [
    f"""CREATE VIRTUAL TABLE users_search USING fts5({', '.join(KEYS)},
        content='users', content_rowid='id', tokenize='trigram')""",
    "INSERT INTO users_search(users_search) VALUES ('rebuild')",
    f"""CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
        INSERT INTO users_search(rowid, {', '.join(KEYS)})
        VALUES (new.id, {', '.join('new.' + k for k in KEYS)});
    END""",
    f"""CREATE TRIGGER users_search_update AFTER UPDATE OF {', '.join(KEYS)} ON users BEGIN
        INSERT INTO users_search(users_search, rowid, {', '.join(KEYS)})
        VALUES ('delete', old.id, {', '.join('old.' + k for k in KEYS)});
        INSERT INTO users_search(rowid, {', '.join(KEYS)})
        VALUES (new.id, {', '.join('new.' + k for k in KEYS)});
    END""",
    f"""CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
        INSERT INTO users_search(users_search, rowid, {', '.join(KEYS)})
        VALUES ('delete', old.id, {', '.join('old.' + k for k in KEYS)});
    END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS users_search_delete",
    "DROP TRIGGER IF EXISTS users_search_update",
    "DROP TRIGGER IF EXISTS users_search_insert",
    "DROP TABLE IF EXISTS users_search",
]


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_UP:
            op.execute(statement)
        return
    savepoint = bind.begin_nested()
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        log.warning("pg_trgm is not available (%s): user search will scan", exc.orig)
        return
    savepoint.commit()
    for key in KEYS:
        op.execute(
            f"CREATE INDEX ix_users_{key}_trgm ON users USING gin ({key} gin_trgm_ops)"
        )


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_DOWN:
            op.execute(statement)
        return
    for key in KEYS:
        op.execute(f"DROP INDEX IF EXISTS ix_users_{key}_trgm")
