"""applications belong to projects (existing ones go to the project "default"), and projects
have quotas of CPU, memory and replicas

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:50:00
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

DEFAULT_PROJECT = "default"  # berth.workloads.access.DEFAULT_PROJECT


def upgrade() -> None:
    with op.batch_alter_table('projects') as batch_op:
        batch_op.add_column(sa.Column('quota_cpus', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('quota_memory', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('quota_replicas', sa.Integer(), nullable=True))
    with op.batch_alter_table('applications') as batch_op:
        batch_op.add_column(sa.Column('project_id', sa.Integer(), nullable=True))
    connection = op.get_bind()
    if connection.execute(sa.text("SELECT count(*) FROM applications")).scalar():
        project_id = connection.execute(sa.text("SELECT id FROM projects WHERE name = :name"),
                                        {"name": DEFAULT_PROJECT}).scalar()
        if project_id is None:
            connection.execute(sa.text(
                "INSERT INTO projects (name, public, created_at) VALUES (:name, :public, :now)"),
                {"name": DEFAULT_PROJECT, "public": False,
                 "now": datetime.now(timezone.utc).replace(tzinfo=None)})
            project_id = connection.execute(sa.text("SELECT id FROM projects WHERE name = :name"),
                                            {"name": DEFAULT_PROJECT}).scalar()
        connection.execute(sa.text("UPDATE applications SET project_id = :id"), {"id": project_id})
    with op.batch_alter_table('applications') as batch_op:
        batch_op.alter_column('project_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f('ix_applications_project_id'), ['project_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_applications_project_id_projects'), 'projects',
                                    ['project_id'], ['id'], ondelete='RESTRICT')


def downgrade() -> None:
    with op.batch_alter_table('applications') as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_applications_project_id_projects'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_applications_project_id'))
        batch_op.drop_column('project_id')
    with op.batch_alter_table('projects') as batch_op:
        batch_op.drop_column('quota_replicas')
        batch_op.drop_column('quota_memory')
        batch_op.drop_column('quota_cpus')
