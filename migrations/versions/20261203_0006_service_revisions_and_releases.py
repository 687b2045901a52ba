"""service revisions and releases; placement fields and canary signals on services and instances

Every existing service gets its revision row (its current spec), so it can be released
from and rolled back to.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

SPEC = ('image', 'command', 'environment', 'cpus', 'memory', 'healthcheck')


def upgrade() -> None:
    with op.batch_alter_table('services') as batch_op:
        batch_op.add_column(sa.Column('cluster', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pool', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('idc', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('min_cpus', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('min_memory', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('error_pattern', sa.String(length=256),
                                      server_default='ERROR|WARN', nullable=False))
    with op.batch_alter_table('container_instances') as batch_op:
        batch_op.add_column(sa.Column('log_lines', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('error_lines', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('logs_read_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('logs_container_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('memory_bytes', sa.BigInteger(), nullable=True))
    revisions = op.create_table(
        'service_revisions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('service_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('spec', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['service_id'], ['services.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('service_id', 'number'),
    )
    op.create_index(op.f('ix_service_revisions_service_id'), 'service_revisions', ['service_id'])
    op.create_table(
        'releases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('service_id', sa.Integer(), nullable=False),
        sa.Column('group', sa.String(length=36), nullable=True),
        sa.Column('from_revision', sa.Integer(), nullable=False),
        sa.Column('to_revision', sa.Integer(), nullable=False),
        sa.Column('strategy', sa.String(length=16), nullable=False),
        sa.Column('settings', sa.JSON(), nullable=False),
        sa.Column('progress', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=24), nullable=False),
        sa.Column('detail', sa.String(length=1024), nullable=True),
        sa.Column('analysis', sa.JSON(), nullable=True),
        sa.Column('created_by', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['service_id'], ['services.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_releases_service_id'), 'releases', ['service_id'])
    op.create_index(op.f('ix_releases_group'), 'releases', ['group'])
    op.create_index(op.f('ix_releases_status'), 'releases', ['status'])
    services = sa.table('services', sa.column('id', sa.Integer), sa.column('revision', sa.Integer),
                        sa.column('created_at', sa.DateTime),
                        *(sa.column(name, sa.JSON if name in ('command', 'environment', 'healthcheck')
                                    else sa.String) for name in SPEC))
    connection = op.get_bind()
    rows = connection.execute(sa.select(services)).mappings().all()
    if rows:
        op.bulk_insert(revisions, [
            {'service_id': row['id'], 'number': row['revision'], 'created_at': row['created_at'],
             'spec': {name: row[name] for name in SPEC}} for row in rows])


def downgrade() -> None:
    op.drop_index(op.f('ix_releases_status'), table_name='releases')
    op.drop_index(op.f('ix_releases_group'), table_name='releases')
    op.drop_index(op.f('ix_releases_service_id'), table_name='releases')
    op.drop_table('releases')
    op.drop_index(op.f('ix_service_revisions_service_id'), table_name='service_revisions')
    op.drop_table('service_revisions')
    with op.batch_alter_table('container_instances') as batch_op:
        for name in ('memory_bytes', 'logs_container_id', 'logs_read_at', 'error_lines', 'log_lines'):
            batch_op.drop_column(name)
    with op.batch_alter_table('services') as batch_op:
        for name in ('error_pattern', 'min_memory', 'min_cpus', 'idc', 'pool', 'cluster'):
            batch_op.drop_column(name)
