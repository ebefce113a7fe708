"""Handlers over a state-database store: its blocking calls run in a thread with the store's own errors
answered as identity errors (404, 409, 400 ...), and ids of the store's form (32 hex) checked first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request

from clearsight.auth.errors import AuthError, NotFound


async def in_thread(fn: Callable[..., Any], *args: Any, errors: Mapping[type[Exception], type[AuthError]]) -> Any:
    """``fn(*args)`` off the event loop; an exception of a type in ``errors`` becomes that error, its message kept."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args))
    except tuple(errors) as e:
        answer = next(err for kind, err in errors.items() if isinstance(e, kind))
        raise answer(str(e)) from None


def hex_id(request: Request, what: str) -> str:
    """The ``{id}`` path parameter, a 32-character lower-case hex id; anything else is "``what`` not found"."""
    raw = str(request.path_params["id"])
    if len(raw) != 32 or not all(ch in "0123456789abcdef" for ch in raw):
        raise NotFound(f"{what} {raw[:40]!r} not found")
    return raw
