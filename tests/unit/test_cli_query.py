"""``clearsight query``: result counts, --step without --range, warnings/infos on stderr, CSV with
ISO-8601 UTC times and one column per label, errors in the CLI's own flags. Queries run against the
real application in process (Starlette's TestClient is an httpx.Client)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from clearsight.api.app import create_app
from clearsight.cli.main import app as cli_app
from clearsight.cli.query import CliError, cli_words, iso_utc, notes, render, run_query, summary
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import build

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}
URL = "http://testserver"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            yield c
    finally:
        built.store.close()


def _write_temps(client: TestClient) -> float:
    now = int(time.time()) * 1000
    series = [TimeSeries([("__name__", "temp"), ("room", room)], [(now - 60_000 * i, 20.0 + i) for i in range(5)])
              for room in ("a", "b")]
    series.append(TimeSeries([("__name__", "temp"), ("room", "c"), ("floor", "2")], [(now, 19.5)]))
    r = client.post("/api/v1/write", content=encode_snappy(WriteRequest(series, [])), headers=RW_HEADERS)
    assert r.status_code == 204
    return now / 1000


def _q(client: TestClient, expr: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("at", None)
    kw.setdefault("range_", None)
    kw.setdefault("step", None)
    return run_query(URL, expr, client=client, **kw)


def test_scalar_result_is_not_counted_as_two(client: TestClient) -> None:
    body = _q(client, "1+1")
    assert summary(body["data"]) == "scalar"
    out = render(body, "table")
    assert "scalar" in out and "results" not in out and "2" in out


def test_vector_and_matrix_summaries_count_series_and_points(client: TestClient) -> None:
    now = _write_temps(client)
    body = _q(client, "temp", at=str(now))
    assert summary(body["data"]) == "vector (3 series)"
    rng = _q(client, "temp", at=str(now), range_="4m", step="1m")
    assert summary(rng["data"]) == "matrix (3 series, 11 points)"  # a, b: 5 steps each; c: 1


def test_step_without_range_is_rejected_before_any_request() -> None:
    with pytest.raises(CliError, match="--step needs --range"):
        run_query("http://127.0.0.1:1", "up", at=None, range_=None, step="1m")
    result = CliRunner().invoke(cli_app, ["query", "up", "--step", "1m", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "--step needs --range" in result.stderr


def test_csv_has_iso_utc_times_and_one_column_per_label(client: TestClient) -> None:
    now = _write_temps(client)
    body = _q(client, "temp", at=str(now), range_="1m", step="1m")
    rows = list(csv.reader(io.StringIO(render(body, "csv"))))
    assert rows[0] == ["__name__", "floor", "room", "time", "value"]
    by_room = {(r[2], r[3]): r for r in rows[1:]}
    stamp = iso_utc(now)
    assert stamp.endswith("Z") and "T" in stamp
    assert by_room[("c", stamp)] == ["temp", "2", "c", stamp, "19.5"]
    assert by_room[("a", stamp)] == ["temp", "", "a", stamp, "20"]
    scalar = list(csv.reader(io.StringIO(render(_q(client, "3", at="1700000000.25"), "csv"))))
    assert scalar == [["time", "value"], ["2023-11-14T22:13:20.250Z", "3"]]


def test_iso_utc() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(1.5) == "1970-01-01T00:00:01.500Z"


def test_warnings_and_infos_are_collected_for_stderr(client: TestClient) -> None:
    now = _write_temps(client)
    body = _q(client, "rate(temp[5m])", at=str(now))  # rate of a name that does not look like a counter
    lines = notes(body)
    assert lines and all(line.startswith(("warning: ", "info: ")) for line in lines)
    assert any("temp" in line for line in lines)
    assert all(line not in render(body, "table") for line in lines)
    assert notes({"warnings": ["w1"], "infos": ["i1"]}) == ["warning: w1", "info: i1"]


def test_too_many_points_error_speaks_the_cli_flags(client: TestClient) -> None:
    with pytest.raises(CliError) as e:
        _q(client, "1", at="100000", range_="30d", step="1s")
    assert "--step" in str(e.value) and "?step=" not in str(e.value)
    assert "Try a larger --step or a shorter --range" in str(e.value)
    with pytest.raises(CliError, match="invalid --step '1x'"):
        _q(client, "1", range_="1h", step="1x")
    with pytest.raises(CliError, match="invalid --time"):
        _q(client, "1", at="yesterday")


def test_cli_words_rewrites_parameter_names() -> None:
    assert cli_words('invalid parameter "time": cannot parse "x"') == 'invalid --time: cannot parse "x"'
    assert cli_words('invalid parameter "query": 1:3: parse error') == "invalid expression: 1:3: parse error"
