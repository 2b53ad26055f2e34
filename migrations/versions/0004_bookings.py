"""bookings (built-in calendar, Cal.com) and booking requests for staff

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bookings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('conversation_id', sa.String(length=255), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('external_uid', sa.String(length=128), nullable=True),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('visit_reason', sa.String(length=40), nullable=True),
    sa.Column('patient_type', sa.String(length=16), nullable=True),
    sa.Column('sms_consent', sa.Boolean(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('chair', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bookings_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bookings_external_uid'), ['external_uid'], unique=False)
        batch_op.create_index(batch_op.f('ix_bookings_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_bookings_starts_at'), ['starts_at'], unique=False)
        # No double booking: one booked consultation per start time and chair.
        batch_op.create_index('uq_bookings_slot_chair', ['starts_at', 'chair'], unique=True,
                              sqlite_where=sa.text("status = 'booked'"),
                              postgresql_where=sa.text("status = 'booked'"))

    with op.batch_alter_table('booking_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='book', nullable=False))
        batch_op.add_column(sa.Column('booking_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('visit_reason', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('patient_type', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('sms_consent', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('backend', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('fallback_reason', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('webhook_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('webhook_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('webhook_error', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('confirmed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_booking_requests_code', ['code'])
        batch_op.create_foreign_key('fk_booking_requests_booking_id', 'bookings', ['booking_id'], ['id'],
                                    ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('booking_requests', schema=None) as batch_op:
        batch_op.drop_constraint('fk_booking_requests_booking_id', type_='foreignkey')
        batch_op.drop_constraint('uq_booking_requests_code', type_='unique')
        for column in ('cancelled_by', 'cancelled_at', 'confirmed_by', 'confirmed_at', 'updated_at',
                       'webhook_error', 'webhook_attempts', 'webhook_status', 'fallback_reason', 'backend',
                       'sms_consent', 'patient_type', 'visit_reason', 'email', 'booking_id', 'kind', 'code'):
            batch_op.drop_column(column)

    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index('uq_bookings_slot_chair', sqlite_where=sa.text("status = 'booked'"),
                            postgresql_where=sa.text("status = 'booked'"))
        batch_op.drop_index(batch_op.f('ix_bookings_starts_at'))
        batch_op.drop_index(batch_op.f('ix_bookings_phone'))
        batch_op.drop_index(batch_op.f('ix_bookings_external_uid'))
        batch_op.drop_index(batch_op.f('ix_bookings_conversation_id'))

    op.drop_table('bookings')
