"""Loki push decoder: JSON and snappy protobuf, the sample from the push notes, limits, fuzz."""

from __future__ import annotations

import gzip
from pathlib import Path

import cramjam
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.ingest import loki_push as lp
from clearsight.ingest.log_common import LogLimits
from clearsight.model.logs import LogBatch
from clearsight.pipeline.errors import IngestError, LimitExceeded, PayloadTooLarge, UnsupportedMediaType

ALLOWED = (lp.LokiPushError, LimitExceeded, PayloadTooLarge)  # a decoder raises its own error or a limit error
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOTES = Path("/work/shared/conformance/loki-push-notes.md")


def _notes_example() -> bytes:
    """The JSON example written in the push notes (the lines between '{"streams"' and the blank)."""
    text = NOTES.read_text()
    start = text.index('{"streams"')
    end = text.index("\n  - timestamps")
    return text[start:end].encode()


def encode_pb(streams: list[tuple[str, list[tuple[int, int, bytes, list[tuple[str, str]]]]]]) -> bytes:
    req = lp.push_request_class()()
    for labels, entries in streams:
        s = req.streams.add()  # type: ignore[attr-defined]
        s.labels = labels
        for sec, nanos, line, md in entries:
            e = s.entries.add()
            e.timestamp.seconds = sec
            e.timestamp.nanos = nanos
            e.line = line
            for k, v in md:
                p = e.structured_metadata.add()
                p.name, p.value = k, v
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def test_notes_json_example_decodes() -> None:
    b = lp.decode_push(_notes_example(), "application/json")
    assert [e.body for e in b.entries()] == ["hello world", "with metadata"]
    assert b.timestamps.tolist() == [1700000000000000000, 1700000000000000001]
    assert b.streams == [(("job", "demo"), ("level", "info"))]
    assert b.attributes(1) == [("trace_id", "abc123")]
    assert b.attributes(0) == []
    assert b.severity_text(0) == "info" and int(b.severity_number[0]) == 9


def test_json_gzip_and_protobuf_agree() -> None:
    doc = {"streams": [
        {"stream": {"app": "api", "env": "prod"}, "values": [["1700000000123456789", "GET /x 200", {"k": "v"}]]},
        {"stream": {"app": "db"}, "values": [["1700000001000000000", "slow query"]]},
    ]}
    from_json = lp.decode_push(gzip.compress(orjson.dumps(doc)), "application/json; charset=utf-8", "gzip")
    from_pb = lp.decode_push(encode_pb([
        ('{app="api", env="prod"}', [(1700000000, 123456789, b"GET /x 200", [("k", "v")])]),
        ('{app="db"}', [(1700000001, 0, b"slow query", [])]),
    ]), None)
    assert from_json.entries() == from_pb.entries()
    assert from_pb.timestamps.tolist() == [1700000000123456789, 1700000001000000000]
    assert from_pb.num_streams == 2


def test_protobuf_escaped_labels_and_invalid_utf8_line() -> None:
    b = lp.decode_push(encode_pb([('{path="a\\"b\\\\c", z="1"}', [(1, 0, b"bad \xff byte", [])])]),
                       "application/x-protobuf")
    assert b.streams[0] == (("path", 'a"b\\c'), ("z", "1"))
    assert b.body == ["bad \ufffd byte"]


def test_same_stream_text_is_one_stream() -> None:
    b = lp.decode_push(encode_pb([('{a="1"}', [(1, 0, b"x", [])]), ('{a="1"}', [(2, 0, b"y", [])])]), None)
    assert b.num_streams == 1 and b.stream_idx.tolist() == [0, 0]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{", "invalid JSON push body"),
        (b'{"streams": 1}', '"streams" array'),
        (b'{"streams":[{"stream":{},"values":[]}]}', "streams[0]: at least one label pair"),
        (b'{"streams":[{"stream":{"a":1},"values":[]}]}', "streams[0].stream: label values must be strings"),
        (b'{"streams":[{"stream":{"a":"b"},"values":[["x","l"]]}]}', "streams[0].values[0]: timestamp 'x'"),
        (b'{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}', "streams[0].values[0]: must be"),
        (b'{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}', "line must be a string"),
        (b'{"streams":[{"stream":{"a":"b"},"values":[["1","l",{"m":1}]]}]}', "structured metadata"),
        (b'{"streams":[{"stream":{"1a":"b"},"values":[]}]}', "invalid label name '1a'"),
        (b'{"streams":[{"stream":{"a":"b"},"values":[["99999999999999999999","l"]]}]}', "timestamp"),
    ],
)
def test_json_errors_name_the_problem(body: bytes, fragment: str) -> None:
    with pytest.raises(lp.LokiPushError) as ei:
        lp.decode_push(body, "application/json")
    assert fragment in ei.value.message


def test_protobuf_errors() -> None:
    with pytest.raises(lp.LokiPushError, match="invalid snappy"):
        lp.decode_push(b"\x05abc", None)
    with pytest.raises(lp.LokiPushError, match="invalid PushRequest protobuf"):
        lp.decode_push(bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff")), None)
    with pytest.raises(lp.LokiPushError, match=r"streams\[0\]: invalid stream labels"):
        lp.decode_push(encode_pb([("job=x", [])]), None)
    with pytest.raises(UnsupportedMediaType):
        lp.decode_push(b"", "text/plain")


def test_limits_are_precise() -> None:
    lim = LogLimits(max_line_bytes=10, max_entries_per_request=2, max_streams_per_request=1,
                    max_labels_per_stream=2, max_attributes_per_entry=1, max_decompressed_bytes=1000)
    with pytest.raises(LimitExceeded, match=r"streams\[0\].entries\[0\]: line of 11 bytes exceeds the limit of 10"):
        lp.decode_push(encode_pb([('{a="1"}', [(1, 0, b"x" * 11, [])])]), None, limits=lim)
    with pytest.raises(LimitExceeded, match="more than 2 entries"):
        lp.decode_push(encode_pb([('{a="1"}', [(1, 0, b"x", [])] * 3)]), None, limits=lim)
    with pytest.raises(LimitExceeded, match="more than 1 streams"):
        lp.decode_push(encode_pb([('{a="1"}', []), ('{a="2"}', [])]), None, limits=lim)
    with pytest.raises(LimitExceeded, match="3 labels"):
        lp.decode_push(encode_pb([('{a="1",b="2",c="3"}', [])]), None, limits=lim)
    with pytest.raises(LimitExceeded, match="2 attributes exceed the limit of 1"):
        lp.decode_push(encode_pb([('{a="1"}', [(1, 0, b"x", [("p", "1"), ("q", "2")])])]), None, limits=lim)
    with pytest.raises(LimitExceeded, match="line of 12 bytes"):  # UTF-8 bytes, not characters
        lp.decode_push(orjson.dumps({"streams": [{"stream": {"a": "1"}, "values": [["1", "é" * 6]]}]}),
                       "application/json", limits=lim)
    with pytest.raises(PayloadTooLarge, match="declares 2000 decompressed bytes"):
        lp.decode_push(bytes(cramjam.snappy.compress_raw(b"\0" * 2000)), None, limits=lim)
    with pytest.raises(PayloadTooLarge):
        lp.decode_push(b"x" * 50, None, limits=LogLimits(max_body_bytes=10))


def _check(batch_or_error: object) -> None:
    assert isinstance(batch_or_error, LogBatch | IngestError)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_protobuf_bytes(data: bytes) -> None:
    for body in (data, bytes(cramjam.snappy.compress_raw(data))):
        try:
            b = lp.decode_push(body, None)
        except IngestError as e:
            assert isinstance(e, ALLOWED) and e.message
        else:
            b.check()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@FUZZ
@given(st.one_of(
    json_values,
    st.builds(lambda s: {"streams": s}, st.lists(st.fixed_dictionaries(
        {"stream": st.one_of(json_values, st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3)),
         "values": st.lists(st.lists(st.one_of(st.text(max_size=20), st.integers(-(2**63), 2**64 - 1), json_values),
                                     max_size=4), max_size=3)}), max_size=3)),
))
def test_fuzz_json_structures(doc: object) -> None:
    try:
        b = lp.decode_push(orjson.dumps(doc), "application/json")
    except IngestError as e:
        assert isinstance(e, ALLOWED) and e.message
    else:
        b.check()


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_json_bytes(data: bytes) -> None:
    try:
        lp.decode_push(data, "application/json")
    except IngestError as e:
        assert isinstance(e, ALLOWED) and e.message


def test_python_logging_loki_client_payload() -> None:
    """The real python-logging-loki client (JSON push) posts to a capturing server; its bodies decode."""
    import logging
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import logging_loki

    got: list[tuple[str | None, bytes]] = []

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers["Content-Type"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Capture)
    t = threading.Thread(target=srv.serve_forever)
    t.start()
    handler = logging_loki.LokiHandler(url=f"http://127.0.0.1:{srv.server_port}/loki/api/v1/push",
                                       tags={"application": "billing"}, version="1")
    logger = logging.getLogger("clearsight.test.loki")
    logger.propagate = False
    logger.addHandler(handler)
    before = time.time_ns()
    try:
        logger.error("payment %s failed", "p-1", extra={"tags": {"region": "eu"}})
        logger.warning("retrying")
    finally:
        logger.removeHandler(handler)
        handler.close()
        srv.shutdown()
        srv.server_close()
        t.join()
    after = time.time_ns()
    batches = [lp.decode_push(body, ctype) for ctype, body in got]
    assert [b.body for b in batches] == [["payment p-1 failed"], ["retrying"]]
    first = batches[0]
    assert dict(first.streams[0]) == {"application": "billing", "logger": "clearsight.test.loki",
                                      "region": "eu", "severity": "error"}
    assert first.severity_text(0) == "error" and int(first.severity_number[0]) == 17
    assert all(before - 10**9 <= int(b.timestamps[0]) <= after + 10**9 for b in batches)


# --- the compiled walk (_lokipb) against upb -------------------------------------------------------

label_texts = st.one_of(
    st.sampled_from(['{a="1"}', '{a="1", level="warn"}', '{b="x\\"y"}', "", "{}", 'a="1"']),
    st.text(max_size=12),
)
entries_st = st.lists(st.tuples(
    st.integers(-(2**40), 2**40), st.integers(-5, 10**9 + 5), st.binary(max_size=20),
    st.lists(st.tuples(st.sampled_from(["level", "trace_id", "k"]), st.sampled_from(["error", "x", ""])),
             max_size=3)), max_size=4)


def _raw_pb(streams: list[tuple[str, list[tuple[int, int, bytes, list[tuple[str, str]]]]]]) -> bytes:
    req = lp.push_request_class()()
    for labels, entries in streams:
        s = req.streams.add()  # type: ignore[attr-defined]
        s.labels = labels
        for sec, nanos, line, md in entries:
            e = s.entries.add()
            e.timestamp.seconds = sec
            e.timestamp.nanos = max(-(2**31), min(2**31 - 1, nanos))
            e.line = line
            for k, v in md:
                p = e.structured_metadata.add()
                p.name, p.value = k, v
    return bytes(req.SerializeToString())


def _outcome(f: object) -> object:
    try:
        batch = f()  # type: ignore[operator]
        batch.check()
        return batch.entries()
    except IngestError:
        return "error"


def test_native_walk_is_built_and_takes_canonical_bodies() -> None:
    assert lp.NATIVE_AVAILABLE and lp._native_split is not None
    data = _raw_pb([('{a="1"}', [(1, 5, b"x", [("k", "v")])]), ('{b="2"}', [(2, 0, b"y", [])])])
    parts = lp._native_split(data, 10)
    assert isinstance(parts, tuple)
    assert parts[0] == ['{a="1"}', '{b="2"}'] and parts[2].tolist() == [1_000_000_005, 2_000_000_000]
    assert lp._native_split(data, 1) == "too_many_entries"


@FUZZ
@given(st.lists(st.tuples(label_texts, entries_st), max_size=3))
def test_native_walk_matches_upb_on_requests(streams: list[tuple[str, list[tuple[int, int, bytes, list[tuple[str, str]]]]]]) -> None:
    data = _raw_pb(streams)
    lim = LogLimits(max_line_bytes=15, max_attributes_per_entry=2)
    assert _outcome(lambda: lp.decode_protobuf(data, lim)) == _outcome(lambda: lp.decode_protobuf_upb(data, lim))


@FUZZ
@given(st.lists(st.tuples(label_texts, entries_st), min_size=1, max_size=2), st.binary(max_size=8), st.integers(0, 400))
def test_native_walk_matches_upb_on_mutations(streams: list[tuple[str, list[tuple[int, int, bytes, list[tuple[str, str]]]]]],
                                              junk: bytes, at: int) -> None:
    base = _raw_pb(streams)
    cut = at % (len(base) + 1)
    lim = LogLimits()
    for data in (base[:cut] + junk + base[cut:], base[:cut], base[:cut] + junk):
        parts = lp._native_split(data, lim.max_entries_per_request) if lp._native_split else None
        upb = _outcome(lambda d=data: lp.decode_protobuf_upb(d, lim))  # type: ignore[misc]
        if isinstance(parts, tuple):  # accepted by the fast path: must equal upb exactly
            assert _outcome(lambda p=parts: lp._from_split(p, lim)) == upb  # type: ignore[misc]
        assert _outcome(lambda d=data: lp.decode_protobuf(d, lim)) == upb  # type: ignore[misc]


def test_native_walk_falls_back_for_odd_encodings() -> None:
    group = b"\x0a\x04\x2b\x2c\x0a\x00"  # a stream holding an (unknown) group and empty labels
    wrong_wire_type = b"\x0a\x02\x08\x05"  # labels sent as a varint: upb keeps it as an unknown field
    for data in (group, wrong_wire_type):
        assert lp._native_split is not None and lp._native_split(data, 10) is None
        with pytest.raises(lp.LokiPushError, match=r"streams\[0\]: invalid stream labels ''"):
            lp.decode_protobuf(data, LogLimits())
    bad_utf8 = b"\x0a\x03\x0a\x01\xff"
    assert lp._native_split(bad_utf8, 10) is None
    with pytest.raises(lp.LokiPushError, match="invalid PushRequest protobuf"):
        lp.decode_protobuf(bad_utf8, LogLimits())


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["gzip", "deflate"]))
def test_fuzz_compressed_bodies(data: bytes, encoding: str) -> None:
    for body in (data, gzip.compress(data)):
        try:
            lp.decode_push(body, "application/json", encoding)
        except IngestError as e:
            assert isinstance(e, ALLOWED) and e.message


@FUZZ
@given(st.one_of(st.integers(-(2**63), 2**64 - 1), st.from_regex(r"[-+]?[0-9]{1,22}", fullmatch=True),
                 st.text(max_size=25), st.floats(allow_nan=False, allow_infinity=False), st.booleans()))
def test_fuzz_json_timestamp_values(ts: object) -> None:
    body = orjson.dumps({"streams": [{"stream": {"a": "1"}, "values": [[ts, "line"]]}]})
    try:
        b = lp.decode_push(body, "application/json")
    except IngestError as e:
        assert isinstance(e, lp.LokiPushError) and "timestamp" in e.message
    else:
        b.check()
        assert int(b.timestamps[0]) == int(ts)  # type: ignore[call-overload]
