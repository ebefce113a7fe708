"""A complete HTTP answer decided without I/O: status, headers and body.

The guards of the HTTP listeners (admission, rate limits, authentication: ``api/admission.py``,
``auth/ratelimit.py``, ``auth/middleware.py``) decide their refusals as an ``Answer`` in a plain
method; their ASGI ``__call__`` sends it (``send_answer``) and the protocol's fast lane
(``api/fast_lane.py``) writes it to the socket itself, so each refusal is built in one place.
"""

from __future__ import annotations

from typing import NamedTuple

from starlette.types import Send

Headers = list[tuple[bytes, bytes]]


class Answer(NamedTuple):
    status: int
    headers: Headers
    body: bytes


async def send_answer(send: Send, answer: Answer) -> None:
    """``answer`` as the two ASGI messages of a response."""
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})
