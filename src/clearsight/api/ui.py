"""The web UI: serves the built single-page app (``web/`` built by ``make setup`` into
``clearsight/web_dist``).

- ``GET /`` answers the UI's ``index.html`` when the request accepts ``text/html`` (a browser);
  anything else (Elasticsearch clients probe ``GET /`` with ``application/json`` or no ``Accept``)
  goes to ``fallback`` (the Elasticsearch probe of ``api/logs_ingest.py``).
- ``/ui/assets/*`` are Vite's content-hashed files: ``Cache-Control: public, max-age=31536000,
  immutable``. ``index.html`` is ``no-cache`` (revalidated each load, so a new build is picked up).
- Any other ``/ui/...`` path is a client-side route: ``index.html`` (SPA fallback). ``/ui/`` is the
  only prefix the UI uses, so no API path is shadowed.

Nothing is loaded from elsewhere: the page's Content-Security-Policy allows only this origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

Handler = Callable[[Request], Awaitable[Response]]

DIST = Path(__file__).resolve().parent.parent / "web_dist"
IMMUTABLE = "public, max-age=31536000, immutable"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
PAGE_HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Clearsight</title></head>
<body><main><h1>Clearsight</h1><p>The web UI is not built in this installation. Build it with
<code>make setup</code> (it runs <code>npm ci</code> and <code>vite build</code> in <code>web/</code>), then reload.
The APIs work without it: see <a href="/docs">/docs</a>.</p></main></body></html>"""


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "").lower()


class UiFiles:
    def __init__(self, dist: Path = DIST) -> None:
        self.dist = dist.resolve()

    def index(self) -> Response:
        path = self.dist / "index.html"
        if not path.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-cache"})
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    def file(self, rel: str) -> Path | None:
        """The built file at ``rel`` inside the dist directory, or None (also for ``..`` escapes)."""
        if not rel or "\x00" in rel:
            return None
        path = (self.dist / rel).resolve()
        if not path.is_relative_to(self.dist) or not path.is_file():
            return None
        return path

    async def ui(self, request: Request) -> Response:
        rel = request.path_params.get("path", "")
        if rel in ("", "index.html"):
            return self.index()
        path = self.file(rel)
        if path is not None:
            hashed = rel.startswith("assets/")
            return FileResponse(path, headers={"Cache-Control": IMMUTABLE if hashed else "no-cache",
                                               "X-Content-Type-Options": "nosniff"})
        if rel.startswith("assets/") or "." in rel.rsplit("/", 1)[-1]:
            return Response("not found\n", status_code=404, media_type="text/plain",
                            headers={"Cache-Control": "no-cache"})
        return self.index()  # a client-side route


def make_ui_routes(fallback: Handler, dist: Path = DIST) -> list[BaseRoute]:
    """The UI's routes; ``fallback`` answers ``GET/HEAD /`` for non-browser clients."""
    files = UiFiles(dist)

    async def root(request: Request) -> Response:
        if wants_html(request):
            return files.index()
        return await fallback(request)

    async def ui_bare(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=308)

    return [
        Route("/", root, methods=["GET", "HEAD"], name="ui_root", include_in_schema=False),
        Route("/ui", ui_bare, methods=["GET", "HEAD"], name="ui_bare", include_in_schema=False),
        Route("/ui/{path:path}", files.ui, methods=["GET", "HEAD"], name="ui", include_in_schema=False),
    ]
