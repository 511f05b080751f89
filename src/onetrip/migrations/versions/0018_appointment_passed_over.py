"""scheduling: an appointment keeps when its patient was passed over (过号), and every
no-show counts at the visit's time

Revision ID: 0018_appointment_passed_over
Revises: 0017_exam_fasting_since
Create Date: 2026-12-06 21:00:00

A patient called who did not come in is passed over: back to booked, to check in again and
queue behind (BK-11); ``passed_over_at`` says so. No-shows were stamped with the time they
were marked; they now count at the visit's (BK-6): the rows marked before are moved to it
(appointments, exam bookings and the penalty events of exams), which the downgrade keeps.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import onetrip.db

revision: str = '0018_appointment_passed_over'
down_revision: str | None = '0017_exam_fasting_since'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild): appointments are referred to by other tables.
    op.add_column('appointment', sa.Column('passed_over_at',
                                           onetrip.db.UTCDateTime(timezone=True),
                                           nullable=True))
    op.execute("UPDATE appointment SET noshow_at = start_at "
               "WHERE status = 'noshow' AND noshow_at IS NOT NULL")
    op.execute("UPDATE exam_booking SET noshow_at = start_at "
               "WHERE status = 'noshow' AND noshow_at IS NOT NULL")
    op.execute("UPDATE penalty_event SET at = (SELECT b.start_at FROM exam_booking b "
               "WHERE b.id = penalty_event.source_id) "
               "WHERE source = 'exam' AND kind = 'noshow' AND EXISTS "
               "(SELECT 1 FROM exam_booking b WHERE b.id = penalty_event.source_id)")


def downgrade() -> None:
    # SQLite's own DROP COLUMN (3.35 and later): batch mode would copy the table.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE appointment DROP COLUMN passed_over_at')
    else:
        op.drop_column('appointment', 'passed_over_at')
