"""One-line explanations of the errors an operator meets when starting the server, instead of a
traceback: today, a data directory another process holds open."""

from __future__ import annotations

import re
from pathlib import Path

_LOCK_RE = re.compile(r"Could not set lock on file \"(?P<file>[^\"]+)\": Conflicting lock is held in "
                      r"(?P<exe>.+?) \(PID (?P<pid>\d+)\)")


def _cmdline(pid: int, proc_root: Path) -> str:
    try:
        raw = (proc_root / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def lock_holder_message(exc: BaseException, data_dir: str, proc_root: Path = Path("/proc")) -> str | None:
    """The one-line message for a store that cannot lock its file (another process holds it), or
    None when ``exc`` is something else."""
    m = _LOCK_RE.search(str(exc))
    if m is None:
        return None
    pid = int(m["pid"])
    cmd = _cmdline(pid, proc_root) or m["exe"]
    if len(cmd) > 160:
        cmd = cmd[:157] + "..."
    return (f"clearsight: the data directory {data_dir} is in use by another process: PID {pid} ({cmd}); "
            "stop it, or start this server with another --data-dir")
