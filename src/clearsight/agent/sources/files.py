"""The file source: tails the files matching globs, through rotation and truncation, with persisted offsets.

Each file is followed by its identity (device, inode) on an open descriptor:

- **rename + create** (logrotate's default): the old descriptor is read to its end first (lines written
  just before the rename are not lost), then closed; the new file at the path is read from offset 0.
  A renamed file that still matches a glob (``app.log*``) is simply followed under its new name. A file
  rotated while the agent was down is found by its inode in its old directory and read to its end.
- **copytruncate**: a file shorter than the offset read so far was truncated: reading restarts at 0.
- **offsets** are persisted per (device, inode) on ``commit()``: after a restart (or SIGKILL) every file
  resumes at its committed offset; a file the state does not know is read from its start, except on the
  very first start (no state yet) where ``read_from: end`` skips what the files already hold.
- a line is complete at its ``\\n``; an unterminated last line waits for the next poll (or the rotation).
  Lines longer than ``max_line_bytes`` are cut there.
- **multiline**: with ``multiline_start`` (a regular expression), a line that does not match it is
  joined (with ``\\n``) to the record before it (a stack trace under its first line); a record is
  complete when the next start line arrives, or after one poll with nothing new for it. The committed
  offset is the start of an incomplete record, so a restart rebuilds it whole.

Records carry ``log_file_path``, ``log_file_name`` and the source's ``labels`` as attributes; their time
is left unset (the server uses the observed time) unless the source's ``parse`` finds one.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from clearsight.agent.logrecord import Attributes, LogRecord
from clearsight.agent.sources.state import StateFile

log = logging.getLogger("clearsight.agent.files")

Parser = Callable[[str, Attributes], LogRecord]


def plain(line: str, attrs: Attributes) -> LogRecord:
    return LogRecord(0, line, attributes=attrs)


@dataclass
class _Tracked:
    path: str
    key: tuple[int, int]
    fh: BinaryIO
    offset: int  # bytes consumed into complete lines
    pending: list[str] = field(default_factory=list)  # the multiline record being built
    pending_start: int = 0  # its first byte
    pending_idle: int = 0  # polls without a new line for it
    rotated: bool = False  # found by inode after a rotation while the agent was down: read to its end, then dropped


class FileSource:
    name = "files"

    def __init__(self, patterns: Sequence[str], state: StateFile, *, service: str = "files",
                 labels: Mapping[str, str] | None = None, multiline_start: str = "", read_from: str = "end",
                 max_line_bytes: int = 64 * 1024, max_read_bytes: int = 8 * 1024 * 1024,
                 parse: Parser = plain, name: str = "files") -> None:
        self.name = name
        self.patterns = list(patterns)
        self.state = state
        self.service = service
        self.labels = tuple(sorted((labels or {}).items()))
        self.start = re.compile(multiline_start) if multiline_start else None
        self.read_from = read_from
        self.max_line_bytes = max_line_bytes
        self.max_read_bytes = max_read_bytes
        self.parse = parse
        self.errors: dict[str, int] = {}
        self._warned: set[str] = set()
        self._files: dict[tuple[int, int], _Tracked] = {}
        doc = state.load()
        self._first_start = doc is None
        self._stored: dict[tuple[int, int], tuple[int, str]] = {}  # (dev, ino) -> (offset, path)
        if isinstance(doc, dict):
            for f in doc.get("files", ()):
                try:
                    self._stored[(int(f["dev"]), int(f["ino"]))] = (int(f["offset"]), str(f.get("path", "")))
                except (KeyError, TypeError, ValueError):
                    continue

    def _error(self, part: str, msg: str) -> None:
        """Counted always; each distinct message logged as a WARNING once, then at debug level."""
        self.errors[part] = self.errors.get(part, 0) + 1
        if len(self._warned) > 1000:
            self._warned.clear()
        log.log(logging.DEBUG if msg in self._warned else logging.WARNING, "%s: %s", self.name, msg)
        self._warned.add(msg)

    def _discover(self) -> None:
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not os.path.isfile(path):
                    continue
                key = (st.st_dev, st.st_ino)
                t = self._files.get(key)
                if t is not None:
                    t.path = path  # renamed, still matching
                    continue
                if key in self._stored:
                    offset = self._stored.pop(key)[0]
                    if offset > st.st_size:
                        offset = 0  # truncated while the agent was away
                elif self._first_start and self.read_from == "end":
                    offset = st.st_size
                else:
                    offset = 0
                self._track(path, key, offset)
        self._first_start = False
        if self._stored:
            self._find_rotated()

    def _track(self, path: str, key: tuple[int, int], offset: int, rotated: bool = False) -> None:
        try:
            fh = open(path, "rb")
        except OSError as e:
            self._error("open", f"cannot open {path}: {e}")
            return
        self._files[key] = _Tracked(path, key, fh, offset, pending_start=offset, rotated=rotated)

    def _find_rotated(self) -> None:
        """Files known from the state but no longer matched (rotated away while the agent was down):
        found by inode next to their old path, followed until their end, then forgotten."""
        stored, self._stored = self._stored, {}
        by_dir: dict[str, list[tuple[tuple[int, int], int]]] = {}
        for key, (offset, path) in stored.items():
            if path:
                by_dir.setdefault(os.path.dirname(path), []).append((key, offset))
        for directory, wanted in by_dir.items():
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            inodes = {}
            for e in entries:
                try:
                    if e.is_file():
                        st = e.stat()
                        inodes[(st.st_dev, st.st_ino)] = (e.path, st.st_size)
                except OSError:
                    continue
            for key, offset in wanted:
                if key in inodes and key not in self._files:
                    path, size = inodes[key]
                    self._track(path, key, offset if offset <= size else 0, rotated=True)

    def _attrs(self, path: str) -> Attributes:
        return (("log_file_path", path), ("log_file_name", os.path.basename(path)), *self.labels)

    def _line(self, t: _Tracked, line: str, line_start: int, out: list[LogRecord]) -> None:
        if self.start is None:
            out.append(self.parse(line, self._attrs(t.path)))
            return
        if self.start.search(line) or not t.pending:
            self._flush(t, out)
            t.pending_start = line_start
        t.pending.append(line)
        t.pending_idle = 0

    def _flush(self, t: _Tracked, out: list[LogRecord]) -> None:
        if t.pending:
            out.append(self.parse("\n".join(t.pending), self._attrs(t.path)))
            t.pending = []
        t.pending_start = t.offset

    def _decode(self, raw: bytes) -> str:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return raw[:self.max_line_bytes].decode("utf-8", "replace")

    def _drain(self, t: _Tracked, out: list[LogRecord], final: bool) -> None:
        """Read complete lines from ``t.offset``; ``final``: the file was rotated away, its last
        unterminated line is complete too."""
        budget = self.max_read_bytes
        t.fh.seek(t.offset)
        while budget > 0:
            data = t.fh.read(min(budget, 1024 * 1024))
            if not data:
                break
            budget -= len(data)
            pos = 0
            while True:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    break
                self._line(t, self._decode(data[pos:nl]), t.offset, out)
                t.offset += nl + 1 - pos
                pos = nl + 1
            rest = len(data) - pos
            if rest:
                if rest >= self.max_line_bytes:  # a line longer than the limit: cut it here
                    self._line(t, self._decode(data[pos:]), t.offset, out)
                    t.offset += rest
                elif final and len(data) < 1024 * 1024:
                    self._line(t, self._decode(data[pos:]), t.offset, out)
                    t.offset += rest
                    break
                else:
                    t.fh.seek(t.offset)  # re-read the unterminated tail with what follows
                    if len(data) < 1024 * 1024:
                        break

    def read(self) -> list[LogRecord]:
        self._discover()
        out: list[LogRecord] = []
        for key, t in list(self._files.items()):
            try:
                size = os.fstat(t.fh.fileno()).st_size
                if size < t.offset:  # copytruncate
                    self._flush(t, out)
                    t.offset = t.pending_start = 0
                had_pending = bool(t.pending)
                before = t.offset
                self._drain(t, out, final=False)
                try:
                    st = os.stat(t.path)
                    moved = (st.st_dev, st.st_ino) != key
                except FileNotFoundError:
                    moved = True
                if moved or t.rotated:  # rotated (renamed or removed): finish this descriptor, forget the file
                    self._drain(t, out, final=True)
                    self._flush(t, out)
                    t.fh.close()
                    del self._files[key]
                    continue
                if had_pending and t.offset == before:
                    t.pending_idle += 1
                    if t.pending_idle >= 1:
                        self._flush(t, out)
            except OSError as e:
                self._error("read", f"{t.path}: {e}")
        return out

    def commit(self, staged: Sequence[str] = ()) -> None:
        files = [{"dev": t.key[0], "ino": t.key[1], "path": t.path,
                  "offset": t.pending_start if t.pending else t.offset} for t in self._files.values()]
        self.state.save({"files": files}, staged)

    def staged(self) -> list[str]:
        return self.state.staged

    def close(self) -> None:
        for t in self._files.values():
            t.fh.close()
        self._files.clear()
