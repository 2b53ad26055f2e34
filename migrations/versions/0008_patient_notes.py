"""patient_notes: staff notes that follow a patient (SMS phone or conversation id) across escalations

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('patient_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_key', sa.String(length=255), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('escalation_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['staff_users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('patient_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_notes_patient_key'), ['patient_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('patient_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_notes_patient_key'))
    op.drop_table('patient_notes')
