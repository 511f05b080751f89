"""exams: a thyroid scan's two weeks without iodine (``prep_days``) in the catalogues that
hospitals imported before the field existed

Revision ID: 0016_thyroid_prep_days
Revises: 0015_waitlist_closed
Create Date: 2026-12-06 12:30:00

Only rows of ``nm_thyroid`` that have no ``prep_days`` are given 14, the shipped value;
one an exam centre set itself is kept. Downgrading removes the field from every exam: the
earlier code refuses a catalogue with a field it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016_thyroid_prep_days'
down_revision: str | None = '0015_waitlist_closed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = sa.table('exam_type', sa.column('id', sa.Integer()), sa.column('code', sa.String()),
                  sa.column('spec', sa.JSON()))


def _specs(only: str | None) -> list[tuple[int, dict[str, object]]]:
    stmt = sa.select(_TABLE.c.id, _TABLE.c.spec)
    if only is not None:
        stmt = stmt.where(_TABLE.c.code == only)
    return [(row_id, json.loads(spec) if isinstance(spec, str) else dict(spec or {}))
            for row_id, spec in op.get_bind().execute(stmt)]


def _set(row_id: int, spec: dict[str, object]) -> None:
    op.get_bind().execute(sa.update(_TABLE).where(_TABLE.c.id == row_id).values(spec=spec))


def upgrade() -> None:
    for row_id, spec in _specs('nm_thyroid'):
        if 'prep_days' not in spec:
            _set(row_id, {**spec, 'prep_days': 14})


def downgrade() -> None:
    for row_id, spec in _specs(None):
        if 'prep_days' in spec:
            _set(row_id, {k: v for k, v in spec.items() if k != 'prep_days'})
