"""Where the registry and the health history keep their state between restarts.

``StateFile`` is the narrow interface (one JSON-able document, read at start, written now and then);
``JsonStateFile`` keeps it in a file in the data directory, replaced atomically (write a temporary
file, fsync, rename), so a crash leaves either the previous or the new document, never half of one.
The state database (SQLAlchemy) can implement the same two methods later.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol

import orjson

log = logging.getLogger("clearsight.resources")


class StateFile(Protocol):
    def load(self) -> Any:
        """The last saved document, or None when there is none (or it cannot be read)."""
        ...

    def save(self, doc: Any) -> None:
        ...


class JsonStateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Any:
        try:
            return orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as e:
            log.warning("ignoring unreadable state file %s: %s", self.path, e)
            return None

    def save(self, doc: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps(doc))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class MemoryStateFile:
    """A ``StateFile`` in memory (tests, and a server run without a data directory)."""

    def __init__(self) -> None:
        self.doc: Any = None

    def load(self) -> Any:
        return self.doc

    def save(self, doc: Any) -> None:
        self.doc = orjson.loads(orjson.dumps(doc))
