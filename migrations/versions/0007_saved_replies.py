"""saved_replies: reply templates staff insert into the reply box, seeded from clinic.yml

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'saved_replies',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=True),
        sa.Column('retired', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('created_by', sa.String(length=64), nullable=True),
        sa.Column('updated_by', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    # The defaults (call-back offer, medication list, ...) worded with the clinic profile in use.
    from clinic.staff.saved_replies import seed_rows

    op.bulk_insert(table, seed_rows())


def downgrade() -> None:
    op.drop_table('saved_replies')
