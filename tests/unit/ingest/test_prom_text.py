"""Tests of the Prometheus text 0.0.4 / OpenMetrics 1.0 parser."""

from __future__ import annotations

import math

import pytest

from clearsight.ingest.prom_text import (
    FORMAT_OPENMETRICS,
    FORMAT_TEXT,
    detect_format,
    parse_prometheus_text,
)
from clearsight.model.samples import MetricMetadata
from clearsight.pipeline.errors import InvalidInput

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def parse_text(s: str, ts: int = 1000):  # type: ignore[no-untyped-def]
    return parse_prometheus_text(s.encode(), TEXT, ts)


def parse_om(s: str, ts: int = 1000):  # type: ignore[no-untyped-def]
    return parse_prometheus_text(s.encode(), OM, ts)


def test_detect_format() -> None:
    assert detect_format(OM) == FORMAT_OPENMETRICS
    assert detect_format("Application/OpenMetrics-Text") == FORMAT_OPENMETRICS
    assert detect_format(TEXT) == FORMAT_TEXT
    assert detect_format("") == FORMAT_TEXT
    assert detect_format("text/html") == FORMAT_TEXT  # Prometheus 2.x falls back to text
    with pytest.raises(InvalidInput, match="protobuf"):
        detect_format("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily")


def test_text_basic_families_and_metadata() -> None:
    r = parse_text(
        "# HELP http_requests_total The total number of HTTP requests.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{method="post",code="200"} 1027 1395066363000\n'
        'http_requests_total{method="post",code="400"}    3 1395066363000\n'
        "\n"
        "# A normal comment.\n"
        "#\n"
        "metric_without_timestamp_and_labels 12.47\n"
        "# TYPE rpc_duration_seconds summary\n"
        'rpc_duration_seconds{quantile="0.5"} 4773\n'
        "rpc_duration_seconds_sum 1.7560473e+07\n"
        "rpc_duration_seconds_count 2693\n"
        "# TYPE u untyped\n"
        "u -Inf\n"
    )
    assert r.format == FORMAT_TEXT
    assert r.samples[0] == (
        (("__name__", "http_requests_total"), ("code", "200"), ("method", "post")),
        1027.0,
        1395066363000,
    )
    assert r.samples[2] == ((("__name__", "metric_without_timestamp_and_labels"),), 12.47, None)
    assert r.samples[4] == ((("__name__", "rpc_duration_seconds_sum"),), 1.7560473e07, None)
    assert r.samples[-1][1] == -math.inf
    assert r.lines == [3, 4, 8, 10, 11, 12, 14]
    assert r.metadata == [
        MetricMetadata("http_requests_total", "counter", "The total number of HTTP requests.", ""),
        MetricMetadata("rpc_duration_seconds", "summary", "", ""),
        MetricMetadata("u", "unknown", "", ""),
    ]
    assert r.timestamp(0) == 1395066363000
    assert r.timestamp(2) == 1000


def test_text_escapes_in_label_values_and_help() -> None:
    r = parse_text(
        '# HELP m a \\\\ backslash, a \\n newline and a \\" kept\n'
        'm{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\"",odd="\\q"} 1\n'
    )
    ((labels, _, _),) = r.samples
    assert dict(labels)["path"] == "C:\\DIR\\FILE.TXT"
    assert dict(labels)["error"] == 'Cannot find file:\n"FILE.TXT"'
    assert dict(labels)["odd"] == "\\q"
    assert r.metadata[0].help == 'a \\ backslash, a \n newline and a \\" kept'


def test_text_label_values_may_contain_braces_commas_and_hashes() -> None:
    r = parse_text('m{a="} 1,#{",b="x"} 2\n')
    assert r.samples == [((("__name__", "m"), ("a", "} 1,#{"), ("b", "x")), 2.0, None)]


def test_text_lenient_whitespace_and_trailing_comma() -> None:
    r = parse_text('m { a = "1" , b="2", }\t3\t  17  \n   \n  # comment\nn 4\t\n')
    assert r.samples[0] == ((("__name__", "m"), ("a", "1"), ("b", "2")), 3.0, 17)
    assert r.samples[1] == ((("__name__", "n"),), 4.0, None)


def test_special_values() -> None:
    r = parse_text("a NaN\nb +Inf\nc -Inf\nd Inf\ne nan\nf Infinity\ng 1e3\nh -.5\ni 1.\n")
    vals = [v for _, v, _ in r.samples]
    assert math.isnan(vals[0]) and math.isnan(vals[4])
    assert vals[1:4] == [math.inf, -math.inf, math.inf]
    assert vals[5:] == [math.inf, 1000.0, -0.5, 1.0]


def test_empty_label_values_are_dropped() -> None:
    r = parse_text('m{a="",b="1"} 1\n')
    assert r.samples[0][0] == (("__name__", "m"), ("b", "1"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("m\n", "line 1: missing value"),
        ("ok 1\nm{a=1} 2\n", "line 2: invalid label set"),
        ('m{a="1"\n', "line 1: expected ',' or '}'"),
        ('m{a="1"}2\n', "line 1: expected a blank"),
        ("m 1 2 3\n", "line 1: unexpected text after the timestamp"),
        ("m abc\n", "line 1: invalid sample value 'abc'"),
        ("m 1_000\n", "invalid sample value"),
        ("m 1e400\n", "out of range"),
        ("m 0x1p-2\n", "invalid sample value '0x1p-2'"),
        ("m +nan\n", "invalid sample value '+nan'"),
        ("m 1\r\n", "invalid sample value"),
        ("m 1 -5\n", "invalid timestamp '-5'"),
        ("ok 1\n  m 1\n", "line 2: blank before the metric name"),
        ("ok 1\n\tm 1\n", "line 2: blank before the metric name"),
        ("m 1 1.5\n", "line 1: invalid timestamp '1.5'"),
        ("m 1 99999999999999999999\n", "out of range"),
        ('m{a="1",a="2"} 1\n', "duplicate label name 'a'"),
        ('m{__name__="x"} 1\n', "duplicate label name '__name__'"),
        ("# TYPE m countr\n", "line 1: invalid metric type 'countr'"),
        (
            "# TYPE m counter\n# TYPE m gauge\n",
            "line 2: conflicting TYPE lines for metric 'm' (counter and gauge)",
        ),
        ("# HELP 9m x\n", "line 1: invalid metric name in HELP"),
        ("9m 1\n", "line 1: expected a metric name"),
        ('{a="b"} 1\n', "expected a metric name"),
        ('x 1\nm{a="1"} 1\nm{a="1"} 2\n', 'line 3: duplicate series m{a="1"} (first seen on line 2)'),
    ],
)
def test_text_errors_have_line_numbers(body: str, message: str) -> None:
    with pytest.raises(InvalidInput) as ei:
        parse_text(body)
    assert message in str(ei.value)


def test_text_tolerates_repeated_help_and_identical_type() -> None:
    r = parse_text("# HELP m first\n# TYPE m gauge\n# HELP m second\n# TYPE m gauge\nm 1\n")
    assert r.metadata == [MetricMetadata("m", "gauge", "first", "")]


def test_same_series_with_distinct_timestamps_is_not_a_duplicate() -> None:
    r = parse_text("m 1 1000\nm 2 2000\n")
    assert len(r.samples) == 2


def test_invalid_utf8_reports_line() -> None:
    with pytest.raises(InvalidInput, match="line 2: invalid UTF-8"):
        parse_prometheus_text(b'a 1\nb{x="\xff"} 1\n', TEXT, 0)


def test_text_created_lines_are_kept() -> None:
    # In 0.0.4 a `_created` line is an ordinary series (client_python exposes them as gauges).
    r = parse_text("# TYPE c_created gauge\nc_created 1.6e9\n")
    assert len(r.samples) == 1


# ------------------------------------------------------------------------------- OpenMetrics

OM_FULL = """\
# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
# TYPE go_goroutines gauge
# HELP go_goroutines Number of goroutines that currently exist.
go_goroutines 69 1605281325.123
# TYPE process_cpu_seconds counter
# UNIT process_cpu_seconds seconds
# HELP process_cpu_seconds Total user and system CPU time spent in seconds.
process_cpu_seconds_total 4.20072246e+06
process_cpu_seconds_created 1605281325.0
# TYPE req_seconds histogram
req_seconds_bucket{le="0.5"} 1 # {trace_id="KOO5S4vxi0o"} 0.67
req_seconds_bucket{le="+Inf"} 2 # {} 1.5 1605281325.0
req_seconds_count 2
req_seconds_sum 2.1
req_seconds_created 1605281325.0
# TYPE build info
build_info{version="1.0"} 1
# TYPE feature stateset
feature{feature="a"} 1
feature{feature="b"} 0
# TYPE queue gaugehistogram
queue_bucket{le="+Inf"} 3
queue_gcount 3
queue_gsum 7
# TYPE mystery unknown
mystery NaN
implicit_family 1
# EOF
"""


def test_openmetrics_full_example() -> None:
    r = parse_om(OM_FULL, ts=5)
    assert r.format == FORMAT_OPENMETRICS
    names = [dict(lbl)["__name__"] for lbl, _, _ in r.samples]
    assert "acme_http_router_request_seconds_created" not in names
    assert "process_cpu_seconds_created" not in names
    assert "req_seconds_created" not in names
    assert r.created_dropped == 3
    assert r.exemplars_dropped == 2
    assert names == [
        "acme_http_router_request_seconds_sum",
        "acme_http_router_request_seconds_count",
        "go_goroutines",
        "process_cpu_seconds_total",
        "req_seconds_bucket",
        "req_seconds_bucket",
        "req_seconds_count",
        "req_seconds_sum",
        "build_info",
        "feature",
        "feature",
        "queue_bucket",
        "queue_gcount",
        "queue_gsum",
        "mystery",
        "implicit_family",
    ]
    go = r.samples[2]
    assert go[2] == 1605281325123  # seconds with decimals -> ms, exactly
    meta = {m.metric: m for m in r.metadata}
    assert meta["acme_http_router_request_seconds"] == MetricMetadata(
        "acme_http_router_request_seconds",
        "summary",
        "Latency though all of ACME's HTTP request router.",
        "seconds",
    )
    assert meta["process_cpu_seconds"].type == "counter"
    assert meta["process_cpu_seconds"].unit == "seconds"
    assert {m.type for m in r.metadata} >= {"info", "stateset", "gaugehistogram", "unknown", "histogram"}
    assert "implicit_family" not in meta


def test_openmetrics_escapes() -> None:
    r = parse_om('# HELP m a \\"quoted\\" \\\\ \\n\nm{a="x\\"y\\\\z\\nw"} 1\n# EOF\n')
    assert r.metadata[0].help == 'a "quoted" \\ \n'
    assert dict(r.samples[0][0])["a"] == 'x"y\\z\nw'


def test_openmetrics_eof_without_trailing_newline() -> None:
    assert len(parse_om("m 1\n# EOF").samples) == 1


def test_openmetrics_gauge_created_is_kept() -> None:
    r = parse_om("# TYPE x_created gauge\nx_created 1\n# EOF\n")
    assert len(r.samples) == 1 and r.created_dropped == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("m 1\n", "must end with '# EOF'"),
        ("m 1\n# EOF\nn 2\n", "must end with '# EOF'"),
        ("m 1\n# EOF\n\n", "must end with '# EOF'"),
        ("m 1\n\nn 1\n# EOF\n", "line 2: empty line"),
        ("# a comment\n# EOF\n", "line 1: invalid comment"),
        ("m  1\n# EOF\n", "line 1: malformed sample line"),
        ("m 1 \n# EOF\n", "line 1: malformed sample line"),
        ("m\t1\n# EOF\n", "single space"),
        ('m{a="1", b="2"} 1\n# EOF\n', "line 1: invalid label set"),
        ('m{a="1",} 1\n# EOF\n', "line 1: invalid label set"),
        ("m 1 abc\n# EOF\n", "invalid timestamp 'abc'"),
        ("m 1 NaN\n# EOF\n", "invalid timestamp"),
        ("m 1 1e30\n# EOF\n", "out of range"),
        ("# TYPE m gauge\n# TYPE m gauge\n# EOF\n", "line 2: second TYPE line"),
        ("# TYPE m bogus\n# EOF\n", "invalid metric type 'bogus'"),
        ("# TYPE m untyped\n# EOF\n", "invalid metric type 'untyped'"),
        ("# TYPE m gauge\nm 1\n# HELP m late\n# EOF\n", "line 3: HELP for 'm' after its samples"),
        ("a 1\nb 1\na 2\n# EOF\n", "line 3: metric family 'a' is not contiguous"),
        ("# TYPE m counter\nm 1\n# EOF\n", "needs one of the suffixes _total, _created"),
        ("# TYPE m_bytes gauge\n# UNIT m_bytes seconds\n# EOF\n", "unit 'seconds' is not a suffix"),
        ("# TYPE i_x info\n# UNIT i_x x\n# EOF\n", "cannot have a unit"),
        ("m 1\n# EOF\n# EOF\n", "line 2: '# EOF' before the end"),
        ("m 1\n# EOF\nm 2\n# EOF\n", "line 2: '# EOF' before the end"),
        (
            '# TYPE c counter\nc_total 1 # {a="1"\n# EOF\n',
            "line 2: expected ',' or '}' in label set of the exemplar",
        ),
        ('# TYPE c counter\nc_total 1 # {a="1"}\n# EOF\n', "exemplar of 'c_total' has no value"),
        ('# TYPE c counter\nc_total 1 # {a="' + "x" * 130 + '"} 1\n# EOF\n', "exceed 128 characters"),
        ("m 1\nm 2\n# EOF\n", "line 2: duplicate series m (first seen on line 1)"),
    ],
)
def test_openmetrics_errors(body: str, message: str) -> None:
    with pytest.raises(InvalidInput) as ei:
        parse_om(body)
    assert message in str(ei.value)


def test_to_batch_applies_default_timestamp_and_honor_timestamps() -> None:
    r = parse_text("a 1 5\nb 2\n", ts=100)
    b = r.to_batch()
    assert b.timestamps.tolist() == [5, 100]
    assert r.to_batch(honor_timestamps=False).timestamps.tolist() == [100, 100]
    assert b.values.tolist() == [1.0, 2.0]
