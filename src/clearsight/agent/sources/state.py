"""A small JSON document on disk (a journal cursor, file offsets), replaced atomically (temp file +
fsync + rename) so a crash leaves the old or the new one, never half of either."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("clearsight.agent.state")


class StateFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: nothing persisted (positions live in memory only)

    def load(self) -> Any:
        """The stored document, or None when there is none (first start) or it cannot be read."""
        if self.path is None:
            return None
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("cannot read %s (%s): starting without it", self.path, e)
            return None

    def save(self, doc: Any) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
