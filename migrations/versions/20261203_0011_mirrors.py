"""mirrors: a token service per registry, replication policies, sync jobs with progress,
what each mirror holds, and where an instance's image was pulled from

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 23:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('replication_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('projects', sa.String(length=255), nullable=False),
    sa.Column('repositories', sa.String(length=255), nullable=False),
    sa.Column('tags', sa.String(length=255), nullable=False),
    sa.Column('tags_regex', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('on_push', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('schedule_s', sa.Integer(), nullable=True),
    sa.Column('propagate_deletes', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('last_scheduled_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replication_policies')),
    sa.UniqueConstraint('name', name=op.f('uq_replication_policies_name'))
    )
    op.create_table('mirror_tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sa.Integer(), nullable=False),
    sa.Column('repository', sa.String(length=255), nullable=False),
    sa.Column('tag', sa.String(length=128), nullable=False),
    sa.Column('digest', sa.String(length=100), nullable=False),
    sa.Column('synced_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['registry_id'], ['registries.id'], name=op.f('fk_mirror_tags_registry_id_registries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mirror_tags')),
    sa.UniqueConstraint('registry_id', 'repository', 'tag', name=op.f('uq_mirror_tags_registry_id_repository_tag'))
    )
    with op.batch_alter_table('mirror_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mirror_tags_registry_id'), ['registry_id'], unique=False)

    op.create_table('replication_policy_mirrors',
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['replication_policies.id'], name=op.f('fk_replication_policy_mirrors_policy_id_replication_policies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registry_id'], ['registries.id'], name=op.f('fk_replication_policy_mirrors_registry_id_registries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('policy_id', 'registry_id', name=op.f('pk_replication_policy_mirrors'))
    )
    op.create_table('sync_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=True),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('repository', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.Column('tags_total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tags_done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tags_deleted', sa.Integer(), server_default='0', nullable=False),
    sa.Column('blobs_total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('blobs_done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('blobs_skipped', sa.Integer(), server_default='0', nullable=False),
    sa.Column('blobs_mounted', sa.Integer(), server_default='0', nullable=False),
    sa.Column('bytes_total', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('bytes_sent', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name=op.f('ck_sync_jobs_status')),
    sa.ForeignKeyConstraint(['policy_id'], ['replication_policies.id'], name=op.f('fk_sync_jobs_policy_id_replication_policies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['registry_id'], ['registries.id'], name=op.f('fk_sync_jobs_registry_id_registries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_jobs'))
    )
    with op.batch_alter_table('sync_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_jobs_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_jobs_registry_id'), ['registry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_jobs_status'), ['status'], unique=False)

    with op.batch_alter_table('container_instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pulled_from', sa.String(length=64), nullable=True))

    with op.batch_alter_table('registries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('service', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('tls_verify', sa.Boolean(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('ca_bundle', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        # Rows from before mirrors were built get the migration's time.
        batch_op.add_column(sa.Column('created_at', sa.DateTime(), nullable=False,
                                      server_default=sa.func.current_timestamp()))
        batch_op.create_unique_constraint(batch_op.f('uq_registries_service'), ['service'])



def downgrade() -> None:
    with op.batch_alter_table('registries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_registries_service'), type_='unique')
        batch_op.drop_column('created_at')
        batch_op.drop_column('last_error')
        batch_op.drop_column('ca_bundle')
        batch_op.drop_column('tls_verify')
        batch_op.drop_column('service')

    with op.batch_alter_table('container_instances', schema=None) as batch_op:
        batch_op.drop_column('pulled_from')

    with op.batch_alter_table('sync_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_sync_jobs_registry_id'))
        batch_op.drop_index(batch_op.f('ix_sync_jobs_created_at'))

    op.drop_table('sync_jobs')
    op.drop_table('replication_policy_mirrors')
    with op.batch_alter_table('mirror_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mirror_tags_registry_id'))

    op.drop_table('mirror_tags')
    op.drop_table('replication_policies')
