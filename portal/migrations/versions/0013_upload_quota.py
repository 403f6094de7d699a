"""helpdesk reference counter: honeypot answers take a real request number (SQLite)

A honeypot catch answers with the next number of the requests' own sequence, so that it looks
like a real reference and the next real request follows it.  PostgreSQL's sequence gives a
number out once; SQLite numbers rows max(id) + 1, so it needs this one-row counter (see
portal.helpdesk.models.take_request_number).  The upload quota itself needs no column.

Revision ID: 0013_upload_quota
Revises: 0012_mail_delivery
Create Date: 2026-12-02 18:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013_upload_quota'
down_revision = '0012_mail_delivery'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'helpdesk_reference_counter',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('last_id', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_helpdesk_reference_counter')),
    )


def downgrade():
    op.drop_table('helpdesk_reference_counter')
