"""Syslog: RFC 5424 / RFC 3164 parsing, RFC 6587 framing, messages from the real `logger`, fuzz."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.ingest import syslog as sl
from clearsight.ingest.log_common import LogLimits
from clearsight.pipeline.errors import IngestError, LimitExceeded

NOW = 1_714_557_600_000_000_000  # 2024-05-01T10:00:00Z
ALLOWED = (sl.SyslogFramingError,)  # a decoder raises its own error or a limit error
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_rfc5424_full() -> None:
    raw = (b'<165>1 2003-10-11T22:14:15.003000123+02:00 mymachine.example.com evntslog 1234 ID47 '
           b'[exampleSDID@32473 iut="3" eventSource="App\\"lic\\]ation"][examplePriority@32473 class="high"] '
           b"\xef\xbb\xbfAn application event log entry...")
    m = sl.parse_message(raw, NOW)
    assert m.format == "rfc5424" and m.pri == 165
    assert m.timestamp == 1065903255003000123  # 20:14:15.003000123 UTC
    assert (m.hostname, m.app, m.procid, m.msgid) == ("mymachine.example.com", "evntslog", "1234", "ID47")
    assert m.structured_data == (("exampleSDID@32473.iut", "3"), ("exampleSDID@32473.eventSource", 'App"lic]ation'),
                                 ("examplePriority@32473.class", "high"))
    assert m.message == "An application event log entry..."


def test_rfc5424_nil_fields_and_no_msg() -> None:
    m = sl.parse_message(b"<34>1 - - - - - -", NOW)
    assert m.format == "rfc5424" and m.timestamp == NOW and m.hostname == "" and m.message == ""
    m = sl.parse_message(b'<34>1 2024-05-01T09:00:00Z h a - - [x y="a b"]', NOW)
    assert m.structured_data == (("x.y", "a b"),) and m.message == ""


def test_rfc3164_variants() -> None:
    m = sl.parse_message(b"<34>Oct 11 22:14:15 mymachine su[99]: 'su root' failed for lonvick on /dev/pts/8", NOW)
    assert m.format == "rfc3164" and (m.hostname, m.app, m.procid) == ("mymachine", "su", "99")
    assert m.timestamp == 1697062455 * 10**9  # Oct 2024 would be in the future: previous year
    assert m.message == "'su root' failed for lonvick on /dev/pts/8"
    m = sl.parse_message(b"<13>May  1 09:59:00 myapp: hello", NOW)  # local logger: no hostname
    assert (m.hostname, m.app, m.message) == ("", "myapp", "hello")
    assert m.timestamp == NOW - 60 * 10**9
    m = sl.parse_message(b"<13>2024-05-01T09:59:00.5+00:00 web1 nginx: up", NOW)
    assert (m.hostname, m.app, m.message, m.timestamp) == ("web1", "nginx", "up", NOW - 59_500_000_000)


def test_raw_fallback_keeps_the_text() -> None:
    for raw in (b"no pri at all", b"<999>x", b"<13>not a header"):
        m = sl.parse_message(raw, NOW)
        assert m.timestamp == NOW and m.message
    assert sl.parse_message(b"<13>not a header", NOW).message == "not a header"
    assert sl.parse_message(b"no pri at all", NOW).pri == sl.DEFAULT_PRI


def test_decode_messages_columns() -> None:
    b = sl.decode_messages([b"<11>1 2024-05-01T09:00:00Z web1 api 7 - - boom", b"<14>May  1 09:00:00 x: y"],
                           now_ns=NOW, peer_host="10.0.0.9")
    assert b.streams == [(("app", "api"), ("facility", "user"), ("host", "web1")),
                         (("app", "x"), ("facility", "user"), ("host", "10.0.0.9"))]
    assert [b.severity_text(j) for j in range(2)] == ["err", "info"]
    assert b.severity_number.tolist() == [17, 9]
    assert b.attributes(0) == [("procid", "7")]
    assert b.resources[int(b.resource_idx[1])] == (("host.name", "10.0.0.9"),)


def test_framer_mixed_and_split_across_reads() -> None:
    f = sl.SyslogFramer(max_frame_bytes=100)
    data = b"11 <13>1 - - x\n<13>two\r\n5 <13>3"
    out: list[bytes] = []
    for i in range(len(data)):
        out += f.feed(data[i:i + 1])
    assert out == [b"<13>1 - - x", b"<13>two", b"<13>3"]
    assert f.feed(b"<13>tail") == [] and f.close() == [b"<13>tail"]


def test_framer_errors() -> None:
    with pytest.raises(sl.SyslogFramingError, match="exceeds the limit of 10"):
        sl.SyslogFramer(10).feed(b"11 <13>xxxxxxx")
    with pytest.raises(sl.SyslogFramingError, match="invalid octet count"):
        sl.SyslogFramer(10).feed(b"12a <13>x")
    with pytest.raises(sl.SyslogFramingError, match="without a newline"):
        sl.SyslogFramer(10).feed(b"<13>" + b"x" * 20)
    f = sl.SyslogFramer(100)
    f.feed(b"20 <13>abc")
    with pytest.raises(sl.SyslogFramingError, match="inside an octet-counted frame"):
        f.close()


def test_limits() -> None:
    with pytest.raises(LimitExceeded, match="message 1: line of 30 bytes exceeds the limit of 20"):
        sl.decode_messages([b"<13>ok", b"<13>" + b"x" * 26], now_ns=NOW, limits=LogLimits(max_line_bytes=20))
    with pytest.raises(LimitExceeded, match="more than 1 entries"):
        sl.decode_messages([b"a", b"b"], now_ns=NOW, limits=LogLimits(max_entries_per_request=1))


def _receive_from_logger(args: list[str]) -> bytes:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = bytearray()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(65536):
                got.extend(chunk)

    t = threading.Thread(target=serve)
    t.start()
    subprocess.run(["logger", "--server", "127.0.0.1", "--port", str(port), "--tcp", *args], check=True, timeout=20)
    t.join(20)
    srv.close()
    return bytes(got)


def test_real_logger_rfc5424_octet_counted() -> None:
    before = time.time_ns()
    data = _receive_from_logger(["--rfc5424", "--octet-count", "--tag", "billing", "--sd-id", "meta@1",
                                 "--sd-param", 'user="ann"', "--msgid", "M1", "-p", "local3.warning",
                                 "payment failed"])
    f = sl.SyslogFramer()
    msgs = f.feed(data) + f.close()
    b = sl.decode_messages(msgs, now_ns=time.time_ns())
    e = b.entry(0)
    assert len(b) == 1 and e.body == "payment failed"
    assert dict(e.stream)["app"] == "billing" and dict(e.stream)["facility"] == "local3"
    assert e.severity_text == "warning" and e.severity_number == 13
    assert ("msgid", "M1") in e.attributes and ("meta@1.user", "ann") in e.attributes
    assert before - 10**9 <= e.timestamp <= time.time_ns() + 10**9


def test_real_logger_rfc3164_newline_framed() -> None:
    data = _receive_from_logger(["--rfc3164", "--tag", "cron", "-p", "cron.err", "job one"])
    f = sl.SyslogFramer()
    msgs = f.feed(data) + f.close()
    b = sl.decode_messages(msgs, now_ns=time.time_ns())
    e = b.entry(0)
    assert e.body == "job one" and dict(e.stream)["app"] == "cron" and dict(e.stream)["facility"] == "cron"
    assert e.severity_text == "err"


@FUZZ
@given(st.binary(max_size=200), st.integers(1, 50))
def test_fuzz_framer_and_decoder(data: bytes, chunk: int) -> None:
    f = sl.SyslogFramer(max_frame_bytes=120)
    msgs: list[bytes] = []
    try:
        for i in range(0, len(data), chunk):
            msgs += f.feed(data[i:i + chunk])
        msgs += f.close()
    except IngestError as e:
        assert isinstance(e, ALLOWED) and e.message
    b = sl.decode_messages(msgs, now_ns=NOW)
    assert len(b) == len(msgs)
    b.check()


@FUZZ
@given(st.one_of(
    st.binary(max_size=200),
    st.builds(lambda p, r: b"<%d>1 " % p + r, st.integers(0, 200), st.binary(max_size=120)),
    st.builds(lambda p, r: b"<%d>May  1 " % p + r, st.integers(0, 200), st.binary(max_size=120)),
    st.builds(lambda r: b'<13>1 2024-05-01T00:00:00Z h a p m [' + r, st.binary(max_size=80)),
))
def test_fuzz_messages(raw: bytes) -> None:
    m = sl.parse_message(raw, NOW)
    assert 0 <= m.pri <= 191 and m.format in ("rfc5424", "rfc3164", "raw")
    b = sl.decode_messages([raw], now_ns=NOW)
    assert len(b) == 1
    b.check()


def test_header_fields_are_bounded_like_labels() -> None:
    raw = b"<13>1 2024-05-01T09:00:00Z " + b"h" * 40 + b" app - - - x"
    with pytest.raises(LimitExceeded, match="message 0: value of label 'host' is 40 characters"):
        sl.decode_messages([raw], now_ns=NOW, limits=LogLimits(max_label_value_length=32))
