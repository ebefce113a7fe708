"""Local HTTP fakes for receiver tests: a recording server, and PagerDuty's Events API v2 as documented."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[Request], tuple[int, bytes]]


@dataclass
class FakeServer:
    respond: Responder
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n))
                fake.requests.append(req)
                status, body = fake.respond(req)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


def statuses(*codes: int) -> Responder:
    """Answers with ``codes`` in order, then 200."""
    left = list(codes)

    def respond(req: Request) -> tuple[int, bytes]:
        return (left.pop(0) if left else 200), b"{}"

    return respond


def pagerduty(req: Request) -> tuple[int, bytes]:
    """PagerDuty Events API v2 (``POST /v2/enqueue``) validation, from its documentation."""
    errors: list[str] = []
    try:
        ev = req.json()
    except ValueError:
        return 400, b'{"status":"invalid event","message":"Event object is invalid","errors":["invalid JSON"]}'
    if req.path != "/v2/enqueue":
        return 404, b"{}"
    if not isinstance(ev.get("routing_key"), str) or len(ev["routing_key"]) != 32:
        errors.append("'routing_key' must be a 32 character string")
    action = ev.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    dedup = ev.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is required for acknowledge and resolve")
    if action == "trigger":
        p = ev.get("payload") or {}
        if not p.get("summary") or len(p["summary"]) > 1024:
            errors.append("'payload.summary' is required (at most 1024 characters)")
        if not p.get("source"):
            errors.append("'payload.source' is required")
        if p.get("severity") not in ("critical", "error", "warning", "info"):
            errors.append("'payload.severity' is invalid")
    if errors:
        return 400, json.dumps({"status": "invalid event", "message": "Event object is invalid",
                                "errors": errors}).encode()
    return 202, json.dumps({"status": "success", "message": "Event processed", "dedup_key": dedup or "x"}).encode()
