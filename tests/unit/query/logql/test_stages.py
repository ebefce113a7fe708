"""Pipeline stages one by one, on single entries, with Loki's documented behaviour."""

from __future__ import annotations

import pytest

from clearsight.query.logql.ast import LogSelector
from clearsight.query.logql.parser import parse_expr
from clearsight.query.logql.pattern import compile_pattern
from clearsight.query.logql.stages import Pipeline, parse_logfmt
from clearsight.query.logql.template import Context, TemplateError, compile_template
from clearsight.query.logql.units import parse_bytes, parse_go_duration

TS = 1_700_000_000_123_000_000


def run(pipeline: str, line: str, stream: dict[str, str] | None = None) -> tuple[str | None, dict[str, str]]:
    sel = parse_expr('{app="a"} ' + pipeline)
    assert isinstance(sel, LogSelector)
    labels = dict(stream or {"app": "a"})
    p = Pipeline(sel.stages)
    p.base = frozenset(labels)
    out = p.run(line, labels, TS)
    return out, labels


def test_json_flattens_sanitizes_and_suffixes_stream_labels() -> None:
    line = '{"app": "x", "level": "info", "req": {"status": 200, "took.ms": 1.5, "ok": true}, "tags": [1], "n": null}'
    out, labels = run("| json", line)
    assert out == line
    assert labels == {"app": "a", "app_extracted": "x", "level": "info", "req_status": "200", "req_took_ms": "1.5",
                      "req_ok": "true"}


def test_json_parameters_and_errors() -> None:
    _, labels = run('| json s="req.status", first="list[0]", q=`["a b"]`, obj="req"',
                    '{"req": {"status": 500}, "list": ["x", "y"], "a b": "c"}')
    assert labels["s"] == "500" and labels["first"] == "x" and labels["q"] == "c" and labels["obj"] == '{"status":500}'
    out, labels = run("| json", "not json")
    assert out == "not json" and labels["__error__"] == "JSONParserErr" and labels["__error_details__"]
    out, labels = run('| json | __error__=""', "not json")
    assert out is None
    _, labels = run("| json", "[1, 2]")
    assert labels["__error__"] == "JSONParserErr"


def test_logfmt_strict_and_keep_empty() -> None:
    line = 'level=info msg="hello \\"world\\"" took=12ms bare 1x=y'
    _, labels = run("| logfmt", line)
    assert labels == {"app": "a", "level": "info", "msg": 'hello "world"', "took": "12ms", "_1x": "y"}
    _, labels = run("| logfmt --keep-empty", line)
    assert labels["bare"] == ""
    _, labels = run('| logfmt m="msg"', line)
    assert labels == {"app": "a", "m": 'hello "world"'}
    _, labels = run("| logfmt", 'a=1 =oops b=2')  # without --strict bad tokens are skipped, no error
    assert labels == {"app": "a", "a": "1", "b": "2"}
    _, labels = run("| logfmt --strict", 'a=1 =oops b=2')
    assert labels["a"] == "1" and "b" not in labels and labels["__error__"] == "LogfmtParserErr"
    assert parse_logfmt('k="unterminated', False)[1] is not None


def test_regexp_pattern_unpack_decolorize() -> None:
    _, labels = run('| regexp `(?P<method>GET|POST) (?P<path>\\S+)`', "10.0.0.1 GET /index.html 200")
    assert labels["method"] == "GET" and labels["path"] == "/index.html"
    _, labels = run('| regexp `(?P<method>PUT)`', "GET /x")
    assert "method" not in labels and "__error__" not in labels
    line = '10.1.2.3 - - [04/Dec/2026:10:00:00 +0000] "GET /api HTTP/1.1" 503 12'
    _, labels = run('| pattern `<ip> - <_> [<ts>] "<method> <path> <_>" <status> <size>`', line)
    assert labels == {"app": "a", "ip": "10.1.2.3", "ts": "04/Dec/2026:10:00:00 +0000", "method": "GET",
                      "path": "/api", "status": "503", "size": "12"}
    out, labels = run("| unpack", '{"_entry": "original line", "pod": "p1", "n": 5}')
    assert out == "original line" and labels["pod"] == "p1" and "n" not in labels
    out, _ = run("| decolorize", "\x1b[31mred\x1b[0m plain")
    assert out == "red plain"


def test_pattern_matching_rules() -> None:
    p = compile_pattern("<a> x <b>")
    assert p.match("1 x 2 x 3") == [("a", "1"), ("b", "2 x 3")]
    assert p.match("no") is None
    assert compile_pattern("GET <path>").match("POST /x") is None
    ends = compile_pattern("<_> end", for_filter=True)
    assert ends.match("a end") == [] and ends.match("a end b") is None
    for bad in ("<a><b>", "plain", "<a> <a>"):
        with pytest.raises(ValueError):
            compile_pattern(bad)


@pytest.mark.parametrize(("flt", "labels", "keep"), [
    ('| level="error"', {"level": "error"}, True),
    ('| level!="error"', {}, True),  # an absent label is ""
    ('| level=~"err.*"', {"level": "error"}, True),
    ('| level!~"err.*"', {"level": "error"}, False),
    ("| status >= 500", {"status": "503"}, True),
    ("| status == 500", {"status": "500.0"}, True),
    ("| status != 500", {"status": "501"}, True),
    ("| status < 500", {}, False),  # numeric filter on an absent label drops the line
    ("| took > 1s", {"took": "1500ms"}, True),
    ("| took <= 250ms", {"took": "1m"}, False),
    ("| size > 20MB", {"size": "21MB"}, True),
    ("| size < 1KiB", {"size": "1000"}, True),
    ('| level="error" and status >= 500', {"level": "error", "status": "404"}, False),
    ('| level="error" or status >= 500', {"level": "warn", "status": "500"}, True),
    ('| level="error", status >= 500', {"level": "error", "status": "500"}, True),
    ('| (level="warn" or level="error") status > 1', {"level": "warn", "status": "2"}, True),
])
def test_label_filters(flt: str, labels: dict[str, str], keep: bool) -> None:
    out, _ = run(flt, "line", {"app": "a", **labels})
    assert (out is not None) == keep


def test_numeric_filter_on_unparsable_value_keeps_the_line_with_an_error() -> None:
    out, labels = run("| status > 5", "line", {"app": "a", "status": "abc"})
    assert out == "line" and labels["__error__"] == "LabelFilterErr"
    out, _ = run('| status > 5 | __error__=""', "line", {"app": "a", "status": "abc"})
    assert out is None


def test_line_and_label_format_drop_keep() -> None:
    out, labels = run('| logfmt | line_format "{{.level | ToUpper}}: {{.msg}} ({{ __line__ | len }})"',
                      "level=warn msg=disk")
    assert out == "WARN: disk (19)"
    _, labels = run('| logfmt | label_format lvl=level, both="{{.level}}-{{.msg}}"', "level=warn msg=disk")
    assert "level" not in labels and labels["lvl"] == "warn" and labels["both"] == "warn-disk"
    _, labels = run('| logfmt | drop msg, level="info"', "level=warn msg=disk")
    assert labels == {"app": "a", "level": "warn"}
    _, labels = run('| logfmt | keep level, msg=~"d.*"', "level=warn msg=disk")
    assert labels == {"level": "warn", "msg": "disk"}
    out, labels = run('| line_format "{{ div 1 0 }}"', "x")
    assert out == "x" and labels["__error__"] == "TemplateFormatErr"


def test_line_filters_after_parsers_run_on_the_formatted_line() -> None:
    out, _ = run('| logfmt | line_format "{{.msg}}" |= "disk" != "full" |~ "d.s" |> "<_>k"', "level=warn msg=disk")
    assert out == "disk"
    out, _ = run('| line_format "{{.app}}" |= "zzz" or "a"', "x")
    assert out == "a"
    out, _ = run('| line_format "{{.app}}" != "zzz" or "a"', "x")
    assert out is None
    out, _ = run('| line_format "abc" !> "<_>c"', "x")
    assert out is None


@pytest.mark.parametrize(("tpl", "want"), [
    ("{{.a | ToLower}}-{{ToUpper .a}}", "hi-HI"),
    ('{{ printf "%05.1f|%-4s|%d" 3.14159 .a 7 }}', "003.1|hi  |7"),
    ('{{ if eq .a "hi" }}y{{ else if eq .a "x" }}x{{ else }}n{{ end }}', "y"),
    ('{{ default "none" .missing }} {{ default "none" .a }}', "none hi"),
    ('{{ regexReplaceAll "(h)(i)" .a "${2}${1}" }} {{ regexReplaceAllLiteral "h" .a "$1" }}', "ih $1i"),
    ('{{ replace "h" "j" .a }} {{ trimPrefix "h" .a }} {{ trimSuffix "i" .a }} {{ trim "  x " }}', "ji i h x"),
    ('{{ substr 0 1 .a }} {{ trunc 1 .a }} {{ repeat 2 .a }} {{ contains "i" .a }}', "h h hihi true"),
    ("{{ __timestamp__ | unixEpoch }} {{ __timestamp__ | unixEpochMillis }}", "1700000000 1700000000123"),
    ('{{ date "2006-01-02 15:04:05.000" __timestamp__ }}', "2023-11-14 22:13:20.123"),
    ('{{ add 1 2 }} {{ sub 5 7 }} {{ mulf 1.5 2 }} {{ divf 1 4 }} {{ ceil 1.2 }} {{ round 2.567 2 }}',
     "3 -2 3 0.25 2 2.57"),
    ('{{ .a | b64enc }} {{ "aGk=" | b64dec }} {{ urlencode "a b&c" }}', "aGk= hi a+b%26c"),
    ('{{ alignLeft 4 .a }}|{{ alignRight 4 .a }}', "hi  |  hi"),
])
def test_template_functions(tpl: str, want: str) -> None:
    assert compile_template(tpl).render(Context({"a": "hi"}, "the line", TS)) == want


def test_template_errors() -> None:
    for bad in ("{{ .a ", "{{ nosuch .a }}", "{{ if .a }}x", "{{ end }}"):
        with pytest.raises(TemplateError):
            compile_template(bad)
    with pytest.raises(TemplateError):
        compile_template('{{ b64dec "%%%" }}').render(Context({}, "", 0))


def test_units() -> None:
    assert parse_go_duration("1h30m") == 5400.0
    assert parse_go_duration("1.5s") == 1.5
    assert parse_go_duration("250ms") == 0.25
    assert parse_go_duration("-2us") == -2e-6
    assert parse_go_duration("0") == 0.0
    assert parse_go_duration("5") is None and parse_go_duration("1d") is None
    assert parse_bytes("20MB") == 20e6 and parse_bytes("1KiB") == 1024 and parse_bytes("3 gib") == 3 * 2**30
    assert parse_bytes("42") == 42 and parse_bytes("4 parsecs") is None


def test_label_hints_extract_only_what_is_read() -> None:
    sel = parse_expr('{app="a"} | json | status >= 500')
    assert isinstance(sel, LogSelector)
    line = '{"status": 503, "req": {"path": "/x", "id": 7}, "other": "y", "a.b": "c"}'
    for needed, want in ((frozenset({"req_path"}), {"status": "503", "req_path": "/x"}),
                         (frozenset({"a_b"}), {"status": "503", "a_b": "c"}),
                         (None, {"status": "503", "req_path": "/x", "req_id": "7", "other": "y", "a_b": "c"})):
        p = Pipeline(sel.stages, needed)
        labels = {"app": "a"}
        p.base = frozenset(labels)
        assert p.run(line, labels, TS) == line
        assert labels == {"app": "a", **want}, needed
    # a template may read anything: no hints before it
    sel = parse_expr('{app="a"} | logfmt | line_format "{{.other}}"')
    assert isinstance(sel, LogSelector)
    p = Pipeline(sel.stages, frozenset({"x"}))
    labels = {"app": "a"}
    assert p.run("other=1 x=2", labels, TS) == "1" and labels == {"app": "a", "other": "1", "x": "2"}


def test_ip_filters() -> None:
    from clearsight.query.logql.ipmatch import compile_ip

    line = "client 10.1.2.3:5000 -> server [2001:db8::1]"
    assert run('|= ip("10.0.0.0/8")', line)[0] == line
    assert run('|= ip("2001:db8::/32")', line)[0] == line
    assert run('|= ip("192.168.0.0/16")', line)[0] is None
    assert run('!= ip("10.1.2.3")', line)[0] is None
    for flt, addr, keep in (('| addr = ip("192.168.4.5-192.168.4.20")', "192.168.4.7", True),
                            ('| addr = ip("192.168.4.5-192.168.4.20")', "192.168.4.21", False),
                            ('| addr != ip("10.0.0.0/8")', "10.9.9.9", False),
                            ('| addr != ip("10.0.0.0/8")', "not an ip", True),
                            ('| addr = ip("::1")', "::1", True)):
        assert (run(flt, "x", {"app": "a", "addr": addr})[0] is not None) == keep, (flt, addr)
    with pytest.raises(ValueError):
        compile_ip("10.0.0.9-10.0.0.1")
