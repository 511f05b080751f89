"""audit: parallel hash chains, so audited transactions do not queue behind one lock

Revision ID: 0006_audit_chains
Revises: 0005_fairness
Create Date: 2026-11-22 07:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_audit_chains'
down_revision: str | None = '0005_fairness'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy): copying the table would drop its append-only triggers.
    op.add_column('audit_event', sa.Column('chain', sa.Integer(), server_default='0',
                                           nullable=False))
    op.create_index('ix_audit_event_chain_id', 'audit_event', ['chain', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_event_chain_id', table_name='audit_event')
    op.drop_column('audit_event', 'chain')
