"""helpdesk report: page views that were shown suggestions (kept an hour or a day) and the
hourly counters they are folded into (deflection, counted without any new cookie)

The page-view rows hold a random id and two times, nothing about a person; the nightly run
folds them into ``helpdesk_deflection_hours`` and deletes them (portal.helpdesk.page_views).
Two new tables: nothing in ``helpdesk_requests`` changes (its FTS triggers are untouched).

Revision ID: 0017_hdreport
Revises: 0016_helpdesk_waiting
Create Date: 2026-12-03 03:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0017_hdreport'
down_revision = '0016_helpdesk_waiting'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'helpdesk_page_views',
        sa.Column('id', sa.String(length=22), nullable=False),
        sa.Column('shown_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            'sent_at IS NULL OR sent_at >= shown_at',
            name=op.f('ck_helpdesk_page_views_sent_after_shown'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_helpdesk_page_views')),
    )
    op.create_index(
        'ix_helpdesk_page_views_shown_at', 'helpdesk_page_views', ['shown_at'], unique=False
    )
    op.create_table(
        'helpdesk_deflection_hours',
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('shown', sa.Integer(), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.CheckConstraint(
            'shown >= 0 AND sent >= 0 AND sent <= shown',
            name=op.f('ck_helpdesk_deflection_hours_counts'),
        ),
        sa.PrimaryKeyConstraint('hour', name=op.f('pk_helpdesk_deflection_hours')),
    )


def downgrade():
    op.drop_table('helpdesk_deflection_hours')
    op.drop_index('ix_helpdesk_page_views_shown_at', table_name='helpdesk_page_views')
    op.drop_table('helpdesk_page_views')
