"""initial data model: identity, projects, registries, inventory, services, events

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 13:09:35.054378
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('applications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('reconcile_lease_until', sa.DateTime(), nullable=True),
    sa.Column('deploy_started_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_applications')),
    sa.UniqueConstraint('name', name=op.f('uq_applications_name'))
    )
    op.create_table('clusters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clusters')),
    sa.UniqueConstraint('name', name=op.f('uq_clusters_name'))
    )
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=True),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.Column('source_addr', sa.String(length=64), nullable=True),
    sa.Column('message', sa.String(length=1024), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_kind'), ['kind'], unique=False)

    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('name', name=op.f('uq_projects_name'))
    )
    op.create_table('registries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('idc', sa.String(length=64), nullable=True),
    sa.Column('healthy', sa.Boolean(), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("role IN ('primary', 'mirror')", name=op.f('ck_registries_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registries')),
    sa.UniqueConstraint('name', name=op.f('uq_registries_name'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'developer', 'guest')", name=op.f('ck_memberships_role')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_memberships_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('project_id', 'user_id', name=op.f('uq_memberships_project_id_user_id'))
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_memberships_user_id'), ['user_id'], unique=False)

    op.create_table('pools',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_pools_cluster_id_clusters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pools')),
    sa.UniqueConstraint('cluster_id', 'name', name=op.f('uq_pools_cluster_id_name'))
    )
    op.create_table('repositories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_repositories_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repositories')),
    sa.UniqueConstraint('project_id', 'name', name=op.f('uq_repositories_project_id_name'))
    )
    op.create_table('robot_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=255), nullable=False),
    sa.Column('can_push', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_robot_accounts_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_robot_accounts')),
    sa.UniqueConstraint('project_id', 'name', name=op.f('uq_robot_accounts_project_id_name'))
    )
    op.create_table('services',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('image', sa.String(length=512), nullable=False),
    sa.Column('command', sa.JSON(), nullable=True),
    sa.Column('environment', sa.JSON(), nullable=False),
    sa.Column('ports', sa.JSON(), nullable=False),
    sa.Column('cpus', sa.Double(), nullable=False),
    sa.Column('memory', sa.BigInteger(), nullable=False),
    sa.Column('constraints', sa.JSON(), nullable=False),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('healthcheck', sa.JSON(), nullable=True),
    sa.Column('replicas', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('status_detail', sa.String(length=1024), nullable=True),
    sa.Column('waiting_since', sa.DateTime(), nullable=True),
    sa.Column('endpoints', sa.JSON(), nullable=False),
    sa.Column('endpoints_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("strategy IN ('spread', 'binpack')", name=op.f('ck_services_strategy')),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_services_application_id_applications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_services')),
    sa.UniqueConstraint('application_id', 'name', name=op.f('uq_services_application_id_name'))
    )
    op.create_table('autoscaling_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('min_replicas', sa.Integer(), nullable=False),
    sa.Column('max_replicas', sa.Integer(), nullable=False),
    sa.Column('target_cpu_percent', sa.Double(), nullable=False),
    sa.Column('cpu_basis', sa.String(length=8), nullable=False),
    sa.Column('scale_up_factor', sa.Double(), nullable=False),
    sa.Column('cooldown_s', sa.Integer(), nullable=False),
    sa.Column('last_scaled_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("cpu_basis IN ('core', 'limit')", name=op.f('ck_autoscaling_policies_cpu_basis')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_autoscaling_policies_service_id_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autoscaling_policies')),
    sa.UniqueConstraint('service_id', name=op.f('uq_autoscaling_policies_service_id'))
    )
    op.create_table('hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=255), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('tls_ca', sa.Text(), nullable=True),
    sa.Column('tls_cert', sa.Text(), nullable=True),
    sa.Column('tls_key', sa.Text(), nullable=True),
    sa.Column('idc', sa.String(length=64), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('disk_type', sa.String(length=16), nullable=True),
    sa.Column('disk_gb', sa.Integer(), nullable=True),
    sa.Column('cpus', sa.Double(), nullable=True),
    sa.Column('memory', sa.BigInteger(), nullable=True),
    sa.Column('kernel', sa.String(length=128), nullable=True),
    sa.Column('engine_version', sa.String(length=64), nullable=True),
    sa.Column('port_range_start', sa.Integer(), nullable=False),
    sa.Column('port_range_end', sa.Integer(), nullable=False),
    sa.Column('admin_state', sa.String(length=16), nullable=False),
    sa.Column('liveness', sa.String(length=16), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('last_heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=512), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("admin_state IN ('active', 'paused', 'draining', 'maintenance')", name=op.f('ck_hosts_admin_state')),
    sa.CheckConstraint("liveness IN ('unknown', 'up', 'down')", name=op.f('ck_hosts_liveness')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_hosts_pool_id_pools'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hosts')),
    sa.UniqueConstraint('name', name=op.f('uq_hosts_name'))
    )
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hosts_pool_id'), ['pool_id'], unique=False)

    op.create_table('service_dependencies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('depends_on_id', sa.Integer(), nullable=False),
    sa.Column('condition', sa.String(length=16), nullable=False),
    sa.CheckConstraint("condition IN ('started', 'healthy')", name=op.f('ck_service_dependencies_condition')),
    sa.ForeignKeyConstraint(['depends_on_id'], ['services.id'], name=op.f('fk_service_dependencies_depends_on_id_services'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_service_dependencies_service_id_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_dependencies')),
    sa.UniqueConstraint('service_id', 'depends_on_id', name=op.f('uq_service_dependencies_service_id_depends_on_id'))
    )
    op.create_table('tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('digest', sa.String(length=100), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('pushed_at', sa.DateTime(), nullable=False),
    sa.Column('pushed_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_tags_repository_id_repositories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tags')),
    sa.UniqueConstraint('repository_id', 'name', name=op.f('uq_tags_repository_id_name'))
    )
    op.create_table('container_instances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('container_id', sa.String(length=64), nullable=True),
    sa.Column('host_port', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('health', sa.String(length=32), nullable=True),
    sa.Column('cpu_percent', sa.Double(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_container_instances_host_id_hosts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_container_instances_service_id_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_container_instances')),
    sa.UniqueConstraint('name', name=op.f('uq_container_instances_name')),
    sa.UniqueConstraint('service_id', 'slot', 'revision', name=op.f('uq_container_instances_service_id_slot_revision'))
    )
    with op.batch_alter_table('container_instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_container_instances_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_container_instances_service_id'), ['service_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('container_instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_container_instances_service_id'))
        batch_op.drop_index(batch_op.f('ix_container_instances_host_id'))

    op.drop_table('container_instances')
    op.drop_table('tags')
    op.drop_table('service_dependencies')
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hosts_pool_id'))

    op.drop_table('hosts')
    op.drop_table('autoscaling_policies')
    op.drop_table('services')
    op.drop_table('robot_accounts')
    op.drop_table('repositories')
    op.drop_table('pools')
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_memberships_user_id'))

    op.drop_table('memberships')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('registries')
    op.drop_table('projects')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_kind'))
        batch_op.drop_index(batch_op.f('ix_events_at'))

    op.drop_table('events')
    op.drop_table('clusters')
    op.drop_table('applications')
