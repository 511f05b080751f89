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
    # Plain ADD COLUMN with a default: SQLite's batch mode would rebuild these tables, and a
    # table that hospitals, departments and appointments point at cannot be dropped there.
    op.add_column('region', sa.Column('province', sa.String(length=40), nullable=False,
                                      server_default=''))
    op.add_column('hospital', sa.Column('postal_code', sa.String(length=6), nullable=False,
                                        server_default=''))


def downgrade() -> None:
    op.drop_column('hospital', 'postal_code')
    op.drop_column('region', 'province')
