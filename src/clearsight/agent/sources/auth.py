"""The auth-log preset: ``/var/log/auth.log`` (Debian, Ubuntu) or ``/var/log/secure`` (RHEL) tailed as
files, each line parsed into attributes so a burst of failed logins can be counted and alerted on.

The syslog header, classic (``Dec  4 21:00:01 host sshd[123]: ...``) or RFC 3339 (rsyslog's
``2026-12-04T21:00:01.123456+00:00 host sshd[123]: ...``), gives ``host``, ``program`` and ``pid``
(an RFC 3339 time becomes the record's time). Then, for:

- **sshd**: ``Accepted <method> for <user> from <ip>`` (outcome ``success``), ``Failed <method> for
  [invalid user] <user> from <ip>`` (``failure``), ``Invalid user <user> from <ip>`` (``failure``,
  method ``none``), ``Connection closed by authenticating user <user> <ip>`` (``failure``);
- **sudo**: ``<user> : ... USER=<target> ; COMMAND=<cmd>`` (``success``), ``<n> incorrect password
  attempts`` and ``authentication failure`` (``failure``);
- **su**: ``(to <target>) <user> on <tty>`` (``success``), ``FAILED SU (to <target>) <user>`` and
  ``authentication failure`` (``failure``);

the attributes ``auth_user``, ``auth_source_ip``, ``auth_method``, ``auth_outcome`` and for sudo/su
``auth_target_user`` (and ``auth_command`` for sudo). Other lines keep the header attributes only.
"""

from __future__ import annotations

import re
from datetime import datetime

from clearsight.agent.logrecord import Attributes, AttrValue, LogRecord

DEFAULT_PATHS = ("/var/log/auth.log", "/var/log/secure")

_HEADER = re.compile(
    r"^(?:(?P<rfc>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
    r"|(?P<bsd>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d))"
    r" (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$", re.S)

_SSHD = (
    (re.compile(r"^Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<ip>\S+)"), "success"),
    (re.compile(r"^Failed (?P<method>\S+) for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+)"), "failure"),
    (re.compile(r"^Invalid user (?P<user>\S*) from (?P<ip>\S+)"), "failure"),
    (re.compile(r"^Connection closed by authenticating user (?P<user>\S+) (?P<ip>\S+)"), "failure"),
)
_SUDO_CMD = re.compile(r"^\s*(?P<user>\S+) : (?:(?P<n>\d+) incorrect password attempts? ; )?.*?"
                       r"USER=(?P<target>\S+) ; COMMAND=(?P<cmd>.*)$")
_PAM_FAIL = "authentication failure;"
_KV = re.compile(r"(\w+)=(\S*)")
_SU_OK = re.compile(r"^(?:Successful su for (?P<t1>\S+) by (?P<u1>\S+)|\(to (?P<target>\S+)\) (?P<user>\S+) on)")
_SU_FAIL = re.compile(r"^FAILED (?:SU|su) (?:\(to (?P<target>\S+)\) (?P<user>\S+)|for (?P<t2>\S+) by (?P<u2>\S+))")


def _rfc3339_ns(text: str) -> int:
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000) * 1000
    except ValueError:
        return 0


def _fields(prog: str, msg: str) -> dict[str, str]:
    if prog == "sshd":
        for rx, outcome in _SSHD:
            m = rx.search(msg)
            if m:
                d = {"auth_user": m["user"], "auth_source_ip": m["ip"], "auth_outcome": outcome}
                d["auth_method"] = m.groupdict().get("method") or "none"
                return d
        return {}
    if prog in ("sudo", "su"):
        if _PAM_FAIL in msg:
            kv = dict(_KV.findall(msg.split(_PAM_FAIL, 1)[1]))
            d = {"auth_user": kv.get("ruser") or kv.get("logname") or kv.get("user", ""),
                 "auth_outcome": "failure", "auth_method": prog}
            if kv.get("user"):
                d["auth_target_user"] = kv["user"]
            if kv.get("rhost"):
                d["auth_source_ip"] = kv["rhost"]
            return d
    if prog == "sudo":
        m = _SUDO_CMD.search(msg)
        if m:
            return {"auth_user": m["user"], "auth_target_user": m["target"], "auth_command": m["cmd"].strip(),
                    "auth_outcome": "failure" if m["n"] else "success", "auth_method": "sudo"}
    if prog == "su":
        m = _SU_FAIL.search(msg)
        if m:
            return {"auth_user": m["user"] or m["u2"], "auth_target_user": m["target"] or m["t2"],
                    "auth_outcome": "failure", "auth_method": "su"}
        m = _SU_OK.search(msg)
        if m:
            return {"auth_user": m["user"] or m["u1"], "auth_target_user": m["target"] or m["t1"],
                    "auth_outcome": "success", "auth_method": "su"}
    return {}


def parse_auth_line(line: str, attrs: Attributes) -> LogRecord:
    m = _HEADER.match(line)
    if m is None:
        return LogRecord(0, line, attributes=attrs)
    out: list[tuple[str, AttrValue]] = list(attrs)
    out += [("host", m["host"]), ("program", m["prog"])]
    if m["pid"]:
        out.append(("pid", int(m["pid"])))
    out += sorted(_fields(m["prog"], m["msg"]).items())
    return LogRecord(_rfc3339_ns(m["rfc"]) if m["rfc"] else 0, line, attributes=tuple(out))
