"""scheduling: a waitlist entry ended by a stop-clinic is ``closed``, apart from ``cancelled``
(the patient left)

Revision ID: 0015_waitlist_closed
Revises: 0014_drawn_requests
Create Date: 2026-12-06 12:00:00

Entries cancelled before this revision stay ``cancelled``: which of them a stop-clinic
ended was not recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015_waitlist_closed'
down_revision: str | None = '0014_drawn_requests'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('waiting', 'offered', 'accepted', 'expired', 'cancelled')"
_NEW = "status IN ('waiting', 'offered', 'accepted', 'expired', 'cancelled', 'closed')"
_ACTIVE = "status IN ('waiting', 'offered')"


def _allow(condition: str) -> None:
    name = op.f('ck_waitlist_entry_status')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(name, 'waitlist_entry', type_='check')
        op.create_check_constraint(name, 'waitlist_entry', condition)
        return
    # SQLite cannot alter a constraint: batch mode copies the table into a new one (nothing
    # refers to it). Its partial index is dropped first and made again after the copy: the
    # copy would reflect its WHERE clause as text it cannot render.
    op.drop_index('uq_waitlist_active_patient_schedule', table_name='waitlist_entry')
    with op.batch_alter_table('waitlist_entry') as batch:
        batch.drop_constraint(name, type_='check')
        batch.create_check_constraint(name, sa.text(condition))
    op.create_index('uq_waitlist_active_patient_schedule', 'waitlist_entry',
                    ['patient_id', 'schedule_id'], unique=True, sqlite_where=sa.text(_ACTIVE))


def upgrade() -> None:
    _allow(_NEW)


def downgrade() -> None:
    op.execute("UPDATE waitlist_entry SET status = 'cancelled' WHERE status = 'closed'")
    _allow(_OLD)
