"""Per-organisation IP allowlists (auth/org_networks.py): org_policies.allowed_cidrs.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("org_policies") as batch:
        batch.add_column(sa.Column("allowed_cidrs", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("org_policies") as batch:
        batch.drop_column("allowed_cidrs")
