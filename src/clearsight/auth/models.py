"""The identity state as SQLAlchemy 2 tables (schema changes go through migrations/versions)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_login_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Membership(Base):
    __tablename__ = "memberships"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), nullable=False)


class Role(Base):
    """A custom role of one organisation (built-in roles live in permissions.py)."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # label matchers narrowing what holders see, e.g. {team="payments"} ("" = everything: auth/label_scope.py)
    selector: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")


class RolePermission(Base):
    __tablename__ = "role_permissions"
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(String(64), primary_key=True)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)  # sha256 hex of the key
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)  # the first characters, for lists
    role: Mapped[str] = mapped_column(String(64), nullable=False)
    allowed_cidrs: Mapped[str] = mapped_column(Text, nullable=False, default="")  # comma-separated; "" = any
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expires_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RefreshFamily(Base):
    """One sign-in: the chain of refresh tokens rotated from it (auth/sessions.py); revoked as a whole."""

    __tablename__ = "refresh_families"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RefreshToken(Base):
    """A refresh token (its sha256); ``used_ms`` is set when it is rotated (a later use is a reuse)."""

    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(ForeignKey("refresh_families.id", ondelete="CASCADE"), nullable=False,
                                           index=True)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expires_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    used_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ServerSecret(Base):
    """A secret the server makes once and keeps (the session JWT signing key)."""

    __tablename__ = "server_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AuditEntry(Base):
    """One audited action; ``hash`` = sha256(prev_hash + canonical row) chains the log (auth/audit.py)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    ts_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    org: Mapped[str] = mapped_column(String(128), nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(String(256), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    source_ip: Mapped[str] = mapped_column(String(64), nullable=False)
    user_agent: Mapped[str] = mapped_column(String(256), nullable=False)
    trace_id: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditHead(Base):
    """The newest entry of the audit chain (one row, id 1): appends lock it, so they are serialised."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class MfaTotp(Base):
    """A user's TOTP secret (base32; the server needs it to check codes) and the last time step used."""

    __tablename__ = "mfa_totp"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64), nullable=False)
    confirmed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    last_step: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class MfaRecoveryCode(Base):
    """A single-use recovery code (sha256 of 80 random bits)."""

    __tablename__ = "mfa_recovery_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    used_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class OrgPolicy(Base):
    """Per-organisation security settings: MFA required for its members; the IP allowlist of all its
    credentials (comma-separated CIDRs, "" = any address: auth/org_networks.py)."""

    __tablename__ = "org_policies"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    mfa_required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    allowed_cidrs: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")


class SigningSecret(Base):
    """An organisation's HMAC secret for signed ingestion (auth/signing.py); kept as is (HMAC needs it)."""

    __tablename__ = "signing_secrets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    secret: Mapped[str] = mapped_column(String(128), nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class IdempotencyKey(Base):
    """The answer to an ingest request with ``x-idempotency-key`` (auth/idempotency.py)."""

    __tablename__ = "idempotency_keys"
    org: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    content_type: Mapped[str] = mapped_column(String(128), nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class UsageDaily(Base):
    """Usage of one organisation on one UTC day, by kind (auth/usage.py)."""

    __tablename__ = "usage_daily"
    org: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
