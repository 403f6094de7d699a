"""shown_once: a one-time password kept sealed between the Console's reset POST and the page
that shows it once (issue 12 point 5; ``portal.shown_once``)

Revision ID: 0024_cpolish
Revises: 0023_creview
Create Date: 2026-12-03 03:00:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0024_cpolish'
down_revision = '0023_creview'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shown_once",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(sealed IS NULL AND shown_at IS NOT NULL) "
            "OR (sealed IS NOT NULL AND shown_at IS NULL)",
            name=op.f("ck_shown_once_sealed_until_shown"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_shown_once")),
    )
    op.create_index("ix_shown_once_created_at", "shown_once", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_shown_once_created_at", table_name="shown_once")
    op.drop_table("shown_once")
