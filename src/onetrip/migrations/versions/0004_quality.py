"""quality: import records, key-monitored drugs, DDD values, privileges, review marks

Revision ID: 0004_quality
Revises: 0003_scheduling
Create Date: 2026-11-22 05:55:10.214148
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import onetrip.db

revision: str = '0004_quality'
down_revision: str | None = '0003_scheduling'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('quality_key_drug',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('generic_name', sa.String(length=100), nullable=False),
    sa.Column('catalogue', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_key_drug')),
    sa.UniqueConstraint('generic_name', name=op.f('uq_quality_key_drug_generic_name'))
    )
    op.create_table('quality_drug_ddd',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('drug_code', sa.String(length=64), nullable=False),
    sa.Column('generic_name', sa.String(length=100), nullable=False),
    sa.Column('ddd_g', sa.Float(), nullable=False),
    sa.Column('unit_g', sa.Float(), nullable=False),
    sa.CheckConstraint('ddd_g > 0', name=op.f('ck_quality_drug_ddd_ddd_positive')),
    sa.CheckConstraint('unit_g > 0', name=op.f('ck_quality_drug_ddd_unit_positive')),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], name=op.f('fk_quality_drug_ddd_hospital_id_hospital')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_drug_ddd')),
    sa.UniqueConstraint('hospital_id', 'drug_code', name=op.f('uq_quality_drug_ddd_hospital_id_drug_code'))
    )
    with op.batch_alter_table('quality_drug_ddd', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_drug_ddd_hospital_id'), ['hospital_id'], unique=False)

    op.create_table('quality_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('file', sa.String(length=300), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('source_name', sa.String(length=300), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('imported_by', sa.String(length=100), nullable=False),
    sa.Column('imported_at', onetrip.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind in ('prescriptions','charges')", name=op.f('ck_quality_import_kind')),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], name=op.f('fk_quality_import_hospital_id_hospital')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_import')),
    sa.UniqueConstraint('hospital_id', 'kind', 'period', name=op.f('uq_quality_import_hospital_id_kind_period'))
    )
    with op.batch_alter_table('quality_import', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_import_hospital_id'), ['hospital_id'], unique=False)

    op.create_table('quality_privilege',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('prescriber_code', sa.String(length=64), nullable=False),
    sa.Column('prescriber_name', sa.String(length=100), nullable=False),
    sa.Column('max_grade', sa.String(length=16), nullable=False),
    sa.CheckConstraint("max_grade in ('unrestricted','restricted','special')", name=op.f('ck_quality_privilege_max_grade')),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], name=op.f('fk_quality_privilege_hospital_id_hospital')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_privilege')),
    sa.UniqueConstraint('hospital_id', 'prescriber_code', name=op.f('uq_quality_privilege_hospital_id_prescriber_code'))
    )
    with op.batch_alter_table('quality_privilege', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_privilege_hospital_id'), ['hospital_id'], unique=False)

    op.create_table('quality_review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('drug_code', sa.String(length=64), nullable=False),
    sa.Column('prescription_id', sa.String(length=64), nullable=False),
    sa.Column('generic_name', sa.String(length=100), nullable=False),
    sa.Column('prescriber_code', sa.String(length=64), nullable=False),
    sa.Column('prescriber_name', sa.String(length=100), nullable=False),
    sa.Column('department_name', sa.String(length=100), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reviewer', sa.String(length=100), nullable=False),
    sa.Column('reviewed_at', onetrip.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("target in ('drug','prescription')", name=op.f('ck_quality_review_target')),
    sa.CheckConstraint("verdict in ('rational','irrational')", name=op.f('ck_quality_review_verdict')),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], name=op.f('fk_quality_review_hospital_id_hospital')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_review')),
    sa.UniqueConstraint('hospital_id', 'target', 'period', 'drug_code', 'prescription_id', name=op.f('uq_quality_review_mark'))
    )
    with op.batch_alter_table('quality_review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_review_hospital_id'), ['hospital_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quality_review_period'), ['period'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('quality_review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quality_review_period'))
        batch_op.drop_index(batch_op.f('ix_quality_review_hospital_id'))

    op.drop_table('quality_review')
    with op.batch_alter_table('quality_privilege', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quality_privilege_hospital_id'))

    op.drop_table('quality_privilege')
    with op.batch_alter_table('quality_import', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quality_import_hospital_id'))

    op.drop_table('quality_import')
    with op.batch_alter_table('quality_drug_ddd', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quality_drug_ddd_hospital_id'))

    op.drop_table('quality_drug_ddd')
    op.drop_table('quality_key_drug')
