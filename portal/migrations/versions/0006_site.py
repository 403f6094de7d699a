"""newsletter subscribers (double opt-in; only a hash of the confirmation token)

Revision ID: 0006_site
Revises: 0009_user_search
Create Date: 2026-11-22 05:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_site'
down_revision = '0009_user_search'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('newsletter_subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('email_key', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('confirm_token_hash', sa.String(length=64), nullable=True),
    sa.Column('confirm_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_emailed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status <> 'confirmed' OR confirmed_at IS NOT NULL", name=op.f('ck_newsletter_subscribers_confirmed_at')),
    sa.CheckConstraint("status IN ('pending', 'confirmed', 'unsubscribed')", name=op.f('ck_newsletter_subscribers_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_newsletter_subscribers')),
    sa.UniqueConstraint('confirm_token_hash', name=op.f('uq_newsletter_subscribers_confirm_token_hash')),
    sa.UniqueConstraint('email_key', name=op.f('uq_newsletter_subscribers_email_key'))
    )
    with op.batch_alter_table('newsletter_subscribers', schema=None) as batch_op:
        batch_op.create_index('ix_newsletter_subscribers_status_confirmed_at', ['status', 'confirmed_at'], unique=False)


def downgrade():
    with op.batch_alter_table('newsletter_subscribers', schema=None) as batch_op:
        batch_op.drop_index('ix_newsletter_subscribers_status_confirmed_at')

    op.drop_table('newsletter_subscribers')
