"""notify: hospital of a message, inbox read marks, resends, WeChat bindings

Revision ID: 0009_notify_channels
Revises: 0008_notify
Create Date: 2026-11-22 08:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import onetrip.db

revision: str = '0009_notify_channels'
down_revision: str | None = '0008_notify'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('wechat_binding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('created_at', onetrip.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_wechat_binding_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_binding')),
    sa.UniqueConstraint('patient_id', name=op.f('uq_wechat_binding_patient_id'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hospital_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('read_at', onetrip.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resends', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.alter_column('resends', server_default=None)
        batch_op.create_index(batch_op.f('ix_notification_hospital_id'), ['hospital_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_notification_hospital_id_hospital'), 'hospital', ['hospital_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_notification_hospital_id_hospital'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_notification_hospital_id'))
        batch_op.drop_column('resends')
        batch_op.drop_column('read_at')
        batch_op.drop_column('hospital_id')
    op.drop_table('wechat_binding')
