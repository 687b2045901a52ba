"""alerts: per-service alert thresholds, and the notifications Alertmanager sent

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 06:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_thresholds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('p999_s', sa.Double(), nullable=True),
    sa.Column('error_ratio', sa.Double(), nullable=True),
    sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('p999_s IS NULL OR p999_s > 0',
                       name=op.f('ck_alert_thresholds_p999_positive')),
    sa.CheckConstraint('error_ratio IS NULL OR (error_ratio > 0 AND error_ratio <= 1)',
                       name=op.f('ck_alert_thresholds_error_ratio_range')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], ondelete='CASCADE',
                            name=op.f('fk_alert_thresholds_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_thresholds')),
    sa.UniqueConstraint('service_id', name=op.f('uq_alert_thresholds_service_id'))
    )
    op.create_table('alert_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('alertname', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('annotations', sa.JSON(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('firing', 'resolved')",
                       name=op.f('ck_alert_notifications_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_notifications')),
    sa.UniqueConstraint('fingerprint', 'starts_at', 'status',
                        name=op.f('uq_alert_notifications_fingerprint_starts_at_status'))
    )
    op.create_index(op.f('ix_alert_notifications_fingerprint'), 'alert_notifications',
                    ['fingerprint'], unique=False)
    op.create_index(op.f('ix_alert_notifications_received_at'), 'alert_notifications',
                    ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_alert_notifications_received_at'), table_name='alert_notifications')
    op.drop_index(op.f('ix_alert_notifications_fingerprint'), table_name='alert_notifications')
    op.drop_table('alert_notifications')
    op.drop_table('alert_thresholds')
