"""Handing on a request body that a middleware already read (signed ingestion, label-scope rewrites)."""

from __future__ import annotations

from starlette.types import Message, Receive


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands on ``body`` as one message, then the client's own messages
    (``http.disconnect`` when it goes away)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
