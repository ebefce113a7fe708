"""The dashboard check: what is kept, and every refusal names its field; any JSON value either parses
or raises DashboardError (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.dashboards.model import MAX_PANELS, DashboardError, parse_dashboard

GOOD = {
    "title": "Hosts",
    "panels": [
        {
            "title": "CPU",
            "type": "timeseries",
            "query": 'rate(node_cpu_seconds_total{instance="$host"}[1m])',
            "unit": "percent",
            "width": 2,
        },
        {"title": "Errors", "type": "logs", "query": '{job="api"} |= "error"'},
    ],
    "variables": [{"name": "host", "label": "instance", "match": "node_uname_info"}],
}


def test_a_good_dashboard_is_kept_with_defaults() -> None:
    d = parse_dashboard(GOOD)
    assert d.title == "Hosts"
    assert d.panels[1] == {
        "title": "Errors",
        "type": "logs",
        "query": '{job="api"} |= "error"',
        "unit": "",
        "width": 1,
    }
    assert d.variables == ({"name": "host", "label": "instance", "match": "node_uname_info"},)
    assert parse_dashboard(d.doc()) == d  # what is stored parses back to itself


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"colour": "red"}, "colour"),
        ({"panels": {}}, "panels"),
        ({"panels": [{"title": "x", "type": "pie", "query": "up"}]}, "panels[0].type"),
        ({"panels": [{"title": "x", "type": "stat"}]}, "panels[0].query"),
        ({"panels": [{"title": "x", "type": "stat", "query": "up", "unit": "furlongs"}]}, "panels[0].unit"),
        ({"panels": [{"title": "x", "type": "stat", "query": "up", "width": 3}]}, "panels[0].width"),
        ({"panels": [{"title": "x", "type": "stat", "query": "up", "width": True}]}, "panels[0].width"),
        ({"panels": ["up"]}, "panels[0]"),
        ({"panels": [{"title": "x", "type": "stat", "query": "up"}] * (MAX_PANELS + 1)}, "panels"),
        ({"variables": [{"name": "1x", "label": "instance"}]}, "variables[0].name"),
        ({"variables": [{"name": "a", "label": "in-stance"}]}, "variables[0].label"),
        ({"variables": [{"name": "a", "label": "x"}, {"name": "a", "label": "y"}]}, "variables[1].name"),
    ],
)
def test_refusals_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DashboardError) as e:
        parse_dashboard({**GOOD, **change})
    assert str(e.value).startswith(f"{field}: ")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "title",
                    "panels",
                    "variables",
                    "type",
                    "query",
                    "unit",
                    "width",
                    "name",
                    "label",
                    "match",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_parses_or_is_refused_with_a_field(doc: Any) -> None:
    try:
        d = parse_dashboard(doc)
    except DashboardError as e:
        assert ": " in str(e)
    else:
        assert parse_dashboard(d.doc()) == d
