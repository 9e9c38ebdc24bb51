"""pods (an infra container's shared namespaces) and label-selector services (a VIP)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pods',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('infra_id', sa.String(length=64), nullable=False),
    sa.Column('hostname', sa.String(length=64), nullable=False),
    sa.Column('shared', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('infra_id')
    )
    with op.batch_alter_table('pods', schema=None) as batch_op:
        batch_op.create_index('ix_pods_project_name', ['project_id', 'name'], unique=True)
    op.create_table('services',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('selector', sa.Text(), nullable=False),
    sa.Column('ports', sa.JSON(), nullable=False),
    sa.Column('vip', sa.String(length=64), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('vip')
    )
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.create_index('ix_services_project_name', ['project_id', 'name'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_index('ix_services_project_name')
    op.drop_table('services')
    with op.batch_alter_table('pods', schema=None) as batch_op:
        batch_op.drop_index('ix_pods_project_name')
    op.drop_table('pods')
