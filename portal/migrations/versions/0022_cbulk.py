"""cbulk: the Console's bulk operations and CSV imports (kept in the database: a result page,
a preview confirmed later), and the background job table the scheduler claims from

Revision ID: 0022_cbulk
Revises: 0021_mfarecover
Create Date: 2026-12-03 02:52:53.689649

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022_cbulk'
down_revision = '0021_mfarecover'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('background_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('ref_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('runner', sa.String(length=100), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_background_jobs_background_job_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_background_jobs'))
    )
    with op.batch_alter_table('background_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_background_jobs_status'), ['status'], unique=False)

    op.create_table('bulk_operations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('months', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('background', sa.Boolean(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(action = 'extend_expiry') = (months IS NOT NULL) AND (months IS NULL OR months IN (3, 6, 12))", name=op.f('ck_bulk_operations_bulk_operation_months')),
    sa.CheckConstraint("(action = 'set_expiry') = (expires_on IS NOT NULL)", name=op.f('ck_bulk_operations_bulk_operation_date')),
    sa.CheckConstraint("action IN ('remove_access', 'enable', 'set_expiry', 'extend_expiry')", name=op.f('ck_bulk_operations_bulk_operation_action')),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_bulk_operations_bulk_operation_status')),
    sa.CheckConstraint('processed >= 0 AND processed <= total', name=op.f('ck_bulk_operations_bulk_operation_progress')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_bulk_operations_actor_id_users')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_bulk_operations_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_operations'))
    )
    with op.batch_alter_table('bulk_operations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bulk_operations_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('user_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('delivery', sa.String(length=10), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.CheckConstraint("delivery IS NULL OR delivery IN ('download', 'email')", name=op.f('ck_user_imports_user_import_delivery')),
    sa.CheckConstraint("status IN ('preview', 'queued', 'applying', 'applied', 'failed')", name=op.f('ck_user_imports_user_import_status')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_user_imports_actor_id_users')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_user_imports_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_imports'))
    )
    with op.batch_alter_table('user_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_imports_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('bulk_operation_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('operation_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('user_pk', sa.Integer(), nullable=True),
    sa.Column('user_label', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.CheckConstraint("outcome IN ('pending', 'changed', 'refused', 'already', 'not_found')", name=op.f('ck_bulk_operation_items_bulk_item_outcome')),
    sa.ForeignKeyConstraint(['operation_id'], ['bulk_operations.id'], name=op.f('fk_bulk_operation_items_operation_id_bulk_operations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_operation_items')),
    sa.UniqueConstraint('operation_id', 'position', name='uq_bulk_item_position')
    )
    with op.batch_alter_table('bulk_operation_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bulk_operation_items_operation_id'), ['operation_id'], unique=False)

    op.create_table('user_import_rows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('profile', sa.String(length=20), nullable=True),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('result', sa.Text(), nullable=True),
    sa.CheckConstraint("outcome IN ('create', 'update', 'unchanged', 'refused')", name=op.f('ck_user_import_rows_user_import_outcome')),
    sa.ForeignKeyConstraint(['import_id'], ['user_imports.id'], name=op.f('fk_user_import_rows_import_id_user_imports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_import_rows'))
    )
    with op.batch_alter_table('user_import_rows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_import_rows_import_id'), ['import_id'], unique=False)



def downgrade():
    with op.batch_alter_table('user_import_rows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_import_rows_import_id'))

    op.drop_table('user_import_rows')
    with op.batch_alter_table('bulk_operation_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bulk_operation_items_operation_id'))

    op.drop_table('bulk_operation_items')
    with op.batch_alter_table('user_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_imports_organisation_id'))

    op.drop_table('user_imports')
    with op.batch_alter_table('bulk_operations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bulk_operations_organisation_id'))

    op.drop_table('bulk_operations')
    with op.batch_alter_table('background_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_background_jobs_status'))

    op.drop_table('background_jobs')
