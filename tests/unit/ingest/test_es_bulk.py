"""Elasticsearch _bulk decoder: shipper-shaped bodies, per-item errors, whole-request errors, fuzz."""

from __future__ import annotations

import gzip
from itertools import count

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.ingest import es_bulk as es
from clearsight.ingest.log_common import LogLimits
from clearsight.pipeline.errors import IngestError, LimitExceeded, PayloadTooLarge

NOW = 1_800_000_000_000_000_000
ALLOWED = (es.EsBulkError, LimitExceeded, PayloadTooLarge)  # a decoder raises its own error or a limit error
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ndjson(*objs: object) -> bytes:
    return b"".join(orjson.dumps(o) + b"\n" for o in objs)


def _ids() -> object:
    c = count()
    return lambda: f"gen{next(c)}"


def test_filebeat_ecs_document() -> None:
    body = ndjson(
        {"create": {"_index": "filebeat-8.11.0"}},
        {"@timestamp": "2024-05-01T10:00:00.123456789Z", "message": "GET /health 200",
         "log": {"level": "info", "file": {"path": "/var/log/app.log"}},
         "host": {"name": "web-1"}, "agent": {"type": "filebeat"}, "http": {"status": 200, "ok": True},
         "tags": ["a", "b"], "nothing": None},
    )
    r = es.decode_bulk(body, now_ns=NOW, new_id=_ids())  # type: ignore[arg-type]
    e = r.batch.entry(0)
    assert e.timestamp == 1714557600123456789
    assert e.body == "GET /health 200"
    assert e.stream == (("index", "filebeat-8.11.0"),)
    assert e.severity_text == "info" and e.severity_number == 9
    assert e.resource == (("agent.type", "filebeat"), ("host.name", "web-1"))
    assert dict(e.attributes) == {"log.file.path": "/var/log/app.log", "http.status": "200", "http.ok": "true",
                                  "tags": '["a","b"]'}
    assert r.items == [{"create": {"_index": "filebeat-8.11.0", "_id": "gen0", "_version": 1, "result": "created",
                                   "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 0,
                                   "_primary_term": 1, "status": 201}}]
    assert r.response(3) == {"took": 3, "errors": False, "items": r.items}
    assert r.entry_items == [0]


def test_rsyslog_style_default_index_epoch_millis_and_no_message() -> None:
    body = ndjson(
        {"index": {"_id": "a1"}},
        {"@timestamp": 1714557600123, "severity": "err", "host": "h", "msg": "x"},
        {"index": {}},
        {"@timestamp": "2024-05-01T10:00:00"},
    ).rstrip(b"\n")
    r = es.decode_bulk(gzip.compress(body), now_ns=NOW, default_index="syslog", content_encoding="gzip")
    assert r.batch.timestamps.tolist() == [1714557600123000000, 1714557600000000000]
    assert r.batch.body[0] == '{"severity":"err","host":"h","msg":"x"}'  # no message: the doc as JSON
    assert r.batch.severity_number.tolist() == [0, 0]
    assert next(iter(r.items[0].values()))["_id"] == "a1"
    assert len(next(iter(r.items[1].values()))["_id"]) == 20  # generated, Elasticsearch-like
    assert r.batch.streams == [(("index", "syslog"),)]
    r2 = es.decode_bulk(ndjson({"index": {}}, {"message": "m", "host": "h", "msg": "x"}), now_ns=NOW,
                        default_index="syslog")
    assert r2.batch.resources[int(r2.batch.resource_idx[0])] == (("host", "h"),)
    assert r2.batch.attributes(0) == [("msg", "x")]


def test_per_item_errors_keep_the_good_items() -> None:
    body = ndjson(
        {"index": {"_index": "ok"}}, {"message": "one"},
        {"index": {"_index": "ok"}}, {"message": "bad ts", "@timestamp": "yesterday"},
        {"index": {"_index": "Bad"}}, {"message": "bad index"},
        {"delete": {"_index": "ok", "_id": "1"}},
        {"update": {"_index": "ok", "_id": "1"}}, {"doc": {"a": 1}},
        {"create": {"_index": "ok"}}, [1, 2],
        {"create": {"_index": "ok"}}, {"message": "x" * 50},
        {"index": {"_index": "ok"}}, {"message": "two"},
    )
    r = es.decode_bulk(body, now_ns=NOW, limits=LogLimits(max_line_bytes=40))
    statuses = [next(iter(it.values()))["status"] for it in r.items]
    assert statuses == [201, 400, 400, 400, 400, 400, 400, 201]
    types = [next(iter(it.values())).get("error", {}).get("type") for it in r.items]
    assert types[1:7] == ["document_parsing_exception", "invalid_index_name_exception",
                          "illegal_argument_exception", "illegal_argument_exception",
                          "document_parsing_exception", "illegal_argument_exception"]
    assert "@timestamp" in r.items[1]["index"]["error"]["reason"]
    assert "50 bytes exceeds the limit of 40" in r.items[6]["create"]["error"]["reason"]
    assert r.batch.body == ["one", "two"] and r.entry_items == [0, 7]
    assert r.response()["errors"] is True


@pytest.mark.parametrize("ts", ["99999999999999999", 9.3e15, 2**62, "１２３"])
def test_out_of_range_timestamps_are_item_errors(ts: object) -> None:
    r = es.decode_bulk(ndjson({"index": {"_index": "a"}}, {"@timestamp": ts, "message": "m"}), now_ns=NOW)
    assert r.items[0]["index"]["status"] == 400 and "@timestamp" in r.items[0]["index"]["error"]["reason"]
    assert len(r.batch) == 0


def test_epoch_millis_forms() -> None:
    docs = [x for ts in ("1714557600123", 1714557600123, 1714557600123.5)
            for x in ({"index": {"_index": "a"}}, {"@timestamp": ts, "message": "m"})]
    r = es.decode_bulk(ndjson(*docs), now_ns=NOW)
    assert r.batch.timestamps.tolist() == [1714557600123000000, 1714557600123000000, 1714557600123500000]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json\n{}\n", "Malformed action/metadata line [1]"),
        (b'{"index":{}}\n{}\n', "index is missing"),
        (b'{"upsert":{"_index":"a"}}\n{}\n', "but found [upsert]"),
        (b'{"index":{"_index":"a"},"create":{}}\n{}\n', "exactly one action"),
        (b'{"index":{"_index":"a"}}\n', "has no document line"),
        (b'{"index":3}\n{}\n', "expected an object"),
    ],
)
def test_whole_request_errors(body: bytes, fragment: str) -> None:
    with pytest.raises(es.EsBulkError) as ei:
        es.decode_bulk(body, now_ns=NOW)
    assert fragment in ei.value.message
    assert ei.value.response()["status"] == 400


def test_limits_whole_request() -> None:
    body = ndjson(*[x for i in range(3) for x in ({"index": {"_index": f"i{i}"}}, {"message": "m"})])
    with pytest.raises(LimitExceeded, match="more than 2 entries"):
        es.decode_bulk(body, now_ns=NOW, limits=LogLimits(max_entries_per_request=2))
    with pytest.raises(LimitExceeded, match="more than 2 streams"):
        es.decode_bulk(body, now_ns=NOW, limits=LogLimits(max_streams_per_request=2))


def test_probe_answers() -> None:
    root = es.root_info()
    assert root["version"]["number"] == es.ES_VERSION and root["tagline"] == "You Know, for Search"
    assert es.license_info()["license"]["status"] == "active"
    assert es.template_answer("filebeat")["filebeat"]["index_patterns"] == ["filebeat*"]
    assert es.PRODUCT_HEADERS["X-Elastic-Product"] == "Elasticsearch"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["index", "create", "delete", "update", "_index", "_id", "@timestamp", "message",
                         "log", "level", "host", "a"]), inner, max_size=3),
    max_leaves=10,
)


@FUZZ
@given(st.lists(json_values, max_size=6))
def test_fuzz_structures(objs: list[object]) -> None:
    try:
        r = es.decode_bulk(ndjson(*objs), now_ns=NOW, default_index="d")
    except IngestError as e:
        assert isinstance(e, ALLOWED) and e.message
    else:
        assert len(r.entry_items) == len(r.batch)
        r.batch.check()


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_bytes(data: bytes) -> None:
    try:
        es.decode_bulk(data, now_ns=NOW, default_index="d")
    except IngestError as e:
        assert isinstance(e, ALLOWED) and e.message



@FUZZ
@given(st.one_of(st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=30),
                 st.from_regex(r"-?[0-9]{1,25}", fullmatch=True), st.booleans(), st.none()))
def test_fuzz_timestamp_values(ts: object) -> None:
    r = es.decode_bulk(ndjson({"index": {"_index": "a"}}, {"@timestamp": ts, "message": "m"}), now_ns=NOW)
    r.batch.check()
    assert len(r.batch) + sum(1 for it in r.items if it["index"]["status"] == 400) == 1
