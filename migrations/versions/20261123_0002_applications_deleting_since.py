"""applications.deleting_since: an application being torn down, dependents first

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications') as batch_op:
        batch_op.add_column(sa.Column('deleting_since', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('applications') as batch_op:
        batch_op.drop_column('deleting_since')
