"""instances keep their last one-shot CPU sample, so CPU% is the delta between rounds

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('container_instances') as batch_op:
        batch_op.add_column(sa.Column('cpu_sample_container_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('cpu_sample_usage_ns', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('cpu_sample_system_ns', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('container_instances') as batch_op:
        batch_op.drop_column('cpu_sample_system_ns')
        batch_op.drop_column('cpu_sample_usage_ns')
        batch_op.drop_column('cpu_sample_container_id')
