"""Write requests in flight, counted for the query threads (query/write_priority.py): a ``POST``
to a write path counts once its body has been received (a slow upload holds nothing back) until
its response has been sent, or the request failed."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearsight.query.write_priority import WritePriority

# Prometheus remote-write and OTLP/HTTP metrics (both listeners).
WRITE_PATHS = frozenset({"/api/v1/write", "/api/v1/otlp/v1/metrics", "/v1/metrics"})


class WritesFirstMiddleware:
    def __init__(self, app: ASGIApp, priority: WritePriority, paths: frozenset[str] = WRITE_PATHS) -> None:
        self.app = app
        self.priority = priority
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        priority = self.priority
        counted = done = False

        async def received() -> Message:
            nonlocal counted
            message = await receive()
            if (not counted and not done and message["type"] == "http.request"
                    and not message.get("more_body", False)):
                counted = True
                priority.begin()
            return message

        async def sent(message: Message) -> None:
            nonlocal done
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False) and not done:
                done = True
                if counted:
                    priority.end()

        try:
            await self.app(scope, received, sent)
        finally:
            if counted and not done:
                priority.end()


__all__ = ["WRITE_PATHS", "WritesFirstMiddleware"]
