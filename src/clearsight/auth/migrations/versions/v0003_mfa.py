"""TOTP MFA: secrets, recovery codes, and per-organisation policy (auth/totp.py).

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mfa_totp",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("confirmed", sa.Boolean, nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False))
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("used_ms", sa.BigInteger, nullable=True))
    op.create_index("ix_mfa_recovery_user", "mfa_recovery_codes", ["user_id"])
    op.create_table(
        "org_policies",
        sa.Column("org_id", sa.Integer, sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("mfa_required", sa.Boolean, nullable=False))


def downgrade() -> None:
    op.drop_table("org_policies")
    op.drop_index("ix_mfa_recovery_user", "mfa_recovery_codes")
    op.drop_table("mfa_recovery_codes")
    op.drop_table("mfa_totp")
