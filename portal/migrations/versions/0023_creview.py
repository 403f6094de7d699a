"""access reviews: the review and one item per user it covers (docs/rules.md §4)

Revision ID: 0023_creview
Revises: 0022_cbulk
Create Date: 2026-12-03 03:00:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0023_creview'
down_revision = '0022_cbulk'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'access_reviews',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_by_id', sa.Integer(), nullable=True),
        sa.Column('started_by', sa.String(length=64), nullable=False),
        sa.Column('scope', sa.String(length=400), nullable=False),
        sa.Column('users_total', sa.Integer(), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('signed_off_by_id', sa.Integer(), nullable=True),
        sa.Column('signed_off_by', sa.String(length=64), nullable=True),
        sa.Column('signed_off_name', sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            '(finished_at IS NULL) = (signed_off_by IS NULL)',
            name=op.f('ck_access_reviews_signed_off_iff_finished'),
        ),
        sa.CheckConstraint(
            'finished_at IS NULL OR finished_at >= started_at',
            name=op.f('ck_access_reviews_finished_after_start'),
        ),
        sa.CheckConstraint('users_total >= 0', name=op.f('ck_access_reviews_users_total_range')),
        sa.ForeignKeyConstraint(
            ['organisation_id'], ['organisations.id'],
            name=op.f('fk_access_reviews_organisation_id_organisations'),
        ),
        sa.ForeignKeyConstraint(
            ['started_by_id'], ['users.id'], name=op.f('fk_access_reviews_started_by_id_users')
        ),
        sa.ForeignKeyConstraint(
            ['signed_off_by_id'], ['users.id'],
            name=op.f('fk_access_reviews_signed_off_by_id_users'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_access_reviews')),
    )
    op.create_index(
        'ix_access_reviews_org_started_at', 'access_reviews', ['organisation_id', 'started_at']
    )
    op.create_index(
        'uq_access_reviews_one_open',
        'access_reviews',
        ['organisation_id'],
        unique=True,
        sqlite_where=sa.text('finished_at IS NULL'),
        postgresql_where=sa.text('finished_at IS NULL'),
    )
    op.create_table(
        'access_review_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('review_id', sa.Integer(), nullable=False),
        sa.Column('user_pk', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('user_id_key', sa.String(length=64), nullable=False),
        sa.Column('full_name', sa.String(length=200), nullable=False),
        sa.Column('profile', sa.String(length=20), nullable=False),
        sa.Column('state_at_start', sa.String(length=20), nullable=False),
        sa.Column('decision', sa.String(length=10), nullable=True),
        sa.Column('outcome', sa.String(length=10), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_by', sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('keep', 'remove')",
            name=op.f('ck_access_review_items_decision_known'),
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('kept', 'removed', 'no_access')",
            name=op.f('ck_access_review_items_outcome_known'),
        ),
        sa.CheckConstraint(
            "state_at_start IN ('has_access', 'system_disabled', 'access_removed')",
            name=op.f('ck_access_review_items_state_at_start_known'),
        ),
        sa.CheckConstraint(
            '(decision IS NULL) = (decided_at IS NULL) AND (decision IS NULL) = (outcome IS NULL) '
            'AND (decision IS NULL) = (decided_by IS NULL)',
            name=op.f('ck_access_review_items_decided_together'),
        ),
        sa.CheckConstraint(
            "decision IS NULL OR (decision = 'keep') = (outcome = 'kept')",
            name=op.f('ck_access_review_items_outcome_fits_decision'),
        ),
        sa.ForeignKeyConstraint(
            ['review_id'], ['access_reviews.id'],
            name=op.f('fk_access_review_items_review_id_access_reviews'),
        ),
        sa.ForeignKeyConstraint(
            ['user_pk'], ['users.id'], name=op.f('fk_access_review_items_user_pk_users')
        ),
        sa.ForeignKeyConstraint(
            ['decided_by_id'], ['users.id'],
            name=op.f('fk_access_review_items_decided_by_id_users'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_access_review_items')),
        sa.UniqueConstraint('review_id', 'user_pk', name='uq_access_review_items_review_user'),
    )
    op.create_index(
        'ix_access_review_items_review_user_key',
        'access_review_items',
        ['review_id', 'user_id_key'],
    )


def downgrade():
    op.drop_index('ix_access_review_items_review_user_key', table_name='access_review_items')
    op.drop_table('access_review_items')
    op.drop_index('uq_access_reviews_one_open', table_name='access_reviews')
    op.drop_index('ix_access_reviews_org_started_at', table_name='access_reviews')
    op.drop_table('access_reviews')
