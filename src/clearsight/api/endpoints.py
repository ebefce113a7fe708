"""Route handlers of compiled modules, as plain Python functions.

Starlette's ``Route`` treats its endpoint as a request/response handler only when
``inspect.isfunction`` (or ``ismethod``) says so, and as a raw ASGI application otherwise. A
function of a module compiled with Cython (``native_python.txt``) is not a Python function by that
test, so the modules there hand out their handlers through ``endpoint``. This module must stay
interpreted (never listed in ``native_python.txt``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Awaitable[Response]]


def endpoint(handler: Handler) -> Handler:
    """``handler`` wrapped in a plain (interpreted) function of the same name."""

    async def call(request: Request) -> Response:
        return await handler(request)

    call.__name__ = call.__qualname__ = getattr(handler, "__name__", "endpoint")
    call.__doc__ = handler.__doc__
    return call


def endpoints(handlers: dict[str, Handler]) -> dict[str, Handler]:
    return {name: endpoint(h) for name, h in handlers.items()}
