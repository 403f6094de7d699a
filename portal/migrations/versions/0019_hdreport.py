"""helpdesk report: the facts it counts on each request, page views that were shown
suggestions and the hourly counters they are folded into (deflection, without any new cookie)

* ``helpdesk_requests`` gains ``error_code``, ``first_reply_seconds`` and ``resolve_seconds``
  (portal.helpdesk.report_facts), filled here for the requests already there.  Nullable
  columns are added in place (ALTER TABLE ADD COLUMN, CHECKs included): the table is not
  copied, so the FTS triggers of its error-text index (0007) stay.
* The page-view rows hold a random id and two times, nothing about a person; the nightly run
  folds them into ``helpdesk_deflection_hours`` and deletes them (portal.helpdesk.page_views).

Revision ID: 0019_hdreport
Revises: 0018_hdloop
Create Date: 2026-12-03 03:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0019_hdreport'
down_revision = '0018_hdloop'
branch_labels = None
depends_on = None


def _backfill():
    """Existing requests: the code their error text names, and the working time to their first
    reply and resolution (the default working day: the settings are not read here)."""
    from portal.helpdesk import business_hours
    from portal.helpdesk import report_facts

    bind = op.get_bind()
    requests = sa.table(
        'helpdesk_requests',
        sa.column('id', sa.Integer()),
        sa.column('error_message', sa.Text()),
        sa.column('created_at', sa.DateTime(timezone=True)),
        sa.column('error_code', sa.String()),
        sa.column('first_reply_seconds', sa.Integer()),
        sa.column('resolve_seconds', sa.Integer()),
    )
    events = sa.table(
        'helpdesk_request_events',
        sa.column('id', sa.Integer()),
        sa.column('request_id', sa.Integer()),
        sa.column('occurred_at', sa.DateTime(timezone=True)),
        sa.column('kind', sa.String()),
        sa.column('from_status', sa.String()),
        sa.column('to_status', sa.String()),
    )
    rows = bind.execute(
        sa.select(requests.c.id, requests.c.error_message).where(
            requests.c.error_message.is_not(None)
        )
    ).all()
    for request_id, text in rows:
        bind.execute(
            requests.update()
            .where(requests.c.id == request_id)
            .values(error_code=report_facts.code_of(text))
        )
    hours = business_hours.WorkingHours()
    timelines = {}
    for request_id, created, when, kind, from_status, to_status in bind.execute(
        sa.select(
            requests.c.id,
            requests.c.created_at,
            events.c.occurred_at,
            events.c.kind,
            events.c.from_status,
            events.c.to_status,
        )
        .join(events, events.c.request_id == requests.c.id)
        .order_by(requests.c.id, events.c.occurred_at, events.c.id)
    ):
        timelines.setdefault(request_id, (created, []))[1].append(
            (when, kind, from_status, to_status)
        )
    for request_id, (created, timeline) in timelines.items():
        values = {}
        changes = []
        for when, kind, from_status, to_status in timeline:
            changes.append((when, from_status, to_status))
            if kind in report_facts.REPLY_KINDS and 'first_reply_seconds' not in values:
                values['first_reply_seconds'] = report_facts.working_seconds(
                    created, when, changes, hours
                )
            if (
                kind == 'status_changed'
                and to_status == 'resolved'
                and 'resolve_seconds' not in values
            ):
                values['resolve_seconds'] = report_facts.working_seconds(
                    created, when, changes, hours
                )
        if values:
            bind.execute(requests.update().where(requests.c.id == request_id).values(**values))


def upgrade():
    op.add_column(
        'helpdesk_requests', sa.Column('error_code', sa.String(length=12), nullable=True)
    )
    op.add_column(
        'helpdesk_requests',
        sa.Column(
            'first_reply_seconds',
            sa.Integer(),
            sa.CheckConstraint(
                'first_reply_seconds IS NULL OR first_reply_seconds >= 0',
                name=op.f('ck_helpdesk_requests_first_reply_seconds'),
            ),
            nullable=True,
        ),
    )
    op.add_column(
        'helpdesk_requests',
        sa.Column(
            'resolve_seconds',
            sa.Integer(),
            sa.CheckConstraint(
                'resolve_seconds IS NULL OR resolve_seconds >= 0',
                name=op.f('ck_helpdesk_requests_resolve_seconds'),
            ),
            nullable=True,
        ),
    )
    _backfill()
    op.create_index(
        'ix_helpdesk_requests_kind_error_code',
        'helpdesk_requests',
        ['kind', 'error_code', 'created_at'],
        unique=False,
    )
    op.create_index(
        'ix_helpdesk_requests_report',
        'helpdesk_requests',
        [
            'created_at',
            'kind',
            'stated_role',
            'console',
            'environment',
            'error_code',
            'first_reply_seconds',
            'resolve_seconds',
            'suggestions_shown',
        ],
        unique=False,
    )
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
    op.drop_index('ix_helpdesk_requests_report', table_name='helpdesk_requests')
    op.drop_index('ix_helpdesk_requests_kind_error_code', table_name='helpdesk_requests')
    if op.get_bind().dialect.name == 'sqlite':
        # In place (SQLite 3.35+), as they were added: a table copy would drop the error-text
        # index's triggers and turn 0017's column CHECKs into table CHECKs, which SQLite's
        # DROP COLUMN in 0017's downgrade cannot remove. Each CHECK goes with its column.
        for column in ('resolve_seconds', 'first_reply_seconds', 'error_code'):
            op.execute(f"ALTER TABLE helpdesk_requests DROP COLUMN {column}")
    else:
        with op.batch_alter_table('helpdesk_requests', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_helpdesk_requests_resolve_seconds'), type_='check')
            batch_op.drop_constraint(
                op.f('ck_helpdesk_requests_first_reply_seconds'), type_='check'
            )
            batch_op.drop_column('resolve_seconds')
            batch_op.drop_column('first_reply_seconds')
            batch_op.drop_column('error_code')
    op.drop_table('helpdesk_deflection_hours')
    op.drop_index('ix_helpdesk_page_views_shown_at', table_name='helpdesk_page_views')
    op.drop_table('helpdesk_page_views')
