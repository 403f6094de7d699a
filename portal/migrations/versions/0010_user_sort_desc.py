"""users list: descending sorts by last login and expiry from an index on PostgreSQL

The list sorts "newest last login first" as ``last_login_at DESC NULLS LAST, user_id_key``.
PostgreSQL cannot read that order from the ascending index (a backward scan gives NULLS FIRST
and a descending User ID), so it sorted the whole organisation (28 ms at 100,000 users).  These
indexes hold exactly that order.  SQLite needs nothing: there NULLs sort first, so its backward
scan is already NULLS LAST (and it cannot declare NULLS LAST in an index).  Hand-made, hence
listed in ``portal.db.HAND_MADE``.

Revision ID: 0010_user_sort_desc
Revises: 0007_helpdesk_queue
Create Date: 2026-11-22 06:35:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010_user_sort_desc'
down_revision = '0007_helpdesk_queue'
branch_labels = None
depends_on = None

INDEXES = {
    "ix_users_org_last_login_desc": "last_login_at DESC NULLS LAST, user_id_key",
    "ix_users_org_expires_on_desc": "expires_on DESC NULLS LAST, user_id_key",
}


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        return
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON users (organisation_id, {columns})")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
