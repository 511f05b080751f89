"""scheduling: an API booking's opening ticket carries its request and, once drawn, its answer

Revision ID: 0014_drawn_requests
Revises: 0013_staff_scope
Create Date: 2026-12-04 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014_drawn_requests'
down_revision: str | None = '0013_staff_scope'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild): the table is referenced by nothing.
    op.add_column('opening_ticket', sa.Column('command', sa.JSON(), nullable=True))
    op.add_column('opening_ticket', sa.Column('status_code', sa.Integer(), nullable=True))
    op.add_column('opening_ticket', sa.Column('answer', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('opening_ticket') as batch:
        batch.drop_column('answer')
        batch.drop_column('status_code')
        batch.drop_column('command')
