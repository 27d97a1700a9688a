"""flakiness_results.skipped: how many executions in the window were skipped

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 07:00:00

The report then says `2/2 ran` and `30 skipped` instead of `2/3` and `0/30 · 0.0%`. Results computed
before this migration keep NULL (not known) until their next analysis.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('flakiness_results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skipped', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('flakiness_results', schema=None) as batch_op:
        batch_op.drop_column('skipped')
