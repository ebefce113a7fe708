"""Template expansion: Go-template syntax subset and Prometheus' functions, values printed as Go does."""

from __future__ import annotations

import pytest

from clearsight.rules.template import TemplateData, TemplateError, check, expand, go_e, go_float
from clearsight.rules.types import Sample


def _data(value: float = 0.5, **labels: str) -> TemplateData:
    return TemplateData(Labels=labels or {"instance": "web-1:9100", "job": "node"}, ExternalLabels={"dc": "eu"},
                        ExternalURL="http://cs.example:9800/prefix", Value=value)


@pytest.mark.parametrize(("v", "text"), [(0.5, "0.5"), (1e6, "1e+06"), (123456.0, "123456"), (1234567.0, "1.234567e+06"),
                                         (1.5e-7, "1.5e-07"), (100.0, "100"), (-2.5, "-2.5"), (float("nan"), "NaN"),
                                         (float("inf"), "+Inf")])
def test_values_print_like_go(v: float, text: str) -> None:
    assert go_float(v) == text
    assert expand("{{ $value }}", _data(v)) == text


def test_go_e_is_strconv_e() -> None:
    assert [go_e(v) for v in (0.0, 1.0, 0.5, 123.0, 1e21, -2.5)] == ["0e+00", "1e+00", "5e-01", "1.23e+02", "1e+21",
                                                                      "-2.5e+00"]


@pytest.mark.parametrize(("src", "out"), [
    ("{{ $labels.instance }} of {{ .Labels.job }}", "web-1:9100 of node"),
    ("{{ $labels.missing }}|", "|"),  # missingkey=zero
    ("{{ $externalLabels.dc }} {{ $externalURL }} {{ externalURL }} {{ pathPrefix }}",
     "eu http://cs.example:9800/prefix http://cs.example:9800/prefix /prefix"),
    ("{{ $value | humanizePercentage }}", "50%"),
    ("{{ humanize 1234567 }} {{ humanize 0.0012 }} {{ humanize 0 }}", "1.235M 1.2m 0"),
    ("{{ humanize1024 1048576 }} {{ humanize1024 0.5 }}", "1Mi 0.5"),
    ("{{ humanizeDuration 90061 }}|{{ humanizeDuration 3661 }}|{{ humanizeDuration 61 }}|{{ humanizeDuration 1.5 }}|"
     "{{ humanizeDuration 0.0015 }}|{{ humanizeDuration 0 }}", "1d 1h 1m 1s|1h 1m 1s|1m 1s|1.5s|1.5ms|0s"),
    ("{{ humanizeTimestamp 1435065584.128 }}", "2015-06-23 13:19:44.128 +0000 UTC"),
    ('{{ printf "%.2f|%d|%s|%5.1f|%q|%v" 3.14159 42 "x" 2.0 "q" 1e6 }}', '3.14|42|x|  2.0|"q"|1e+06'),
    ('{{ "web front" | title }} {{ toUpper "a" }} {{ toLower "B" }}', "Web Front A b"),
    ('{{ if match "^web" $labels.instance }}yes{{ else }}no{{ end }}', "yes"),
    ('{{ reReplaceAll "(.*):(.*)" "$2/$1" $labels.instance }}', "9100/web-1"),
    ("{{ $labels.instance | stripPort }} {{ stripDomain \"db.example.com:5432\" }}", "web-1 db:5432"),
    ("{{ if gt $value 0.9 }}high{{ else if gt $value 0.4 }}mid{{ else }}low{{ end }}", "mid"),
    ("{{ $x := 2 }}{{ if eq $x 2 }}two{{ end }}{{ $x = 3 }}{{ $x }}", "two3"),
    ("{{ and 1 0 }} {{ or 0 2 }} {{ not true }} {{ len \"abc\" }} {{ index $labels \"job\" }}", "0 2 false 3 node"),
    ("{{- /* a comment */ -}}  a  {{- \" b\" }}", "a b"),
    ("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", "instance=web-1:9100;job=node;"),
    ('{{ with "x" }}{{ . }}{{ else }}none{{ end }}{{ with "" }}{{ . }}{{ else }}none{{ end }}', "xnone"),
    ("{{ (printf \"%s-%s\" \"a\" \"b\") | toUpper }}", "A-B"),
    ('{{ parseDuration "1m30s" }}', "90"),
])
def test_expansions(src: str, out: str) -> None:
    assert expand(src, _data()) == out


def test_query_first_value_label_and_range() -> None:
    calls: list[tuple[str, int]] = []

    def query(q: str, t: int) -> list[Sample]:
        calls.append((q, t))
        return [Sample((("instance", "b"),), 2.0), Sample((("instance", "a"),), 1.0)]

    d = _data()
    assert expand('{{ query "up" | first | value }}', d, query, 5000) == "2"
    assert expand('{{ with query "up" }}{{ . | first | label "instance" }}{{ end }}', d, query, 5000) == "b"
    assert expand('{{ range query "up" | sortByLabel "instance" }}{{ .Labels.instance }}={{ .Value }} {{ end }}',
                  d, query, 5000) == "a=1 b=2 "
    assert calls[0] == ("up", 5000)


def test_first_of_an_empty_result_is_an_error() -> None:
    with pytest.raises(TemplateError, match="first"):
        expand('{{ query "nothing" | first | value }}', _data(), lambda q, t: [], 0)


@pytest.mark.parametrize(("src", "message"), [
    ("{{ nosuchfunc }}", 'function "nosuchfunc" not defined'),
    ("{{ if true }}open", "unexpected EOF"),
    ("{{ end }}", "unexpected {{end}}"),
    ('{{ define "x" }}{{ end }}', "not supported"),
    ("a\n{{ $labels.x | }}", "template: t:2:"),
])
def test_parse_errors_name_the_template_and_line(src: str, message: str) -> None:
    with pytest.raises(TemplateError, match="template: t") as e:
        check(src, "t")
    assert message in str(e.value)


def test_expansion_error_and_step_bound() -> None:
    with pytest.raises(TemplateError, match="wrong number of args"):
        expand("{{ humanize }}", _data())
    with pytest.raises(TemplateError, match="too expensive"):
        expand("{{ range 1000 }}{{ range 1000 }}x{{ end }}{{ end }}", _data())
