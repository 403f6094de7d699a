"""helpdesk: the queue's filter columns join the SQLite error-text index (FTS5), so that a
search with a filter is answered by the index alone (portal/helpdesk/search_index.py)

The FTS5 table of 0007 indexed ``error_message`` only: "expired" with status "New" read each
of ~4,800 matches' rows to check its status.  Now the table also indexes ``status``, ``kind``,
``stated_role``, ``console`` and ``environment`` (external content, the same trigram
tokenizer): ``MATCH '{error_message}: "expired" AND {status}: "new"'`` narrows in the index.
The triggers follow a change of any of these columns.  PostgreSQL is untouched (its pg_trgm
index and the B-tree indexes answer there); a SQLite without the 0007 table gets nothing.

Revision ID: 0026_hdperf2
Revises: 0025_hdfinish
Create Date: 2026-12-03 07:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0026_hdperf2'
down_revision = '0025_hdfinish'
branch_labels = None
depends_on = None

FTS = "helpdesk_requests_fts"
OLD_COLUMNS = ("error_message",)
NEW_COLUMNS = ("error_message", "status", "kind", "stated_role", "console", "environment")


def _statements(columns: tuple[str, ...]) -> list[str]:
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    return [
        f"DROP TRIGGER IF EXISTS {FTS}_au",
        f"DROP TRIGGER IF EXISTS {FTS}_ad",
        f"DROP TRIGGER IF EXISTS {FTS}_ai",
        f"DROP TABLE IF EXISTS {FTS}",
        f"CREATE VIRTUAL TABLE {FTS} USING fts5({names}, content='helpdesk_requests', "
        "content_rowid='id', tokenize='trigram')",
        f"""CREATE TRIGGER {FTS}_ai AFTER INSERT ON helpdesk_requests BEGIN
      INSERT INTO {FTS}(rowid, {names}) VALUES (new.id, {new});
    END""",
        f"""CREATE TRIGGER {FTS}_ad AFTER DELETE ON helpdesk_requests BEGIN
      INSERT INTO {FTS}({FTS}, rowid, {names}) VALUES ('delete', old.id, {old});
    END""",
        f"""CREATE TRIGGER {FTS}_au AFTER UPDATE OF {names} ON helpdesk_requests BEGIN
      INSERT INTO {FTS}({FTS}, rowid, {names}) VALUES ('delete', old.id, {old});
      INSERT INTO {FTS}(rowid, {names}) VALUES (new.id, {new});
    END""",
        f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')",
    ]


def _replace(columns: tuple[str, ...]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    found = bind.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS,)
    ).first()
    if found is None:  # no FTS5 trigram here (0007): the search scans
        return
    for statement in _statements(columns):
        op.execute(statement)


def upgrade():
    _replace(NEW_COLUMNS)


def downgrade():
    _replace(OLD_COLUMNS)
