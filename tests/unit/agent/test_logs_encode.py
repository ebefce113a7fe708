"""Log records -> OTLP protobuf, read back by the server's own OTLP logs decoder and by the official
protobuf classes; tidy filters and collapsing; the auth-log parser."""

from __future__ import annotations

import gzip

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from clearsight.agent.hostmeta import HostMeta, os_pretty_name
from clearsight.agent.logrecord import LogRecord
from clearsight.agent.otlp_logs import HEADERS, LogEncoder
from clearsight.agent.sources.auth import parse_auth_line
from clearsight.agent.tidy import Tidy
from clearsight.ingest.otlp_logs import decode_logs

META = HostMeta(hostname="web-1", instance="web-1.par", os="Debian GNU/Linux 12 (bookworm)", kernel="6.1.0",
                arch="x86_64", machine_id="abc123", agent_version="9.9.9", tags={"dc": "par"})


def test_encoded_request_reads_back_in_the_server() -> None:
    enc = LogEncoder(META.resource(), max_records=2)
    recs = [LogRecord(1_700_000_000_000_000_001, "boom", 17, "err", (("unit", "app.service"), ("pid", 42))),
            LogRecord(0, "héllo", attributes=(("repeat_count", 3),)),
            LogRecord(5, "third")]
    reqs = enc.encode("journald", recs, observed_ns=1_800_000_000_000_000_000)
    assert [n for _, n in reqs] == [2, 1]
    batch = decode_logs(reqs[0][0], HEADERS["Content-Type"], HEADERS["Content-Encoding"], now_ns=1)
    assert batch.body == ["boom", "héllo"]
    assert list(batch.timestamps) == [1_700_000_000_000_000_001, 1_800_000_000_000_000_000]  # 0: observed time
    assert list(batch.severity_number) == [17, 0]
    assert [dict(s) for s in batch.streams] == [{"service_name": "journald", "service_instance_id": "web-1.par"}]
    res = dict(batch.resources[batch.resource_idx[0]])
    assert res["host.name"] == "web-1" and res["host.id"] == "abc123" and res["os.version"] == "6.1.0"
    assert res["clearsight.agent.version"] == "9.9.9" and res["dc"] == "par" and res["service.name"] == "journald"
    a0 = batch.attr_keys[batch.attr_offsets[0]:batch.attr_offsets[1]]
    v0 = batch.attr_values[batch.attr_offsets[0]:batch.attr_offsets[1]]
    assert dict(zip(a0, v0, strict=True))["pid"] == "42"

    msg = logs_service_pb2.ExportLogsServiceRequest()
    msg.ParseFromString(gzip.decompress(reqs[0][0]))
    lr = msg.resource_logs[0].scope_logs[0].log_records[0]
    assert lr.attributes[1].value.int_value == 42 and lr.severity_text == "err"
    assert msg.resource_logs[0].scope_logs[0].scope.name == "clearsight-agent"


def test_tidy_filters_and_collapses() -> None:
    t = Tidy(include="a|b", exclude="skip")
    r = [LogRecord(1, "a"), LogRecord(2, "a"), LogRecord(3, "a"), LogRecord(4, "b skip"), LogRecord(5, "b"),
         LogRecord(6, "c"), LogRecord(7, "b"), LogRecord(8, "b")]
    out = t.apply(r)
    assert [(x.time_ns, x.body, dict(x.attributes).get("repeat_count")) for x in out] == [
        (1, "a", 3), (5, "b", 3)]  # "c" filtered out, so the three "b" are consecutive
    assert (t.filtered, t.collapsed) == (2, 4)
    plain = Tidy(collapse=False)
    assert len(plain.apply(r)) == 8


def test_os_pretty_name(tmp_path: object) -> None:
    from pathlib import Path

    etc = Path(str(tmp_path))
    (etc / "os-release").write_text('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    assert os_pretty_name(etc) == "Debian GNU/Linux 12 (bookworm)"
    assert os_pretty_name(etc / "missing") == ""


def attrs(line: str) -> dict[str, object]:
    return dict(parse_auth_line(line, (("log_file_path", "/var/log/auth.log"),)).attributes)


def test_auth_sshd() -> None:
    a = attrs("Dec  4 21:00:01 web-1 sshd[123]: Failed password for invalid user bob from 203.0.113.9 port 22 ssh2")
    assert a == {"log_file_path": "/var/log/auth.log", "host": "web-1", "program": "sshd", "pid": 123,
                 "auth_user": "bob", "auth_source_ip": "203.0.113.9", "auth_method": "password",
                 "auth_outcome": "failure"}
    a = attrs("2026-12-04T21:00:01.123456+00:00 web-1 sshd[9]: Accepted publickey for alice from 10.0.0.2 port 5 ssh2")
    assert (a["auth_user"], a["auth_method"], a["auth_outcome"]) == ("alice", "publickey", "success")
    rec = parse_auth_line("2026-12-04T21:00:01.123456+00:00 web-1 sshd[9]: Accepted x for y from z", ())
    assert rec.time_ns == 1796418001123456000
    a = attrs("Dec  4 21:00:01 web-1 sshd[5]: Invalid user admin from 198.51.100.1 port 4444")
    assert (a["auth_user"], a["auth_source_ip"], a["auth_outcome"], a["auth_method"]) == (
        "admin", "198.51.100.1", "failure", "none")


def test_auth_sudo_and_su() -> None:
    a = attrs("Dec  4 21:00:01 web-1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls -l")
    assert {k: v for k, v in a.items() if k.startswith("auth_")} == {
        "auth_user": "alice", "auth_target_user": "root", "auth_command": "/bin/ls -l", "auth_outcome": "success",
        "auth_method": "sudo"}
    a = attrs("Dec  4 21:00:01 web-1 sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/ ; "
              "USER=root ; COMMAND=/bin/sh")
    assert a["auth_outcome"] == "failure"
    a = attrs("Dec  4 21:00:01 web-1 sudo: pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 "
              "euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice")
    assert (a["auth_user"], a["auth_outcome"]) == ("alice", "failure") and "auth_source_ip" not in a
    a = attrs("Dec  4 21:00:01 web-1 su[77]: (to root) alice on pts/0")
    assert (a["auth_user"], a["auth_target_user"], a["auth_outcome"]) == ("alice", "root", "success")
    a = attrs("Dec  4 21:00:01 web-1 su[77]: FAILED SU (to root) alice on pts/0")
    assert (a["auth_user"], a["auth_target_user"], a["auth_outcome"]) == ("alice", "root", "failure")
    a = attrs("Dec  4 21:00:01 web-1 CRON[1]: pam_unix(cron:session): session opened for user root")
    assert a == {"log_file_path": "/var/log/auth.log", "host": "web-1", "program": "CRON", "pid": 1}
    assert attrs("not syslog at all") == {"log_file_path": "/var/log/auth.log"}
