"""The notification log: what each (group, receiver, integration) was last told, for deduplication.

An entry holds the fingerprints that were firing and resolved at the last successful delivery and
its time. It is saved to the data dir (``save``) so a restart does not re-send everything; entries
older than ``retention`` are dropped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger("clearsight.notify.nflog")


@dataclass(frozen=True)
class Entry:
    firing: frozenset[str]
    resolved: frozenset[str]
    timestamp: float


class NotificationLog:
    def __init__(self, path: Path | None = None, retention: float = 120 * 3600.0) -> None:
        self._path = path
        self._retention = retention
        self._entries: dict[str, Entry] = {}
        self.dirty = False
        if path is not None:
            try:
                raw = orjson.loads(path.read_bytes())
                self._entries = {k: Entry(frozenset(v["firing"]), frozenset(v["resolved"]), float(v["ts"]))
                                 for k, v in raw.get("entries", {}).items()}
            except FileNotFoundError:
                pass
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                log.error("cannot read notification log %s: %s; starting empty", path, e)

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def log(self, key: str, firing: frozenset[str], resolved: frozenset[str], now: float) -> None:
        self._entries[key] = Entry(firing, resolved, now)
        self.dirty = True

    def forget_firing(self, key_prefix: str, fingerprints: set[str]) -> None:
        """Drops ``fingerprints`` from the firing sets of the entries of one group (they were silenced)."""
        for key, e in list(self._entries.items()):
            if key.startswith(key_prefix) and e.firing & fingerprints:
                self._entries[key] = Entry(e.firing - fingerprints, e.resolved, e.timestamp)
                self.dirty = True

    def gc(self, now: float) -> None:
        old = [k for k, e in self._entries.items() if e.timestamp + self._retention < now]
        for k in old:
            del self._entries[k]
        self.dirty |= bool(old)

    def save(self) -> None:
        if self._path is None or not self.dirty:
            return
        data = {"version": 1, "entries": {k: {"firing": sorted(e.firing), "resolved": sorted(e.resolved),
                                              "ts": e.timestamp} for k, e in self._entries.items()}}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(data))
        os.replace(tmp, self._path)
        self.dirty = False
