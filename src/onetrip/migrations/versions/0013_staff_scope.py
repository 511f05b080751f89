"""identity: department of a staff account or token, practitioner of a doctor's account

Revision ID: 0013_staff_scope
Revises: 0012_exams_round2
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_staff_scope'
down_revision: str | None = '0012_exams_round2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referenced table): nullable references added in place.
_COLUMNS = [('staff', 'department_id', 'department'),
            ('staff', 'practitioner_id', 'practitioner'),
            ('api_token', 'department_id', 'department')]


def upgrade() -> None:
    # SQLite cannot add a constraint to an existing table, and batch mode would rebuild
    # staff, which sign-in sessions point at; it does accept a REFERENCES clause on ADD
    # COLUMN when the column defaults to NULL.
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, column, target in _COLUMNS:
        if sqlite:
            op.execute(f'ALTER TABLE {table} ADD COLUMN {column} INTEGER '
                       f'REFERENCES {target} (id)')
        else:
            op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
            op.create_foreign_key(op.f(f'fk_{table}_{column}_{target}'), table, target,
                                  [column], ['id'])
    # One staff account per practitioner.
    op.create_index(op.f('ix_staff_practitioner_id'), 'staff', ['practitioner_id'],
                    unique=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_staff_practitioner_id'), table_name='staff')
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, column, target in reversed(_COLUMNS):
        if not sqlite:
            op.drop_constraint(op.f(f'fk_{table}_{column}_{target}'), table,
                               type_='foreignkey')
        op.drop_column(table, column)
