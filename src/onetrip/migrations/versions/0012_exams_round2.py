"""scheduling: penalty events other domains record; exams: the follow-up's outpatient session
and appointment

Revision ID: 0012_exams_round2
Revises: 0011_addresses
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import onetrip.db

revision: str = '0012_exams_round2'
down_revision: str | None = '0011_addresses'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('penalty_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('at', onetrip.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=24), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', onetrip.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('noshow', 'late_cancellation', 'same_day_refund')", name=op.f('ck_penalty_event_kind')),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], name=op.f('fk_penalty_event_hospital_id_hospital')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_penalty_event_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_penalty_event')),
    sa.UniqueConstraint('source', 'source_id', 'kind', name=op.f('uq_penalty_event_source_source_id_kind'))
    )
    op.create_index('ix_penalty_event_patient_hospital', 'penalty_event', ['patient_id', 'hospital_id'], unique=False)
    # Exam no-shows recorded before this table existed count from now on as well.
    op.execute(
        "INSERT INTO penalty_event (patient_id, hospital_id, kind, at, source, source_id, recorded_at) "
        "SELECT patient_id, hospital_id, 'noshow', noshow_at, 'exam', id, noshow_at "
        "FROM exam_booking WHERE status = 'noshow' AND noshow_at IS NOT NULL")
    # Plain ADD COLUMN (no table rebuild): exam orders are pointed at by their bookings, and
    # SQLite cannot drop a table others point at. SQLite takes the reference inline.
    for table, column, target in (('exam_order', 'followup_department_id', 'department'),
                                  ('exam_order', 'followup_practitioner_id', 'practitioner'),
                                  ('exam_booking', 'followup_appointment_id', 'appointment')):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE {table} ADD COLUMN {column} INTEGER '
                       f'CONSTRAINT fk_{table}_{column}_{target} REFERENCES {target} (id)')
        else:
            op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
            op.create_foreign_key(f'fk_{table}_{column}_{target}', table, target, [column], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('exam_booking', schema=None) as batch_op:
        batch_op.drop_column('followup_appointment_id')
    with op.batch_alter_table('exam_order', schema=None) as batch_op:
        batch_op.drop_column('followup_practitioner_id')
        batch_op.drop_column('followup_department_id')
    op.drop_index('ix_penalty_event_patient_hospital', table_name='penalty_event')
    op.drop_table('penalty_event')
