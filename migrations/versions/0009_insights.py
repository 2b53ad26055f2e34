"""insights: staff roles (staff | admin | manager), intents marked on unanswered messages, and the
indexes of the insights queries

The tracker store's ``events`` table gets its indexes here when it lives in the clinic database (as
in production); a tracker store in a database of its own gets them from ``python -m clinic.cli
migrate`` (:func:`clinic.insights.indexes.ensure_tracker_indexes`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

CLINIC_INDEXES = (
    ('ix_escalations_created_at', 'escalations', ['created_at']),
    ('ix_staff_replies_escalation_created', 'staff_replies', ['escalation_id', 'created_at']),
    ('ix_bookings_created_at', 'bookings', ['created_at']),
    ('ix_booking_requests_created_at', 'booking_requests', ['created_at']),
)
# the same as clinic.insights.indexes.TRACKER_INDEXES (a migration does not import application code)
TRACKER_INDEXES = (
    ('ix_events_insights_type_time', ['type_name', 'timestamp', 'sender_id', 'intent_name']),
    ('ix_events_insights_action_time', ['action_name', 'timestamp', 'sender_id']),
    ('ix_events_insights_intent_time', ['intent_name', 'timestamp']),
)


def _has_events_table() -> bool:
    return 'events' in sa.inspect(op.get_bind()).get_table_names()


def upgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), nullable=False, server_default='staff'))
    op.execute("UPDATE staff_users SET role = 'admin' WHERE is_admin")
    op.create_table(
        'insight_labels',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.String(length=255), nullable=False),
        sa.Column('intent', sa.String(length=64), nullable=False),
        sa.Column('message_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('labelled_by', sa.String(length=64), nullable=True),
        sa.Column('labelled_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('event_id', name='uq_insight_labels_event'),
    )
    op.create_index('ix_insight_labels_message_at', 'insight_labels', ['message_at'])
    for name, table, columns in CLINIC_INDEXES:
        op.create_index(name, table, columns)
    if _has_events_table():
        for name, columns in TRACKER_INDEXES:
            op.create_index(name, 'events', columns, if_not_exists=True)


def downgrade() -> None:
    if _has_events_table():
        for name, _columns in TRACKER_INDEXES:
            op.drop_index(name, table_name='events', if_exists=True)
    for name, table, _columns in CLINIC_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_index('ix_insight_labels_message_at', table_name='insight_labels')
    op.drop_table('insight_labels')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('role')
