"""Write requests in flight, counted for the query threads (query/write_priority.py): a ``POST``
to a write path counts from its headers (the application is called once they are parsed) until
its response has been sent, or the request failed. A body that arrives in several parts is not
counted from its first part until its last (a slow upload holds no query back); a small body (a
remote-write batch) arrives with its headers, so the query threads step aside before the handler
reads and decodes it, not after. A client that sends headers and then nothing holds the query
threads at most ``query.write_pause_max`` each (then they are exempt as long), as writes back to
back do."""

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
        counted = True
        done = False
        priority.begin()  # the headers are in

        async def received() -> Message:
            nonlocal counted
            message = await receive()
            if done or message["type"] != "http.request":
                return message
            if message.get("more_body", False):
                if counted:  # the body comes in parts: not counted while it uploads
                    counted = False
                    priority.end()
            elif not counted:
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
