"""registry notification events already applied, by id, so a replayed one changes nothing

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 11:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'registry_events_seen',
        sa.Column('event_id', sa.String(length=128), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('event_id', name=op.f('pk_registry_events_seen')),
    )
    with op.batch_alter_table('registry_events_seen') as batch_op:
        batch_op.create_index(batch_op.f('ix_registry_events_seen_seen_at'), ['seen_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('registry_events_seen') as batch_op:
        batch_op.drop_index(batch_op.f('ix_registry_events_seen_seen_at'))
    op.drop_table('registry_events_seen')
