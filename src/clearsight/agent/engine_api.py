"""A small client of the Docker Engine API over a unix socket (Docker, or Podman's ``system service``).

Only GETs returning JSON; one kept-alive connection (re-opened once when the daemon closed it).
Errors are ``EngineError`` with the path and the daemon's message.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any


class EngineError(Exception):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.socket_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class EngineClient:
    def __init__(self, socket_path: str, timeout: float = 10.0, api_version: str = "v1.41") -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.prefix = f"/{api_version}" if api_version else ""
        self._conn: _UnixConnection | None = None

    def get(self, path: str) -> Any:
        """GET ``path`` (e.g. ``/containers/json?all=true``) and return the decoded JSON."""
        for attempt in (0, 1):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = _UnixConnection(self.socket_path, self.timeout)
            try:
                self._conn.request("GET", self.prefix + path, headers={"Host": "localhost"})
                r = self._conn.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if reused and attempt == 0:
                    continue  # the daemon closed an idle connection
                raise EngineError(f"{self.socket_path}: GET {path}: {type(e).__name__}: {e}") from None
            if r.status != 200:
                raise EngineError(f"{self.socket_path}: GET {path}: HTTP {r.status}: "
                                  f"{body[:300].decode('utf-8', 'replace').strip()}")
            try:
                return json.loads(body)
            except ValueError as e:
                raise EngineError(f"{self.socket_path}: GET {path}: not JSON: {e}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
