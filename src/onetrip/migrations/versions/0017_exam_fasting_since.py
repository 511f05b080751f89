"""exams: an order keeps since when the patient has eaten nothing, and when staff recorded it

Revision ID: 0017_exam_fasting_since
Revises: 0016_thyroid_prep_days
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import onetrip.db

revision: str = '0017_exam_fasting_since'
down_revision: str | None = '0016_thyroid_prep_days'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_COLUMNS = ('fasting_since', 'fasting_noted_at')


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild): exam bookings refer to the table.
    for name in _COLUMNS:
        op.add_column('exam_order', sa.Column(name, onetrip.db.UTCDateTime(timezone=True),
                                              nullable=True))


def downgrade() -> None:
    # SQLite's own DROP COLUMN (3.35 and later): batch mode would copy the table and drop
    # the old one, which exam bookings refer to.
    for name in reversed(_COLUMNS):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE exam_order DROP COLUMN {name}')
        else:
            op.drop_column('exam_order', name)
