"""build cache as build cache: intermediate step images, cache use

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Images recorded before this keep showing: which of them were only a step's result
    # cannot be told apart from a build's untagged result.
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('intermediate', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('build_cache', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('usage_count', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('build_cache', schema=None) as batch_op:
        batch_op.drop_column('usage_count')
        batch_op.drop_column('last_used_at')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_column('intermediate')
