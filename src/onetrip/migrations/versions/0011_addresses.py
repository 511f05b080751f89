"""org: the province of a region and the postal code of a hospital, for full addresses

Revision ID: 0011_addresses
Revises: 0010_exams
Create Date: 2026-11-22 10:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_addresses'
down_revision: str | None = '0010_exams'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('region', schema=None) as batch_op:
        batch_op.add_column(sa.Column('province', sa.String(length=40), nullable=False, server_default=''))
    with op.batch_alter_table('region', schema=None) as batch_op:
        batch_op.alter_column('province', server_default=None)
    with op.batch_alter_table('hospital', schema=None) as batch_op:
        batch_op.add_column(sa.Column('postal_code', sa.String(length=6), nullable=False, server_default=''))
    with op.batch_alter_table('hospital', schema=None) as batch_op:
        batch_op.alter_column('postal_code', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('hospital', schema=None) as batch_op:
        batch_op.drop_column('postal_code')
    with op.batch_alter_table('region', schema=None) as batch_op:
        batch_op.drop_column('province')
