"""Recurring silence schedules per organisation (notify/schedule_store.py).

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "silence_schedules",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("org", sa.String(128), nullable=False),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("weekdays", sa.String(32), nullable=False),
        sa.Column("start_min", sa.Integer, nullable=False),
        sa.Column("end_min", sa.Integer, nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_silence_schedules_org", "silence_schedules", ["org"])


def downgrade() -> None:
    op.drop_index("ix_silence_schedules_org", "silence_schedules")
    op.drop_table("silence_schedules")
