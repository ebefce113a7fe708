"""AegisGuard's simple JSON shapes (ingest/simple_json.py): what each decodes to, the per-request
limits (1000 logs, 5000 metrics, 1000 RUM events, 500 spans), every bad entry refused naming it, and
hypothesis: whatever JSON comes in, the answer is a batch or an IngestError, nothing else."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.ingest.log_common import LogLimits
from clearsight.ingest.simple_json import decode_logs, decode_metrics, decode_rum, decode_traces
from clearsight.pipeline.errors import IngestError, InvalidInput, PayloadTooLarge

NOW_NS = 1_700_000_000_000_000_000
LIM = LogLimits()


def _j(doc: Any) -> bytes:
    return orjson.dumps(doc)


def test_logs() -> None:
    b = decode_logs(
        _j(
            {
                "logs": [
                    {
                        "service": "api",
                        "level": "error",
                        "message": "boom",
                        "attributes": {"user": "u1", "n": 3, "o": {"a": 1}},
                        "trace_id": "0af7651916cd43dd8448eb211c80319c",
                        "span_id": "b7ad6b7169203331",
                        "timestamp": "2023-11-14T22:13:20.5Z",
                    },
                    {"message": "hello"},
                ],
                "resource": {"service_name": "web", "host": "h1", "environment": "prod"},
            }
        ),
        LIM,
        NOW_NS,
    )
    assert len(b) == 2
    b.check()
    assert b.streams[int(b.stream_idx[0])] == (("environment", "prod"), ("host", "h1"), ("service", "api"))
    assert b.streams[int(b.stream_idx[1])] == (("environment", "prod"), ("host", "h1"), ("service", "web"))
    assert (
        b.body[0] == "boom"
        and b.severity_text(0) == "error"
        and int(b.timestamps[0]) == 1_700_000_000_500_000_000
    )
    assert dict(b.attributes(0)) == {"user": "u1", "n": "3", "o": '{"a":1}'}
    assert b.trace_id(0).hex() == "0af7651916cd43dd8448eb211c80319c" and int(b.timestamps[1]) == NOW_NS


def test_metrics() -> None:
    batch = decode_metrics(
        _j(
            {
                "metrics": [
                    {"name": "http_requests_total", "value": 7, "labels": {"route": "/x"}, "type": "counter"},
                    {
                        "name": "http_requests_total",
                        "value": 9,
                        "labels": {"route": "/x"},
                        "timestamp": "2023-11-14T22:13:21Z",
                    },
                    {"name": "temp", "value": -1.5},
                ],
                "resource": {"service_name": "api", "host": "h1"},
            }
        ),
        1_700_000_000_000,
    )
    assert len(batch.keys) == 2 and batch.num_samples == 3
    labels = {batch.decode_labels(k) for k in batch.keys}
    assert (("__name__", "temp"), ("host", "h1"), ("service", "api")) in {tuple(sorted(x)) for x in labels}
    assert sorted(batch.timestamps.tolist()) == [1_700_000_000_000, 1_700_000_000_000, 1_700_000_001_000]


def test_rum_under_either_key() -> None:
    ev = {
        "session_id": "s1",
        "event_type": "performance",
        "page_url": "https://shop.example/cart",
        "performance": {"lcp": 1200.5, "cls": 0.01},
    }
    for key in ("rum", "events"):
        b = decode_rum(_j({key: [ev, {**ev, "event_type": "error", "error": {"message": "x"}}]}), LIM, NOW_NS)
        assert b.streams[int(b.stream_idx[0])] == (("event_type", "performance"), ("source", "rum"))
        assert orjson.loads(b.body[0])["performance"]["lcp"] == 1200.5
        assert dict(b.attributes(0))["session_id"] == "s1" and b.severity_text(1) == ""


SPAN = {"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174", "name": "GET /cart",
        "start_time": "2023-11-14T22:13:20Z", "end_time": "2023-11-14T22:13:20.250Z"}


def test_traces_become_spans() -> None:
    doc = {"traces": [{**SPAN, "parent_span_id": "eee19b7ec3c1b173", "kind": "server", "status": "error",
                       "status_message": "boom", "attributes": {"http.status_code": 500, "user": "u1"}},
                      {**SPAN, "span_id": "eee19b7ec3c1b175", "service": "db"}],
           "resource": {"service_name": "shop", "host": "h1"}}
    a, b = decode_traces(_j(doc), LIM, NOW_NS).spans
    assert a.trace_id == bytes.fromhex(SPAN["trace_id"]) and a.parent_span_id == bytes.fromhex("eee19b7ec3c1b173")
    assert (a.kind, a.status_code, a.status_message) == (2, 2, "boom")
    assert a.start_ns == 1_700_000_000_000_000_000 and a.end_ns - a.start_ns == 250_000_000
    assert dict(zip(a.attr_keys, a.attr_values, strict=True)) == {"http.status_code": "500", "user": "u1"}
    assert (a.service_name, b.service_name) == ("shop", "db")
    assert dict(zip(b.resource_keys, b.resource_values, strict=True)) == {"service.name": "db", "host.name": "h1"}
    assert (b.kind, b.status_code, b.parent_span_id) == (0, 0, b"")
    [c] = decode_traces(_j({"traces": [SPAN]}), LIM, NOW_NS).spans
    assert c.service_name == "unknown_service"


@pytest.mark.parametrize(
    ("fn", "key", "item", "limit"),
    [
        (decode_logs, "logs", {"service": "a", "message": "m"}, 1000),
        (decode_metrics, "metrics", {"name": "m", "value": 1}, 5000),
        (decode_rum, "rum", {"session_id": "s", "event_type": "click", "page_url": "http://x"}, 1000),
        (
            decode_traces,
            "traces",
            {
                "trace_id": "5b8efff798038103d269b633813fc60c",
                "span_id": "eee19b7ec3c1b174",
                "name": "n",
                "start_time": "2023-11-14T22:13:20Z",
                "end_time": "2023-11-14T22:13:21Z",
            },
            500,
        ),
    ],
)
def test_per_request_limits(fn: Any, key: str, item: dict[str, Any], limit: int) -> None:
    args: tuple[Any, ...] = (LIM, NOW_NS) if fn in (decode_logs, decode_rum, decode_traces) else (NOW_NS,)
    fn(_j({key: [item] * limit}), *args)
    with pytest.raises(PayloadTooLarge, match=f"over the limit of {limit}"):
        fn(_j({key: [item] * (limit + 1)}), *args)


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        (b"{", "invalid JSON"),
        (b'{"logs": [{"service": "a", "message": "m", "attributes": {"n": 1e999}}]}', "invalid JSON"),
        (b"[]", "JSON object"),
        ({"logs": []}, "non-empty list"),
        ({"logs": {}}, "non-empty list"),
        ({"logs": [5]}, r"logs\[0\]: must be an object"),
        ({"logs": [{"message": "m"}]}, r"logs\[0\].service: required"),
        ({"logs": [{"service": "a"}]}, r"logs\[0\].message: required"),
        ({"logs": [{"service": "a", "message": "m"}, {"service": "a", "message": 5}]}, r"logs\[1\].message"),
        ({"logs": [{"service": "a", "message": "m", "level": "loud"}]}, r"logs\[0\].level"),
        ({"logs": [{"service": "a", "message": "m", "timestamp": "yesterday"}]}, r"logs\[0\].timestamp"),
        ({"logs": [{"service": "a", "message": "m", "trace_id": "xyz"}]}, r"logs\[0\].trace_id"),
        ({"logs": [{"service": "a", "message": "m", "span_id": "00"}]}, r"logs\[0\].span_id"),
        ({"logs": [{"service": "a", "message": "m", "attributes": [1]}]}, r"logs\[0\].attributes"),
        ({"logs": [{"service": "x" * 101, "message": "m"}]}, r"logs\[0\].service"),
        ({"logs": [{"service": "a", "message": "m"}], "resource": "r"}, "resource"),
    ],
)
def test_bad_logs(doc: Any, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        decode_logs(doc if isinstance(doc, bytes) else _j(doc), LIM, NOW_NS)


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({"metrics": [{"value": 1}]}, r"metrics\[0\].name: required"),
        ({"metrics": [{"name": "m"}]}, r"metrics\[0\].value"),
        ({"metrics": [{"name": "m", "value": True}]}, r"metrics\[0\].value"),
        ({"metrics": [{"name": "m", "value": "1"}]}, r"metrics\[0\].value"),
        ({"metrics": [{"name": "m", "value": 1, "type": "meter"}]}, r"metrics\[0\].type"),
        ({"metrics": [{"name": "m", "value": 1, "labels": {"a": 1}}]}, r"metrics\[0\].labels"),
        ({"metrics": [{"name": "m", "value": 1, "labels": {"__name__": "x"}}]}, r"metrics\[0\].labels"),
        (
            {"rum": [{"session_id": "s", "event_type": "scroll", "page_url": "http://x"}]},
            r"rum\[0\].event_type",
        ),
        (
            {"rum": [{"session_id": "s", "event_type": "click", "page_url": "javascript:x"}]},
            r"rum\[0\].page_url",
        ),
        ({"rum": [{"event_type": "click", "page_url": "http://x"}]}, r"rum\[0\].session_id"),
        (
            {
                "rum": [
                    {
                        "session_id": "s",
                        "event_type": "click",
                        "page_url": "http://x",
                        "performance": {"lcp": "1"},
                    }
                ]
            },
            r"rum\[0\].performance.lcp",
        ),
        (
            {"traces": [{**SPAN, "start_time": "x"}]},
            r"traces\[0\].start_time",
        ),
        ({"traces": [{**SPAN, "trace_id": "t"}]}, r"traces\[0\].trace_id: must be 32 hex digits"),
        ({"traces": [{**SPAN, "span_id": "0" * 16}]}, r"traces\[0\].span_id: must not be all zero"),
        ({"traces": [{**SPAN, "parent_span_id": "abc"}]}, r"traces\[0\].parent_span_id: must be 16 hex"),
        ({"traces": [SPAN, {**SPAN, "end_time": "2023-11-14T22:13:19Z"}]}, r"traces\[1\].end_time: before"),
        ({"traces": [{**SPAN, "kind": "server-ish"}]}, r"traces\[0\].kind: one of"),
        ({"traces": [{**SPAN, "status": "bad"}]}, r"traces\[0\].status: one of"),
        ({"traces": [{**SPAN, "attributes": [1]}]}, r"traces\[0\].attributes: must be an object"),
        ({"traces": [{k: v for k, v in SPAN.items() if k != "name"}]}, r"traces\[0\].name: required"),
    ],
)
def test_bad_metrics_rum_traces(doc: dict[str, Any], why: str) -> None:
    key = next(iter(doc))
    fn: Any = {
        "metrics": lambda b: decode_metrics(b, 0),
        "rum": lambda b: decode_rum(b, LIM, NOW_NS),
        "traces": lambda b: decode_traces(b, LIM, NOW_NS),
    }[key]
    with pytest.raises(InvalidInput, match=why):
        fn(_j(doc))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    [
        "service",
        "message",
        "level",
        "timestamp",
        "attributes",
        "trace_id",
        "span_id",
        "name",
        "value",
        "labels",
        "type",
        "session_id",
        "event_type",
        "page_url",
        "performance",
        "start_time",
        "end_time",
    ]
)
ENTRY = st.dictionaries(
    FIELDS, JSON | st.sampled_from(["info", "click", "http://x", "2023-11-14T22:13:20Z", 1.5]), max_size=8
)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(["logs", "metrics", "rum", "events", "traces"]),
    entries=st.lists(ENTRY, max_size=5),
    resource=JSON,
)
def test_fuzz_never_crashes(key: str, entries: list[dict[str, Any]], resource: Any) -> None:
    body = _j({key: entries, "resource": resource})
    for fn in (
        lambda: decode_logs(body, LIM, NOW_NS),
        lambda: decode_metrics(body, 0),
        lambda: decode_rum(body, LIM, NOW_NS),
        lambda: decode_traces(body, LIM, NOW_NS),
    ):
        try:
            fn()
        except IngestError:
            pass
