"""containers drop every capability but a service's allowlist, have a pids limit, and may
have a read-only root filesystem

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 11:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('services') as batch_op:
        batch_op.add_column(sa.Column('capabilities', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('pids_limit', sa.Integer(), server_default='512', nullable=False))
        batch_op.add_column(sa.Column('read_only', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('services') as batch_op:
        batch_op.drop_column('read_only')
        batch_op.drop_column('pids_limit')
        batch_op.drop_column('capabilities')
