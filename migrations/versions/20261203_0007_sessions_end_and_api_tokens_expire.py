"""sessions can be ended (users.session_version) and API tokens expire (api_tokens.expires_at)

Tokens that exist at upgrade time get the default lifetime (90 days) from the upgrade, so
none lapses without warning.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:30:00
"""
from datetime import UTC, datetime, timedelta

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

EXISTING_TOKEN_LIFETIME = timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0',
                                      nullable=False))
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
    tokens = sa.table('api_tokens', sa.column('expires_at', sa.DateTime()),
                      sa.column('revoked_at', sa.DateTime()))
    expires = datetime.now(UTC).replace(tzinfo=None) + EXISTING_TOKEN_LIFETIME
    op.execute(tokens.update().where(tokens.c.revoked_at.is_(None)).values(expires_at=expires))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('session_version')
