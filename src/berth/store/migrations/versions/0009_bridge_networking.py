"""bridge networking: subnets on networks, endpoints (addresses), published ports

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subnet', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('gateway', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('ip_range', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('mtu', sa.Integer(), nullable=False,
                                      server_default='1500'))
        batch_op.add_column(sa.Column('builtin', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table('endpoints',
    sa.Column('owner_id', sa.String(length=64), nullable=False),
    sa.Column('network_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('ifname', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('owner_id', 'network_id')
    )
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.create_index('ix_endpoints_address', ['network_id', 'address'], unique=True)
        batch_op.create_index(batch_op.f('ix_endpoints_project_id'), ['project_id'],
                              unique=False)
    op.create_table('port_bindings',
    sa.Column('host_ip', sa.String(length=64), nullable=False),
    sa.Column('host_port', sa.Integer(), nullable=False),
    sa.Column('proto', sa.String(length=4), nullable=False),
    sa.Column('owner_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('container_port', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('host_ip', 'host_port', 'proto')
    )
    with op.batch_alter_table('port_bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_port_bindings_owner_id'), ['owner_id'],
                              unique=False)
    op.create_table('network_lock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute("INSERT INTO network_lock (id, serial) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table('network_lock')
    with op.batch_alter_table('port_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_port_bindings_owner_id'))
    op.drop_table('port_bindings')
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoints_project_id'))
        batch_op.drop_index('ix_endpoints_address')
    op.drop_table('endpoints')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_column('builtin')
        batch_op.drop_column('mtu')
        batch_op.drop_column('ip_range')
        batch_op.drop_column('gateway')
        batch_op.drop_column('subnet')
