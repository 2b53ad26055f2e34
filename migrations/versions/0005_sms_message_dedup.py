"""received SMS: Twilio MessageSids taken, so a re-delivered text is handled once

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('received_sms',
    sa.Column('message_sid', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('message_sid')
    )
    with op.batch_alter_table('received_sms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_received_sms_received_at'), ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('received_sms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_received_sms_received_at'))
    op.drop_table('received_sms')
