"""reconcile leases name their owner; instances remember crash restarts for back-off

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications') as batch_op:
        batch_op.add_column(sa.Column('reconcile_lease_owner', sa.String(length=36), nullable=True))
    with op.batch_alter_table('container_instances') as batch_op:
        batch_op.add_column(sa.Column('restarts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('backoff_until', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('container_instances') as batch_op:
        batch_op.drop_column('backoff_until')
        batch_op.drop_column('restarts')
    with op.batch_alter_table('applications') as batch_op:
        batch_op.drop_column('reconcile_lease_owner')
