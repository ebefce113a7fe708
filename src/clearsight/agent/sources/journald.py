"""The journald source: one long-running ``journalctl -o json --follow --after-cursor=<cursor>`` whose
output each poll reads without blocking (restarted after the last record read if it exits).

The cursor of the last record handed to the agent is persisted (``commit()``), so a restart, even
after SIGKILL, resumes right after it: no gap, no duplicate. Without a stored cursor the first start
takes the cursor of the journal's last entry (``read_from: end``, one ``journalctl --show-cursor
--lines=0``) or reads from the beginning (``beginning``).
``directory`` reads journal files from a directory (``journalctl --directory``) instead of the
system journal; ``units`` limits to those systemd units.

Per record: the body is ``MESSAGE`` (a binary message, sent by journald as a byte array, is decoded
as UTF-8 with replacement), the time ``__REALTIME_TIMESTAMP``, ``PRIORITY`` 0-7 maps to the severity
(emerg 24 ... debug 5 as OTLP numbers, the keyword as text), and the attributes are ``unit``
(``_SYSTEMD_UNIT``), ``pid`` (``_PID``), ``hostname`` (``_HOSTNAME``), ``boot_id`` (``_BOOT_ID``),
``syslog_identifier`` (``SYSLOG_IDENTIFIER``) when present.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from clearsight.agent.logrecord import PRIORITY_OTLP, PRIORITY_TEXT, AttrValue, LogRecord
from clearsight.agent.sources.state import StateFile

log = logging.getLogger("clearsight.agent.journald")

_ATTRS = (("_SYSTEMD_UNIT", "unit"), ("_PID", "pid"), ("_HOSTNAME", "hostname"), ("_BOOT_ID", "boot_id"),
          ("SYSLOG_IDENTIFIER", "syslog_identifier"))


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list):  # a binary field: an array of byte values
        try:
            return bytes(v).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return ""
    return "" if v is None else str(v)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: a journalctl --follow must not outlive an agent killed with SIGKILL."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


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
        self._last_read: str | None = self.cursor  # where a restarted journalctl continues
        self._started = False
        self._warned: set[str] = set()
        self._proc: subprocess.Popen[bytes] | None = None
        self._buf = b""

    def _selection(self) -> list[str]:
        argv = [f"--directory={self.directory}"] if self.directory else []
        return argv + [f"--unit={u}" for u in self.units]

    def _argv(self) -> list[str]:
        argv = [self.journalctl, "-o", "json", "--no-pager", "--follow", *self._selection()]
        if self._last_read:
            argv.append(f"--after-cursor={self._last_read}")
        return [*argv, "--lines=all"]

    def _tail_cursor(self) -> str | None:
        """The cursor of the journal's last entry (``read_from: end`` without a stored cursor): saved at the
        first commit, so entries written while the agent is down later are not skipped."""
        try:
            r = subprocess.run([self.journalctl, "--no-pager", "--show-cursor", "--lines=0", *self._selection()],
                               capture_output=True, timeout=self.timeout, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            self._error("exec", f"cannot run {self.journalctl}: {e}")
            return None
        for line in r.stdout.decode("utf-8", "replace").splitlines():
            if line.startswith("-- cursor: "):
                return line.removeprefix("-- cursor: ").strip()
        return None  # an empty journal: everything from its start is new

    def _error(self, part: str, msg: str) -> None:
        """Counted always; logged as a WARNING once until a poll succeeds again (then at debug level)."""
        self.errors[part] = self.errors.get(part, 0) + 1
        log.log(logging.DEBUG if part in self._warned else logging.WARNING, "journald: %s", msg)
        self._warned.add(part)

    def _start(self) -> subprocess.Popen[bytes] | None:
        if not self._started and self._last_read is None and self.read_from == "end":
            self._last_read = self._pending = self._tail_cursor()
        argv = self._argv()
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent)
        except OSError as e:
            self._error("exec", f"cannot run {self.journalctl}: {e}")
            return None
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        self._started = True
        self._buf = b""
        return proc

    def _ended(self, proc: subprocess.Popen[bytes]) -> None:
        """journalctl exited: count it unless it was stopped by us; the next poll starts a new one."""
        try:
            _, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        self._proc = None
        self._error("journalctl", f"{' '.join(self._argv())} exited with {proc.returncode}: "
                    f"{err.decode('utf-8', 'replace').strip()[:300]}")

    def read(self) -> list[LogRecord]:
        """The entries journalctl --follow printed since the last poll (at most ``max_entries``)."""
        if self._proc is None:
            self._proc = self._start()
            if self._proc is None:
                return []
        proc = self._proc
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        eof = False
        while self._buf.count(b"\n") < self.max_entries:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            self._buf += chunk
        records: list[LogRecord] = []
        pos = 0
        while len(records) < self.max_entries:
            nl = self._buf.find(b"\n", pos)
            if nl < 0:
                break
            line = self._buf[pos:nl]
            pos = nl + 1
            if not line.startswith(b"{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                self._error("decode", f"not JSON from journalctl: {line[:200]!r}")
                continue
            records.append(entry_to_record(entry))
            c = entry.get("__CURSOR")
            if isinstance(c, str):
                self._pending = self._last_read = c
        self._buf = self._buf[pos:]
        if eof and not self._buf.count(b"\n"):
            self._ended(proc)
        elif records:
            self._warned.discard("journalctl")
            self._warned.discard("exec")
        return records

    def commit(self, staged: Sequence[str] = ()) -> None:
        if (self._pending is not None and self._pending != self.cursor) or staged:
            if self._pending is not None:
                self.cursor = self._pending
            self.state.save({"cursor": self.cursor}, staged)
        self._pending = None

    def staged(self) -> list[str]:
        return self.state.staged

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.communicate()
            self._proc = None
