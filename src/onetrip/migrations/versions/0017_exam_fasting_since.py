"""exams: an order keeps since when the patient has eaten nothing, as staff recorded it

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


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild): exam bookings refer to the table.
    op.add_column('exam_order', sa.Column('fasting_since', onetrip.db.UTCDateTime(timezone=True),
                                          nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('exam_order') as batch:
        batch.drop_column('fasting_since')
