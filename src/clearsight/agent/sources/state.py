"""A small JSON document on disk (a journal cursor, file offsets), replaced atomically (temp file +
fsync + rename) so a crash leaves the old or the new one, never half of either.

The document also carries the names of the requests staged in the spool with that position
(``_staged``, see agent/buffer.py): saving the position and naming what was read up to it is one
atomic step, so a restart knows which staged requests to send."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("clearsight.agent.state")


class StateFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: nothing persisted (positions live in memory only)
        self.staged: list[str] = []  # the staged request names saved with the document last loaded

    def load(self) -> Any:
        """The stored document, or None when there is none (first start) or it cannot be read."""
        if self.path is None:
            return None
        try:
            doc = json.loads(self.path.read_text())
            if isinstance(doc, dict):
                staged = doc.pop("_staged", [])
                self.staged = [str(x) for x in staged] if isinstance(staged, list) else []
            return doc
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("cannot read %s (%s): starting without it", self.path, e)
            return None

    def save(self, doc: dict[str, Any], staged: Sequence[str] = ()) -> None:
        if self.path is None:
            return
        doc = {**doc, "_staged": list(staged)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
