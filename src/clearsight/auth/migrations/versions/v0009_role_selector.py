"""Roles narrowed by label matchers (auth/label_scope.py): roles.selector.

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("roles") as batch:
        batch.add_column(sa.Column("selector", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("roles") as batch:
        batch.drop_column("selector")
