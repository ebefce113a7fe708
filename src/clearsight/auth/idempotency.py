"""``x-idempotency-key`` on ingest endpoints: a retried request with the same key (per organisation)
within ``auth.idempotency_window`` (24h) is acknowledged with the first answer's status, content type
and body (``x-idempotent-replay: true``) and not written again.

Only successful (2xx) answers are remembered, in the state database (so a restart keeps them): a
failed request may be retried and written. A second request with a key whose first request is still
being handled answers **409** (retry later). A key is 1 to 128 printable ASCII characters (else
**400**). Bodies over 64 KiB are not stored: such an answer is replayed with its status and an empty
body. Keys older than the window are deleted as new ones are stored.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearsight.auth.errors import AuthError, Conflict, InvalidInput, Unauthenticated
from clearsight.auth.middleware import deny
from clearsight.auth.models import IdempotencyKey
from clearsight.auth.principal import principal_of_scope
from clearsight.auth.route_permissions import requirement
from clearsight.auth.signing import IDEMPOTENCY_HEADER, REPLAYED, REPLAYED_MESSAGE
from clearsight.auth.state import StateDb

MAX_KEY = 128
MAX_STORED_BODY = 64 * 1024
PURGE_EVERY = 500


@dataclass(frozen=True)
class Stored:
    status: int
    content_type: str
    body: bytes


class IdempotencyStore:
    def __init__(self, db: StateDb, window_ms: int) -> None:
        self.db = db
        self.window_ms = window_ms
        self._puts = 0

    def get(self, org: str, key: str, now_ms: int | None = None) -> Stored | None:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        with self.db.session() as s:
            row = s.get(IdempotencyKey, (org, key))
            if row is None or row.created_ms <= now - self.window_ms:
                return None
            return Stored(row.status, row.content_type, row.body)

    def put(self, org: str, key: str, answer: Stored, now_ms: int | None = None) -> None:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        self._puts += 1
        with self.db.session() as s, s.begin():
            if self._puts % PURGE_EVERY == 1:
                s.execute(delete(IdempotencyKey).where(IdempotencyKey.created_ms <= now - self.window_ms))
            row = s.get(IdempotencyKey, (org, key))
            if row is None:
                s.add(IdempotencyKey(org=org, key=key, status=answer.status, content_type=answer.content_type[:128],
                                     body=answer.body, created_ms=now))
            else:  # an expired key used again
                row.status, row.content_type, row.body, row.created_ms = (
                    answer.status, answer.content_type[:128], answer.body, now)

    def count(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(IdempotencyKey)) or 0)


def _valid_key(raw: bytes) -> str:
    if not 1 <= len(raw) <= MAX_KEY or not all(0x21 <= b <= 0x7E for b in raw):
        raise InvalidInput("x-idempotency-key must be 1 to 128 printable ASCII characters")
    return raw.decode("ascii")


class IdempotencyMiddleware:
    """After authentication (the key is per organisation) and signature checks."""

    def __init__(self, app: ASGIApp, store: IdempotencyStore) -> None:
        self.app = app
        self.store = store
        self._inflight: set[tuple[str, str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = None
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == IDEMPOTENCY_HEADER:
                    raw = value
                    break
        if raw is None or not requirement(scope["method"], scope["path"]).endswith(":write"):
            await self.app(scope, receive, send)
            return
        p = principal_of_scope(scope)
        org = p.org if p is not None else ""
        loop = asyncio.get_running_loop()
        try:
            key = _valid_key(raw)
            if (org, key) in self._inflight:
                raise Conflict("a request with this x-idempotency-key is being handled: retry later")
            stored = await loop.run_in_executor(None, self.store.get, org, key)
            if stored is None and scope.get(REPLAYED):
                raise Unauthenticated(REPLAYED_MESSAGE)
        except AuthError as e:
            await deny(send, e)
            return
        if stored is not None:
            await send({"type": "http.response.start", "status": stored.status,
                        "headers": [(b"content-type", stored.content_type.encode("latin-1")),
                                    (b"content-length", str(len(stored.body)).encode()),
                                    (b"x-idempotent-replay", b"true")]})
            await send({"type": "http.response.body", "body": stored.body})
            return
        status = 0
        ctype = b""
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, ctype, size
            if message["type"] == "http.response.start":
                status = message["status"]
                for n, v in message.get("headers", ()):
                    if n.lower() == b"content-type":
                        ctype = v
            elif message["type"] == "http.response.body" and size <= MAX_STORED_BODY:
                b = message.get("body", b"")
                chunks.append(b)
                size += len(b)
            await send(message)

        self._inflight.add((org, key))
        try:
            await self.app(scope, receive, capture)
            if 200 <= status < 300:
                body = b"".join(chunks) if size <= MAX_STORED_BODY else b""
                await loop.run_in_executor(None, self.store.put, org, key,
                                           Stored(status, ctype.decode("latin-1"), body))
        finally:
            self._inflight.discard((org, key))
