"""autoscaling_policies: the settings the decision takes, and what it last decided

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('autoscaling_policies') as batch_op:
        batch_op.add_column(sa.Column('scale_down_stabilization_s', sa.Integer(), nullable=False,
                                      server_default='300'))
        batch_op.add_column(sa.Column('tolerance', sa.Double(), nullable=False, server_default='0.1'))
        batch_op.add_column(sa.Column('recommendations', sa.JSON(), nullable=False,
                                      server_default='[]'))
        batch_op.add_column(sa.Column('last_decision', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('last_decided_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('autoscaling_policies') as batch_op:
        for column in ('last_decided_at', 'last_decision', 'recommendations', 'tolerance',
                       'scale_down_stabilization_s'):
            batch_op.drop_column(column)
