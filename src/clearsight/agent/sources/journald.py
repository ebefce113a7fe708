"""The journald source: ``journalctl -o json --show-cursor --after-cursor=<cursor>`` on every poll.

The cursor of the last record handed to the agent is persisted (``commit()``), so a restart, even
after SIGKILL, resumes right after it: no gap, no duplicate. Without a stored cursor the first poll
starts at the end of the journal (``read_from: end``) or at its beginning (``beginning``).
``directory`` reads journal files from a directory (``journalctl --directory``) instead of the
system journal; ``units`` limits to those systemd units.

Per record: the body is ``MESSAGE`` (a binary message, sent by journald as a byte array, is decoded
as UTF-8 with replacement), the time ``__REALTIME_TIMESTAMP``, ``PRIORITY`` 0-7 maps to the severity
(emerg 24 ... debug 5 as OTLP numbers, the keyword as text), and the attributes are ``unit``
(``_SYSTEMD_UNIT``), ``pid`` (``_PID``), ``hostname`` (``_HOSTNAME``), ``boot_id`` (``_BOOT_ID``),
``syslog_identifier`` (``SYSLOG_IDENTIFIER``) when present.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from clearsight.agent.logrecord import PRIORITY_OTLP, PRIORITY_TEXT, AttrValue, LogRecord
from clearsight.agent.sources.state import StateFile

log = logging.getLogger("clearsight.agent.journald")

_ATTRS = (("_SYSTEMD_UNIT", "unit"), ("_PID", "pid"), ("_HOSTNAME", "hostname"), ("_BOOT_ID", "boot_id"),
          ("SYSLOG_IDENTIFIER", "syslog_identifier"))
_CURSOR_PREFIX = "-- cursor: "


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list):  # a binary field: an array of byte values
        try:
            return bytes(v).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return ""
    return "" if v is None else str(v)


def entry_to_record(e: Mapping[str, Any]) -> LogRecord:
    try:
        ts_ns = int(e.get("__REALTIME_TIMESTAMP", "0")) * 1000
    except (TypeError, ValueError):
        ts_ns = 0
    sev_num, sev_text = 0, ""
    prio = _text(e.get("PRIORITY"))
    if prio.isdigit() and int(prio) < 8:
        sev_num, sev_text = PRIORITY_OTLP[int(prio)], PRIORITY_TEXT[int(prio)]
    attrs: list[tuple[str, AttrValue]] = []
    for field, name in _ATTRS:
        v = _text(e.get(field))
        if v:
            attrs.append((name, int(v) if name == "pid" and v.isdigit() else v))
    return LogRecord(ts_ns, _text(e.get("MESSAGE")), sev_num, sev_text, tuple(attrs))


class JournaldSource:
    name = "journald"

    def __init__(self, state: StateFile, *, journalctl: str = "journalctl", directory: str = "",
                 units: Sequence[str] = (), read_from: str = "end", max_entries: int = 5000,
                 service: str = "journald", timeout: float = 30.0) -> None:
        self.state = state
        self.journalctl = journalctl
        self.directory = directory
        self.units = list(units)
        self.read_from = read_from
        self.max_entries = max_entries
        self.service = service
        self.timeout = timeout
        self.errors: dict[str, int] = {}
        doc = state.load()
        self.cursor: str | None = doc.get("cursor") if isinstance(doc, dict) else None
        self._pending: str | None = None  # the cursor of the last record read, committed after buffering
        self._polled = False
        self._warned: set[str] = set()

    def _argv(self) -> list[str]:
        argv = [self.journalctl, "-o", "json", "--no-pager", "--show-cursor"]
        if self.directory:
            argv.append(f"--directory={self.directory}")
        for u in self.units:
            argv.append(f"--unit={u}")
        if self.cursor:
            argv.append(f"--after-cursor={self.cursor}")
        elif self.read_from == "end" and not self._polled:
            argv += ["-n", "0"]  # only the first poll: an empty journal then is read from its start
        return argv

    def _error(self, part: str, msg: str) -> None:
        """Counted always; logged as a WARNING once until a poll succeeds again (then at debug level)."""
        self.errors[part] = self.errors.get(part, 0) + 1
        log.log(logging.DEBUG if part in self._warned else logging.WARNING, "journald: %s", msg)
        self._warned.add(part)

    def read(self) -> list[LogRecord]:
        argv = self._argv()
        self._polled = True
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        except OSError as e:
            self._error("exec", f"cannot run {self.journalctl}: {e}")
            return []
        records: list[LogRecord] = []
        last_cursor: str | None = None
        tail_cursor: str | None = None
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if line.startswith(_CURSOR_PREFIX):
                    tail_cursor = line[len(_CURSOR_PREFIX):].strip()
                    continue
                if not line.startswith("{"):
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    self._error("decode", f"not JSON from journalctl: {line[:200]!r}")
                    continue
                records.append(entry_to_record(entry))
                c = entry.get("__CURSOR")
                if isinstance(c, str):
                    last_cursor = c
                if len(records) >= self.max_entries:
                    break  # the rest on the next poll, after this cursor
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate(timeout=self.timeout)
        if proc.returncode not in (0, -9) and not records:
            self._error("journalctl", f"{' '.join(argv)} exited with {proc.returncode}: "
                        f"{err.decode('utf-8', 'replace').strip()[:300]}")
            return []
        self._warned.clear()
        if last_cursor is not None:
            self._pending = last_cursor
        elif tail_cursor is not None and self.cursor is None:
            self._pending = tail_cursor  # first start at the end: remember where the journal ended
        return records

    def commit(self) -> None:
        if self._pending is not None and self._pending != self.cursor:
            self.cursor = self._pending
            self.state.save({"cursor": self.cursor})
        self._pending = None

    def close(self) -> None:
        pass
