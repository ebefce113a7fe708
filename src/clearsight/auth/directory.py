"""Organisations, users, memberships and roles in the state database, and password login.

Every method opens its own short transaction; results are plain dataclasses (no ORM objects leave).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from clearsight.auth.errors import Conflict, Forbidden, InvalidInput, LockedOut, NotFound, Unauthenticated
from clearsight.auth.label_scope import parse_selector
from clearsight.auth.models import Membership, Organisation, Role, RolePermission, User
from clearsight.auth.passwords import (
    PasswordPolicyError,
    burn_time,
    check_policy,
    hash_password,
    verify_password,
)
from clearsight.auth.permissions import BUILTIN_ROLES, unknown_permissions
from clearsight.auth.state import StateDb
from clearsight.pipeline.tenant import tenant_error

LOCKOUT_AFTER = 5  # failed logins in a row before the account is locked
LOCKOUT_BASE_S = 1.0  # first lock; doubles with every further failure
LOCKOUT_MAX_S = 900.0

_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")
_ROLE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class OrgView:
    id: int
    name: str
    created_ms: int


@dataclass(frozen=True)
class MemberView:
    id: int
    username: str
    role: str
    disabled: bool
    created_ms: int
    last_login_ms: int | None


@dataclass(frozen=True)
class RoleView:
    name: str
    permissions: list[str]
    builtin: bool
    selector: str = ""  # label matchers narrowing what holders see ("" = all: auth/label_scope.py)


@dataclass(frozen=True)
class LoginResult:
    user_id: int
    username: str
    orgs: dict[str, str]  # organisation -> role


def validate_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise InvalidInput("username must be 1 to 128 characters from A-Z a-z 0-9 . _ @ + -")
    return username


def validate_org_name(name: str) -> str:
    err = tenant_error(name)
    if err is not None:
        raise InvalidInput(f"invalid organisation name: {err}")
    return name


def lock_duration_s(failures: int) -> float:
    """How long an account stays locked after ``failures`` failed logins in a row (0 below the threshold)."""
    if failures < LOCKOUT_AFTER:
        return 0.0
    return min(LOCKOUT_MAX_S, LOCKOUT_BASE_S * 2 ** (failures - LOCKOUT_AFTER))


class Directory:
    def __init__(self, db: StateDb) -> None:
        self.db = db

    # -- organisations
    def _org(self, s: OrmSession, name: str) -> Organisation:
        org = s.scalar(select(Organisation).where(Organisation.name == name))
        if org is None:
            raise NotFound(f"organisation {name!r} not found")
        return org

    def count_orgs(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(Organisation)) or 0)

    def create_org(self, name: str) -> OrgView:
        validate_org_name(name)
        try:
            with self.db.session() as s, s.begin():
                org = Organisation(name=name, created_ms=now_ms())
                s.add(org)
                s.flush()
                return OrgView(org.id, org.name, org.created_ms)
        except IntegrityError:
            raise Conflict(f"organisation {name!r} already exists") from None

    def list_orgs(self) -> list[OrgView]:
        with self.db.session() as s:
            return [OrgView(o.id, o.name, o.created_ms) for o in s.scalars(select(Organisation).order_by(Organisation.name))]

    def get_org(self, name: str) -> OrgView:
        with self.db.session() as s:
            o = self._org(s, name)
            return OrgView(o.id, o.name, o.created_ms)

    def delete_org(self, name: str) -> None:
        with self.db.session() as s, s.begin():
            s.delete(self._org(s, name))

    # -- roles
    def role_permissions(self, org: str, role: str) -> frozenset[str] | None:
        """The permissions of ``role`` in ``org`` (built-in or custom), None when there is no such role."""
        builtin = BUILTIN_ROLES.get(role)
        if builtin is not None:
            return builtin
        with self.db.session() as s:
            return self._custom_role_permissions(s, org, role)

    def _custom_role_permissions(self, s: OrmSession, org: str, role: str) -> frozenset[str] | None:
        row = s.scalar(select(Role).join(Organisation, Role.org_id == Organisation.id)
                       .where(Organisation.name == org, Role.name == role))
        if row is None:
            return None
        return frozenset(s.scalars(select(RolePermission.permission).where(RolePermission.role_id == row.id)))

    def role_selector(self, org: str, role: str) -> str:
        """The label selector narrowing ``role`` in ``org`` ("" for built-in and unnarrowed roles)."""
        if role in BUILTIN_ROLES:
            return ""
        with self.db.session() as s:
            sel = s.scalar(select(Role.selector).join(Organisation, Role.org_id == Organisation.id)
                           .where(Organisation.name == org, Role.name == role))
        return sel or ""

    def create_role(self, org: str, name: str, permissions: list[str], selector: str = "") -> RoleView:
        if selector:
            selector = parse_selector(selector)[0]
        if not _ROLE_NAME.match(name):
            raise InvalidInput("role name must be 1 to 64 characters from a-z 0-9 _ -, starting with a letter or digit")
        if name in BUILTIN_ROLES:
            raise Conflict(f"role {name!r} is built in")
        bad = unknown_permissions(set(permissions))
        if bad:
            raise InvalidInput(f"unknown permissions: {', '.join(bad)}")
        try:
            with self.db.session() as s, s.begin():
                o = self._org(s, org)
                role = Role(org_id=o.id, name=name, created_ms=now_ms(), selector=selector)
                s.add(role)
                s.flush()
                for p in sorted(set(permissions)):
                    s.add(RolePermission(role_id=role.id, permission=p))
        except IntegrityError:
            raise Conflict(f"role {name!r} already exists in {org!r}") from None
        return RoleView(name, sorted(set(permissions)), False, selector)

    def list_roles(self, org: str) -> list[RoleView]:
        out = [RoleView(n, sorted(p), True) for n, p in BUILTIN_ROLES.items()]
        with self.db.session() as s:
            o = self._org(s, org)
            for role in s.scalars(select(Role).where(Role.org_id == o.id).order_by(Role.name)):
                perms = s.scalars(select(RolePermission.permission).where(RolePermission.role_id == role.id))
                out.append(RoleView(role.name, sorted(perms), False, role.selector))
        return out

    def delete_role(self, org: str, name: str) -> None:
        if name in BUILTIN_ROLES:
            raise InvalidInput(f"role {name!r} is built in and cannot be deleted")
        with self.db.session() as s, s.begin():
            o = self._org(s, org)
            role = s.scalar(select(Role).where(Role.org_id == o.id, Role.name == name))
            if role is None:
                raise NotFound(f"role {name!r} not found")
            in_use = s.scalar(select(func.count()).select_from(Membership)
                              .where(Membership.org_id == o.id, Membership.role == name))
            if in_use:
                raise Conflict(f"role {name!r} is held by {in_use} member(s)")
            s.delete(role)

    def _require_role(self, s: OrmSession, org: str, role: str) -> None:
        if role not in BUILTIN_ROLES and self._custom_role_permissions(s, org, role) is None:
            raise InvalidInput(f"unknown role {role!r} in organisation {org!r}")

    # -- users and memberships
    def create_user(self, username: str, password: str, org: str, role: str) -> MemberView:
        validate_username(username)
        try:
            check_policy(password, username)
        except PasswordPolicyError as e:
            raise InvalidInput(str(e)) from None
        hashed = hash_password(password)
        try:
            with self.db.session() as s, s.begin():
                o = self._org(s, org)
                self._require_role(s, org, role)
                user = User(username=username, password_hash=hashed, disabled=False, failed_logins=0,
                            locked_until_ms=0, created_ms=now_ms())
                s.add(user)
                s.flush()
                s.add(Membership(user_id=user.id, org_id=o.id, role=role))
                return MemberView(user.id, username, role, False, user.created_ms, None)
        except IntegrityError:
            raise Conflict(f"user {username!r} already exists") from None

    def sso_user(self, username: str, marker: str, org: str, role: str) -> LoginResult:
        """The single sign-on user ``username`` bound to ``marker`` (auth/oidc.py), made on first use,
        with ``role`` in ``org``. Forbidden when the name belongs to a local user or another subject;
        Unauthenticated when the user is disabled."""
        validate_username(username)
        t = now_ms()
        with self.db.session() as s, s.begin():
            o = self._org(s, org)
            self._require_role(s, org, role)
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                user = User(username=username, password_hash=marker, disabled=False, failed_logins=0,
                            locked_until_ms=0, created_ms=t)
                s.add(user)
                s.flush()
            elif user.password_hash != marker:
                raise Forbidden(f"user name {username!r} belongs to another account")
            if user.disabled:
                raise Unauthenticated("this user is disabled")
            m = s.get(Membership, (user.id, o.id))
            if m is None:
                s.add(Membership(user_id=user.id, org_id=o.id, role=role))
            else:
                m.role = role
            user.last_login_ms = t
            uid = user.id
        return LoginResult(uid, username, self.memberships(uid))

    def set_membership(self, username: str, org: str, role: str) -> MemberView:
        with self.db.session() as s, s.begin():
            o = self._org(s, org)
            self._require_role(s, org, role)
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound(f"user {username!r} not found")
            m = s.get(Membership, (user.id, o.id))
            if m is None:
                s.add(Membership(user_id=user.id, org_id=o.id, role=role))
            else:
                m.role = role
            return MemberView(user.id, user.username, role, user.disabled, user.created_ms, user.last_login_ms)

    def list_members(self, org: str) -> list[MemberView]:
        with self.db.session() as s:
            o = self._org(s, org)
            rows = s.execute(select(User, Membership.role).join(Membership, Membership.user_id == User.id)
                             .where(Membership.org_id == o.id).order_by(User.username))
            return [MemberView(u.id, u.username, r, u.disabled, u.created_ms, u.last_login_ms) for u, r in rows]

    def member(self, org: str, user_id: int) -> MemberView:
        """A member of ``org`` by id; NotFound for ids of users outside ``org`` (no leak of other orgs)."""
        for m in self.list_members(org):
            if m.id == user_id:
                return m
        raise NotFound(f"user {user_id} not found")

    def remove_member(self, org: str, user_id: int) -> None:
        """Removes the user from ``org``; a user left in no organisation is deleted."""
        with self.db.session() as s, s.begin():
            o = self._org(s, org)
            m = s.get(Membership, (user_id, o.id))
            if m is None:
                raise NotFound(f"user {user_id} not found")
            s.delete(m)
            s.flush()
            left = s.scalar(select(func.count()).select_from(Membership).where(Membership.user_id == user_id))
            if not left:
                s.execute(delete(User).where(User.id == user_id))

    def user_id(self, username: str) -> int:
        with self.db.session() as s:
            uid = s.scalar(select(User.id).where(User.username == username))
        if uid is None:
            raise NotFound(f"user {username!r} not found")
        return int(uid)

    def disable_user(self, username: str, disabled: bool = True) -> None:
        with self.db.session() as s, s.begin():
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound(f"user {username!r} not found")
            user.disabled = disabled

    def set_password(self, username: str, password: str) -> None:
        try:
            check_policy(password, username)
        except PasswordPolicyError as e:
            raise InvalidInput(str(e)) from None
        hashed = hash_password(password)
        with self.db.session() as s, s.begin():
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound(f"user {username!r} not found")
            user.password_hash = hashed

    def set_password_hash(self, username: str, stored_hash: str) -> None:
        """Imports a hash made elsewhere (bcrypt ``$2b$...`` or Argon2 ``$argon2id$...``)."""
        with self.db.session() as s, s.begin():
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound(f"user {username!r} not found")
            user.password_hash = stored_hash

    def memberships(self, user_id: int) -> dict[str, str]:
        with self.db.session() as s:
            rows = s.execute(select(Organisation.name, Membership.role)
                             .join(Membership, Membership.org_id == Organisation.id)
                             .where(Membership.user_id == user_id).order_by(Organisation.name))
            return {name: role for name, role in rows}

    def login(self, username: str, password: str, now: int | None = None) -> LoginResult:
        """Checks a password. Raises Unauthenticated (same message for unknown users and wrong
        passwords) or LockedOut while the account is locked (the password is not even checked)."""
        t = now_ms() if now is None else now
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.username == username))
            if user is None or user.disabled:
                burn_time(password)
                raise Unauthenticated("invalid username or password")
            if user.locked_until_ms > t:
                raise LockedOut("too many failed logins: try again later", (user.locked_until_ms - t) / 1000)
            ok, new_hash = verify_password(user.password_hash, password)
        with self.db.session() as s, s.begin():
            row = s.get(User, user.id)
            if row is None:
                raise Unauthenticated("invalid username or password")
            if not ok:
                row.failed_logins += 1
                lock = lock_duration_s(row.failed_logins)
                if lock:
                    row.locked_until_ms = t + int(lock * 1000)
                raise_after = True
            else:
                row.failed_logins = 0
                row.locked_until_ms = 0
                row.last_login_ms = t
                if new_hash is not None:
                    row.password_hash = new_hash
                raise_after = False
        if raise_after:
            raise Unauthenticated("invalid username or password")
        return LoginResult(user.id, user.username, self.memberships(user.id))
