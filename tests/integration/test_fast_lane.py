"""The fast lane (api/fast_lane.py) against the usual path, over real sockets: two real servers,
``server.fast_lane`` on and off, get the same data and the same requests (anonymous loopback, basic
auth, API keys, wrong Host, bad tenant header, cross-organisation access, compressed large answers,
bad and failing queries, timeouts, stats, limits, range queries, 401 and 429) and answer each alike:
status, body, headers but the trace ids and the date; and leave the same side effects (usage
counts, audit entries, request-duration histogram counts). Then the protocol: keep-alive,
pipelining, ``Connection: close``, HTTP/1.0, the header deadline, and a client going away during a
query on the pool."""

from __future__ import annotations

import base64
import re
import socket
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cramjam
import httpx
import orjson
import pytest

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_write_request, snappy
from tests.support.peers import Proc, start_clearsight

# T below must stay recent: run first (tests/conftest.py); and on one xdist worker, in order: the
# module's servers are its own per worker, and test_side_effects_alike counts what the matrix did.
pytestmark = [pytest.mark.clock_bound, pytest.mark.xdist_group("fast_lane")]
PASSWORD_RE = re.compile(r"with password:\s+(\S+)")
VOLATILE = {"date", "x-trace-id", "traceparent"}
NOW_MS = int(time.time() * 1000) // 1000 * 1000
T = str(NOW_MS / 1000 - 60)  # the instant queries' time: recent (inline once proven cheap)


def _case_id(value: object) -> str | None:
    """Test ids without the clock's time: xdist's workers collect at different instants and must
    name every case alike."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.replace(T, "T") if isinstance(value, str) else None
SERIES = 1500  # "big" series: an answer of ~150 KB, compressed on a thread (>= 128 KiB)


@dataclass
class Server:
    proc: Proc
    password: str
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return self.proc.url


def _write(url: str, series: list[TimeSeries]) -> None:
    body = snappy(encode_write_request(WriteRequest(timeseries=series)))
    r = httpx.post(url + "/api/v1/write", content=body, timeout=30,
                   headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
    assert r.status_code == 204, r.text


def _data() -> list[TimeSeries]:
    stamps = [NOW_MS - 600_000 + i * 15_000 for i in range(40)]
    out = [TimeSeries([("__name__", "m"), ("i", str(i))], [(t, float(i + k)) for k, t in enumerate(stamps)])
           for i in range(3)]
    out += [TimeSeries([("__name__", "big"), ("instance", f"host-{i:05d}.example.internal:9100"), ("job", "node")],
                       [(t, float(i)) for t in stamps]) for i in range(SERIES)]
    return out


KEYS = (("viewer", "viewer", None), ("limited", "viewer", None), ("other", "viewer", "team-b"))


def _start(tmp: Path, name: str, config_yaml: str, keys: tuple[tuple[str, str, str | None], ...]) -> Server:
    proc = start_clearsight(tmp / name, config_yaml=config_yaml)
    try:
        found = PASSWORD_RE.findall(proc.log())
        assert len(found) == 1, proc.log()
        srv = Server(proc, found[0], {})
        admin = _basic("admin", srv.password)
        if any(org for _, _, org in keys):
            assert httpx.post(srv.url + "/api/v1/admin/orgs", json={"name": "team-b"}, headers=admin,
                              timeout=30).status_code == 200
        for key_name, role, org in keys:
            headers = admin if org is None else {**admin, "X-Scope-OrgID": org}
            r = httpx.post(srv.url + "/api/v1/admin/apikeys", json={"name": key_name, "role": role},
                           headers=headers, timeout=30)
            assert r.status_code == 200, r.text
            srv.keys[key_name] = r.json()["data"]["key"]
    except BaseException:
        proc.stop()
        raise
    return srv


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


OPEN = """
tenancy:
  trust_tenant_header: true
server:
  fast_lane: {lane}
"""
CLOSED = """
auth:
  anonymous: "off"
  rate_limit_key: 1
  rate_limit_key_burst: 3
server:
  fast_lane: {lane}
"""


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Server, Server]]]:
    tmp = tmp_path_factory.mktemp("fastlane")
    started: list[Server] = []
    try:
        for kind, yaml, keys in (("open", OPEN, KEYS), ("closed", CLOSED, KEYS[1:2])):
            for lane in ("true", "false"):
                started.append(_start(tmp, f"{kind}-{lane}", yaml.format(lane=lane), keys))
        for srv in started[:2]:
            _write(srv.url, _data())
        yield {"open": (started[0], started[1]), "closed": (started[2], started[3])}
    finally:
        for srv in started:
            srv.proc.stop()


def _normal(r: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    headers = sorted((k, v) for k, v in r.headers.multi_items() if k.lower() not in VOLATILE)
    body: Any = r.content
    if r.headers.get("content-encoding") == "zstd":  # httpx decodes gzip itself
        body = bytes(cramjam.zstd.decompress(r.content))
    if r.headers.get("content-type", "").startswith("application/json"):
        body = orjson.loads(body)
        stats = body.get("data", {}).get("stats") if isinstance(body.get("data"), dict) else None
        if stats is not None:  # timings are measured, not computed
            stats["timings"] = sorted(stats["timings"])
            for h in ("content-length",):
                headers = [(k, v) for k, v in headers if k != h]
    return r.status_code, headers, body


def _same(on: Server, off: Server, path: str, params: dict[str, str], headers: dict[str, str],
          times: int = 3) -> int:
    """The request ``times`` times on both servers (the first of a query shape goes to the query
    pool, the next ones inline once proven cheap): the same answers. Returns the status."""
    status = 0
    for _ in range(times):
        a = httpx.get(on.url + path, params=params, headers=headers, timeout=30)
        b = httpx.get(off.url + path, params=params, headers=headers, timeout=30)
        assert _normal(a) == _normal(b), (path, params, headers)
        assert a.headers["x-trace-id"] and a.headers["traceparent"].split("-")[1] == a.headers["x-trace-id"]
        status = a.status_code
    return status


def _with_keys(srv: Server, headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for k, v in headers.items():
        if v.startswith("KEY:"):
            v = "Bearer " + srv.keys[v[4:]]
        elif v == "BASIC":
            v = _basic("admin", srv.password)["Authorization"]
        out[k] = v
    return out


OPEN_MATRIX: list[tuple[str, dict[str, str], dict[str, str], int]] = [
    ("/api/v1/query", {"query": "1", "time": T}, {}, 200),
    ("/api/v1/query", {"query": "m", "time": T}, {}, 200),
    ("/api/v1/query", {"query": "sum(m)", "time": T}, {"Authorization": "BASIC"}, 200),
    ("/api/v1/query", {"query": "m", "time": T}, {"Authorization": "KEY:viewer"}, 200),
    ("/api/v1/query", {"query": "m", "time": T}, {"Authorization": "KEY:other"}, 200),  # team-b: no data
    ("/api/v1/query", {"query": "m", "time": T}, {"Authorization": "Bearer cs_not_a_key"}, 401),
    ("/api/v1/query", {"query": "m", "time": T}, {"Authorization": "Basic !!!"}, 401),
    ("/api/v1/query", {"query": "m", "time": T}, {"Host": "evil.example"}, 421),
    ("/api/v1/query", {"query": "m", "time": T}, {"X-Scope-OrgID": "bad tenant!"}, 400),
    ("/api/v1/query", {"query": "m", "time": T}, {"X-Scope-OrgID": "team-b", "Authorization": "BASIC"}, 200),
    ("/api/v1/query", {"query": "m", "time": T}, {"X-Scope-OrgID": "team-b", "Authorization": "KEY:viewer"}, 403),
    ("/api/v1/query", {"query": "big", "time": T}, {"Accept-Encoding": "gzip"}, 200),
    ("/api/v1/query", {"query": "big", "time": T}, {"Accept-Encoding": "zstd"}, 200),
    ("/api/v1/query", {"query": "big", "time": T}, {"Accept-Encoding": "identity"}, 200),
    ("/api/v1/query", {"query": "big", "time": T, "limit": "20"}, {"Accept-Encoding": "gzip, zstd"}, 200),
    ("/api/v1/query", {"query": "m{i=~'0|1'}", "time": T}, {"Accept-Encoding": "gzip"}, 200),
    ("/api/v1/query", {"query": "sum(", "time": T}, {}, 400),
    ("/api/v1/query", {"query": "", "time": T}, {}, 400),
    ("/api/v1/query", {"query": "m", "time": "yesterday"}, {}, 400),
    ("/api/v1/query", {"query": 'label_replace(m, "i", "x", "", "")', "time": T}, {}, 422),
    ("/api/v1/query", {"query": "m", "time": T, "timeout": "5s"}, {}, 200),
    ("/api/v1/query", {"query": "m", "time": T, "timeout": "soon"}, {}, 400),
    ("/api/v1/query", {"query": "m", "time": T, "stats": "all"}, {}, 200),
    ("/api/v1/query", {"query": "m", "time": T, "limit": "1"}, {}, 200),
    ("/api/v1/query", {"query": "m", "time": T, "limit": "-1"}, {}, 400),
    ("/api/v1/query", {"query": "m", "time": T}, {"Traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}, 200),
    ("/api/v1/query_range", {"query": "rate(m[2m])", "start": str(NOW_MS / 1000 - 300), "end": T, "step": "15"},
     {}, 200),
    ("/api/v1/query_range", {"query": "m", "start": str(NOW_MS / 1000 - 300), "end": T, "step": "30",
                             "stats": "all"}, {"Authorization": "KEY:viewer"}, 200),
    ("/api/v1/query_range", {"query": "big", "start": str(NOW_MS / 1000 - 120), "end": T, "step": "60"},
     {"Accept-Encoding": "gzip"}, 200),
    ("/api/v1/query_range", {"query": "m", "start": T, "end": str(NOW_MS / 1000 - 300), "step": "15"}, {}, 400),
    ("/api/v1/query_range", {"query": "m[5m]", "start": T, "end": T, "step": "15"}, {}, 400),
    # Grafana's variable and explore reads
    ("/api/v1/series", {"match[]": "m"}, {}, 200),
    ("/api/v1/series", {"match[]": "m", "limit": "1"}, {}, 200),
    ("/api/v1/series", {"match[]": "big", "start": str(NOW_MS / 1000 - 300), "end": T}, {"Accept-Encoding": "gzip"},
     200),
    ("/api/v1/series", {}, {}, 400),
    ("/api/v1/series", {"match[]": "m{"}, {}, 400),
    ("/api/v1/labels", {}, {}, 200),
    ("/api/v1/labels", {"match[]": "big", "start": str(NOW_MS / 1000 - 300), "end": T},
     {"Authorization": "KEY:viewer"}, 200),
    ("/api/v1/labels", {"limit": "x"}, {}, 400),
    ("/api/v1/label/i/values", {}, {}, 200),
    ("/api/v1/label/U__i/values", {"match[]": "m"}, {}, 200),
    ("/api/v1/label/instance/values", {}, {"Accept-Encoding": "gzip"}, 200),
    ("/api/v1/label/instance/values", {"limit": "3"}, {"Accept-Encoding": "zstd"}, 200),
    ("/api/v1/label/job/values", {"match[]": "big"}, {"Authorization": "KEY:other"}, 200),  # team-b: none
    ("/api/v1/label/__name__/values", {"start": "yesterday"}, {}, 400),
    ("/api/v1/label/__name__/values", {}, {"X-Scope-OrgID": "team-b", "Authorization": "KEY:viewer"}, 403),
]


@pytest.mark.parametrize(("path", "params", "headers", "status"), OPEN_MATRIX, ids=_case_id)
def test_the_lanes_answer_alike(pairs: dict[str, tuple[Server, Server]], path: str, params: dict[str, str],
                                headers: dict[str, str], status: int) -> None:
    on, off = pairs["open"]
    a_h, b_h = _with_keys(on, headers), _with_keys(off, headers)  # each server's own keys and password
    for _ in range(3):  # the first of a query shape goes to the query pool, the next ones inline
        a = httpx.get(on.url + path, params=params, headers=a_h, timeout=30)
        b = httpx.get(off.url + path, params=params, headers=b_h, timeout=30)
        assert _normal(a) == _normal(b), (path, params, headers)
        assert a.status_code == status, a.text
        assert a.headers["traceparent"].split("-")[1] == a.headers["x-trace-id"]


RANGE = {"start": str(NOW_MS / 1000 - 300), "end": T, "step": "15"}
FORM = "application/x-www-form-urlencoded"
# Form POSTs as Grafana sends them: (path, query string, body (a form, or raw bytes), headers, status)
POST_MATRIX: list[tuple[str, dict[str, str], dict[str, str] | bytes, dict[str, str], int]] = [
    ("/api/v1/query", {}, {"query": "1", "time": T}, {}, 200),
    ("/api/v1/query", {}, {"query": "m", "time": T}, {"Authorization": "KEY:viewer"}, 200),
    ("/api/v1/query", {}, {"query": "m", "time": T}, {"Authorization": "BASIC"}, 200),
    ("/api/v1/query", {"query": "m"}, {"query": "sum(m)", "time": T}, {}, 200),  # the body's value wins
    ("/api/v1/query", {"time": T}, {"query": "m"}, {}, 200),  # merged
    ("/api/v1/query", {}, {"query": "sum(", "time": T}, {}, 400),
    ("/api/v1/query", {}, {"query": "m", "time": T}, {"X-Scope-OrgID": "team-b", "Authorization": "KEY:viewer"}, 403),
    ("/api/v1/query", {}, {"query": "m", "time": T}, {"Authorization": "Bearer cs_not_a_key"}, 401),
    ("/api/v1/query", {}, {"query": "big", "time": T}, {"Accept-Encoding": "zstd"}, 200),  # compressed on a thread
    ("/api/v1/query", {}, {"query": "m", "time": T, "stats": "all"}, {}, 200),
    ("/api/v1/query_range", {}, {"query": "rate(m[2m])", **RANGE}, {}, 200),
    ("/api/v1/query_range", {"step": "30"}, {"query": "m", **RANGE}, {"Authorization": "KEY:viewer"}, 200),
    ("/api/v1/series", {}, {"match[]": "m"}, {}, 200),
    ("/api/v1/series", {"match[]": "big"}, {"match[]": "m", "limit": "2"}, {}, 200),
    ("/api/v1/labels", {}, {"match[]": "m", "start": RANGE["start"], "end": T}, {}, 200),
    ("/api/v1/labels", {}, {}, {}, 200),
    ("/api/v1/label/i/values", {}, {"match[]": "m"}, {}, 405),  # GET only, as Prometheus
    # a body bigger than the lane takes (16 KiB): the usual path
    ("/api/v1/query", {}, {"query": "1", "time": T, "pad": "x" * 20_000}, {}, 200),
    # not a form: no body parameters (text/plain), or refused (415)
    ("/api/v1/query", {"query": "1", "time": T}, b"query=2", {"Content-Type": "text/plain"}, 200),
    ("/api/v1/query", {"query": "1", "time": T}, b'{"query": "2"}', {"Content-Type": "application/json"}, 415),
    ("/api/v1/query", {}, b"query=%ff%fe&time=1", {"Content-Type": FORM}, 400),  # not UTF-8
    ("/api/v1/query", {}, b"query=1&time=" + T.encode(), {"Content-Type": FORM + "; charset=UTF-8"}, 200),
]


@pytest.mark.parametrize(("path", "query", "form", "headers", "status"), POST_MATRIX, ids=_case_id)
def test_form_posts_answer_alike(pairs: dict[str, tuple[Server, Server]], path: str, query: dict[str, str],
                                 form: dict[str, str] | bytes, headers: dict[str, str], status: int) -> None:
    on, off = pairs["open"]
    a_h, b_h = _with_keys(on, headers), _with_keys(off, headers)
    for _ in range(3):  # the first of a query shape goes to the query pool, the next ones inline
        if isinstance(form, bytes):
            a = httpx.post(on.url + path, params=query, content=form, headers=a_h, timeout=30)
            b = httpx.post(off.url + path, params=query, content=form, headers=b_h, timeout=30)
        else:
            a = httpx.post(on.url + path, params=query, data=form, headers=a_h, timeout=30)
            b = httpx.post(off.url + path, params=query, data=form, headers=b_h, timeout=30)
        assert _normal(a) == _normal(b), (path, query, form, headers)
        assert a.status_code == status, a.text
        assert a.headers["traceparent"].split("-")[1] == a.headers["x-trace-id"]


def test_the_lane_takes_form_posts_and_listings(pairs: dict[str, tuple[Server, Server]]) -> None:
    on, off = pairs["open"]
    # read on both servers (/metrics counts as a query in the usage test_side_effects_alike compares)
    before, _ = [_metric(srv.url, "clearsight_http_fast_lane_requests_total", "") for srv in (on, off)]
    for _ in range(5):
        for srv in (on, off):  # the same requests on both: test_side_effects_alike compares their counts
            assert httpx.post(srv.url + "/api/v1/query", data={"query": "1", "time": T}, timeout=30).status_code == 200
            assert httpx.get(srv.url + "/api/v1/label/job/values", timeout=30).status_code == 200
            assert httpx.post(srv.url + "/api/v1/series", data={"match[]": "m{i='1'}"},
                              timeout=30).status_code == 200
    # the first of each is answered on the query pool (its cost not known yet)
    after = [_metric(srv.url, "clearsight_http_fast_lane_requests_total", "") for srv in (on, off)]
    assert after[0] - before >= 12 and after[1] == 0


def test_cookie_session_form_post_needs_no_csrf_token(pairs: dict[str, tuple[Server, Server]]) -> None:
    """A form POST of a ``*:read`` route is exempt from CSRF in the read chain (auth/csrf.needs_check)
    and in the lane alike: a signed-in browser's query without X-CSRF-Token is answered."""
    answers = []
    for srv in pairs["open"]:
        login = httpx.post(srv.url + "/api/v1/auth/login", json={"username": "admin", "password": srv.password},
                           timeout=30)
        assert login.status_code == 200, login.text
        cookie = "clearsight_session=" + login.cookies["clearsight_session"]
        for _ in range(3):  # the first resolves the session (cached), the next ones may take the lane
            r = httpx.post(srv.url + "/api/v1/query", data={"query": "sum(m)", "time": T},
                           headers={"Cookie": cookie}, timeout=30)
            assert r.status_code == 200, r.text
        answers.append(_normal(r))
    assert answers[0] == answers[1]


def test_refusals_without_credentials_and_rate_limits_alike(pairs: dict[str, tuple[Server, Server]]) -> None:
    on, off = pairs["closed"]
    params = {"query": "1", "time": T}
    assert _same(on, off, "/api/v1/query", params, {}) == 401
    # A burst of 3 at 1/s: then 429 with Retry-After. Each server's bucket refills on its own clock
    # (a slow request on a busy machine lets one of them refill a token the other has not yet), so
    # the sequences are compared by what they hold: three answers, then a refusal, alike.
    answers: dict[str, list[Any]] = {"on": [], "off": []}
    for _ in range(8):
        for name, srv in (("on", on), ("off", off)):
            answers[name].append(_normal(httpx.get(srv.url + "/api/v1/query", params=params, headers={
                "Authorization": "Bearer " + srv.keys["limited"]}, timeout=30)))
    for got in answers.values():
        assert [a[0] for a in got[:3]] == [200, 200, 200] and any(a[0] == 429 for a in got)
    assert answers["on"][:3] == answers["off"][:3]
    first_refusal = [next(a for a in got if a[0] == 429) for got in answers.values()]
    assert first_refusal[0] == first_refusal[1]


def _metric(url: str, name: str, labels: str) -> float:
    text = httpx.get(url + "/metrics", timeout=30).text
    series = f"{name}{{{labels}}}" if labels else name
    m = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_side_effects_alike(pairs: dict[str, tuple[Server, Server]]) -> None:
    """After the matrix: usage counts, cross-organisation audit entries and the histogram's counts."""
    on, off = pairs["open"]
    for path, params, headers, _ in OPEN_MATRIX[:6]:
        for srv in (on, off):
            httpx.get(srv.url + path, params=params, headers=_with_keys(srv, headers), timeout=30)
    for org in ("default", "team-b"):
        counts = []
        for srv in (on, off):
            admin = _basic("admin", srv.password) | {"X-Scope-OrgID": org}
            daily = httpx.get(srv.url + "/api/v1/usage", headers=admin, timeout=30).json()["data"]["daily"]
            counts.append([d["counts"]["queries"] for d in daily])
        assert counts[0] == counts[1] and counts[0], org
    audits = []
    for srv in (on, off):
        admin = _basic("admin", srv.password) | {"X-Scope-OrgID": "team-b"}
        deadline = time.monotonic() + 10
        while True:  # written on a thread after the answer
            rows = httpx.get(srv.url + "/api/v1/audit", params={"action": "org.cross_access"}, headers=admin,
                             timeout=30).json()["data"]
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        audits.append(sorted((r["target"], r["outcome"], orjson.dumps(r["detail"], option=orjson.OPT_SORT_KEYS))
                             for r in rows))
    assert audits[0] == audits[1] and audits[0]
    # the lane took its share of them (and does not exist when off)
    assert _metric(on.url, "clearsight_http_fast_lane_requests_total", "") > len(OPEN_MATRIX)
    assert "clearsight_http_fast_lane_requests" not in httpx.get(off.url + "/metrics", timeout=30).text
    for handler in ("query", "query_range", "series", "labels", "label_values"):
        counts = [_metric(srv.url, "clearsight_http_request_duration_seconds_count", f'handler="{handler}"')
                  for srv in (on, off)]
        assert counts[0] == counts[1] > 0, handler


# -- the protocol


def _connect(srv: Server) -> socket.socket:
    host, port = srv.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _request(path: str, extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


def _read_answers(s: socket.socket, n: int) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """``n`` answers read from ``s``: status line, headers, body (by content-length)."""
    buf = b""
    out = []
    while len(out) < n:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].split(b"\r\n")
            headers = dict(line.lower().split(b": ", 1) for line in head[1:])
            length = int(headers[b"content-length"])
            if len(buf) >= end + 4 + length:
                out.append((head[0], headers, buf[end + 4:end + 4 + length]))
                buf = buf[end + 4 + length:]
                continue
        chunk = s.recv(65536)
        assert chunk, f"connection closed after {len(out)} answers"
        buf += chunk
    assert not buf
    return out


def _closed(s: socket.socket) -> bool:
    s.settimeout(10)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


Q = f"/api/v1/query?query=m&time={T}"


def test_keep_alive_across_many_requests(pairs: dict[str, tuple[Server, Server]]) -> None:
    on, _ = pairs["open"]
    with _connect(on) as s:
        bodies = []
        for i in range(200):
            s.sendall(_request(Q if i % 2 else f"/api/v1/query?query=1&time={T}"))
            (status, headers, body), = _read_answers(s, 1)
            assert status == b"HTTP/1.1 200 OK" and b"connection" not in headers
            bodies.append(body)
        assert len(set(bodies)) == 2


def test_the_loop_spins_after_lane_answers(pairs: dict[str, tuple[Server, Server]],
                                           tmp_path: Path) -> None:
    """server.idle_spin_us (on by default): after its answers the loop polls a moment for the next
    request (api/idle_spin.py); answers are the same, the spins counted, one per answer at most.
    A server of its own: the spin's backoff state (a window of fruitless spins pauses it) is fresh,
    so its first WINDOW answers in the lane each spin."""
    from clearsight.api.idle_spin import WINDOW

    srv = _start(tmp_path, "spin", OPEN.format(lane="true"), ())
    try:
        _write(srv.url, _data())
        _, off = pairs["open"]
        answers = []
        for s_ in (srv, off):
            with _connect(s_) as s:
                for _ in range(50):
                    s.sendall(_request(Q))
                    (status, _, body), = _read_answers(s, 1)
                    assert status == b"HTTP/1.1 200 OK"
                answers.append(orjson.loads(body)["data"])
        assert answers[0] == answers[1]
        spun = _metric(srv.url, "clearsight_http_idle_spins_total", "")
        laned = _metric(srv.url, "clearsight_http_fast_lane_requests_total", "")
        assert laned >= WINDOW and WINDOW <= spun <= laned
        assert 0 <= _metric(srv.url, "clearsight_http_idle_spins_fruitful_total", "") <= spun
        assert _metric(off.url, "clearsight_http_idle_spins_total", "") == 0  # no lane there: no spin
    finally:
        srv.proc.stop()


def test_the_request_log_of_a_lane_answer(tmp_path: Path) -> None:
    """The lane writes its answer first and logs it after (``Served.after``): the access log line
    still carries the request's trace id, status, size and path, as the usual path's does."""
    srv = _start(tmp_path, "logged", OPEN.format(lane="true") + "log:\n  access_log: true\n", ())
    try:
        _write(srv.url, _data())
        with _connect(srv) as s:
            for _ in range(3):  # the first proves the query cheap (the usual path), then the lane's
                s.sendall(_request(Q))
                (status, headers, body), = _read_answers(s, 1)
                assert status == b"HTTP/1.1 200 OK"
        assert _metric(srv.url, "clearsight_http_fast_lane_requests_total", "") >= 1
        trace = headers[b"x-trace-id"].decode()
        lines = [orjson.loads(x) for x in srv.proc.log().splitlines() if trace in x]
        logged = [x for x in lines if x.get("path") == "/api/v1/query"]
        assert len(logged) == 1, lines
        assert logged[0]["trace_id"] == trace and logged[0]["status"] == 200
        assert logged[0]["bytes_sent"] == len(body)
    finally:
        srv.proc.stop()


def test_pipelined_requests_in_one_send(pairs: dict[str, tuple[Server, Server]]) -> None:
    on, _ = pairs["open"]
    with _connect(on) as s:
        s.sendall(_request(Q) + _request(f"/api/v1/query?query=1&time={T}") + _request("/api/v1/labels")
                  + _request(Q, "Accept-Encoding: zstd\r\n"))
        answers = _read_answers(s, 4)
    assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 4
    assert orjson.loads(answers[0][2])["data"]["resultType"] == "vector"
    assert orjson.loads(answers[1][2])["data"]["resultType"] == "scalar"
    assert "__name__" in orjson.loads(answers[2][2])["data"]
    assert answers[0][2] == answers[3][2]  # small: not compressed


def _post(path: str, form: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM}\r\n"
            f"Content-Length: {len(form)}\r\n{extra}\r\n").encode() + form


def test_pipelined_form_posts(pairs: dict[str, tuple[Server, Server]]) -> None:
    """Form POSTs (small, too big for the lane, a listing), GETs between them, in one send: answered
    in order, alike."""
    one, m = f"query=1&time={T}".encode(), f"query=m&time={T}".encode()
    data = (_post("/api/v1/query", one) + _post("/api/v1/query", m) + _request("/api/v1/labels")
            + _post("/api/v1/query", m + b"&pad=" + b"x" * 20_000) + _post("/api/v1/series", b"match[]=m")
            + _post("/api/v1/query", one, "Accept-Encoding: zstd\r\n"))
    bodies = []
    for srv in pairs["open"]:
        with _connect(srv) as s:
            for _ in range(3):
                s.sendall(data)
                answers = _read_answers(s, 6)
                assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 6
        bodies.append([a[2] for a in answers])
    assert bodies[0] == bodies[1]
    assert orjson.loads(bodies[0][0])["data"]["resultType"] == "scalar"
    assert bodies[0][1] == bodies[0][3] and bodies[0][0] == bodies[0][5]


def test_form_post_body_in_two_sends(pairs: dict[str, tuple[Server, Server]]) -> None:
    """A body that does not come with its headers: the usual path takes it, whole."""
    form = f"query=sum(m)&time={T}".encode()
    bodies = []
    for srv in pairs["open"]:
        with _connect(srv) as s:
            for _ in range(3):
                request = _post("/api/v1/query", form)
                s.sendall(request[:-8])
                time.sleep(0.05)
                s.sendall(request[-8:])
                (status, _, body), = _read_answers(s, 1)
                assert status == b"HTTP/1.1 200 OK"
        bodies.append(body)
    assert bodies[0] == bodies[1] and orjson.loads(bodies[0])["data"]["result"]


def test_get_headers_in_two_sends(pairs: dict[str, tuple[Server, Server]]) -> None:
    """A GET whose headers come in two reads is answered by the lane all the same, alike, and so is
    the same request in one read after it on the same connection (read without httptools)."""
    bodies = []
    for srv in pairs["open"]:
        httpx.get(srv.url + Q, timeout=30)  # its cost known: answered inline from now on
        before = _metric(srv.url, "clearsight_http_fast_lane_requests_total", "")
        express = _metric(srv.url, "clearsight_http_fast_lane_express_requests_total", "") if srv is pairs["open"][0] \
            else 0.0
        with _connect(srv) as s:
            for _ in range(3):
                request = _request(Q)
                s.sendall(request[:20])
                time.sleep(0.05)
                s.sendall(request[20:])
                (status, _, split), = _read_answers(s, 1)
                s.sendall(request)
                (status2, _, whole), = _read_answers(s, 1)
                assert status == status2 == b"HTTP/1.1 200 OK" and split == whole
        bodies.append(split)
        laned = _metric(srv.url, "clearsight_http_fast_lane_requests_total", "") - before
        assert laned == (6 if srv is pairs["open"][0] else 0)
        if srv is pairs["open"][0]:  # the whole reads without httptools (api/_reqhead.pyx), the split ones with it
            assert _metric(srv.url, "clearsight_http_fast_lane_express_requests_total", "") - express == 3
    assert bodies[0] == bodies[1] and orjson.loads(bodies[0])["data"]["resultType"] == "vector"


def test_form_posts_read_whole(pairs: dict[str, tuple[Server, Server]]) -> None:
    """A form POST whose head and body come in one read is read without httptools (api/_reqhead.pyx)
    and answered by the lane as the usual path answers it: queries, a range, listings, a refusal; a
    POST the lane does not take (not a form, a body larger than it collects, a query not proven
    cheap: a text never evaluated before, ~150 KB of answer) goes to httptools whole and is answered
    alike."""
    taken = [
        ("/api/v1/query", f"query=sum(m)&time={T}".encode(), ""),
        ("/api/v1/query", f"query=m&time={T}&stats=all".encode(), "Connection: keep-alive\r\n"),
        ("/api/v1/query_range", urllib.parse.urlencode({"query": "rate(m[2m])", **RANGE}).encode(), ""),
        ("/api/v1/series", b"match[]=m", ""),
        ("/api/v1/labels", b"", ""),
        ("/api/v1/query", f"query=sum(&time={T}".encode(), ""),  # 400
    ]

    def usual(rnd: int) -> list[tuple[str, bytes, str]]:
        # (the selector's text new in each round: no recorded cost, so never answered inline, however
        # fast this machine evaluates 1,500 series)
        big = urllib.parse.urlencode({"query": f'big{{job!="none-{rnd}"}}', "time": T}).encode()
        return [("/api/v1/query", big, "Accept-Encoding: zstd\r\n"),
                ("/api/v1/query", f"query=m&time={T}&pad={'x' * 20_000}".encode(), ""),
                (f"/api/v1/query?query=m&time={T}", b"query=2", "Content-Type: text/plain\r\n")]  # no body parameters

    answers: list[list[tuple[bytes, Any]]] = []
    for srv in pairs["open"]:
        express = _metric(srv.url, "clearsight_http_fast_lane_express_requests_total", "")
        got = []
        with _connect(srv) as s:
            for rnd in range(3):  # the first of each shape goes to the query pool; inline after
                if rnd == 1:
                    express = _metric(srv.url, "clearsight_http_fast_lane_express_requests_total", "")
                for path, form, extra in taken + usual(rnd):
                    if extra.startswith("Content-Type"):
                        request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
                                   f"Content-Length: {len(form)}\r\n\r\n").encode() + form
                    else:
                        request = _post(path, form, extra)
                    s.sendall(request)
                    (status, headers, body), = _read_answers(s, 1)
                    if headers.get(b"content-encoding") == b"zstd":
                        body = bytes(cramjam.zstd.decompress(body))
                    parsed = orjson.loads(body)
                    if isinstance(parsed.get("data"), dict) and "stats" in parsed["data"]:
                        parsed["data"]["stats"]["timings"] = sorted(parsed["data"]["stats"]["timings"])  # measured
                    if rnd == 2:
                        got.append((status, parsed))
        if srv is pairs["open"][0]:
            assert _metric(srv.url, "clearsight_http_fast_lane_express_requests_total", "") - express \
                == 2 * len(taken)
        answers.append(got)
    assert answers[0] == answers[1]
    statuses = [a[0] for a in answers[0]]
    assert statuses == [b"HTTP/1.1 200 OK"] * 5 + [b"HTTP/1.1 400 Bad Request"] + [b"HTTP/1.1 200 OK"] * 3
    assert answers[0][0][1]["data"]["resultType"] == "vector"
    assert len(answers[0][6][1]["data"]["result"]) == SERIES


def test_form_post_cut_short(pairs: dict[str, tuple[Server, Server]]) -> None:
    """A client that closes before its body is whole gets no answer, lane on or off, and the next
    connection is served."""
    form = f"query=1&time={T}".encode()
    for srv in pairs["open"]:
        before = _metric(srv.url, "clearsight_http_fast_lane_requests_total", "")
        for cut in (0, 5):
            request = _post("/api/v1/query", form)
            with _connect(srv) as s:
                s.sendall(request[:len(request) - len(form) + cut])
                s.shutdown(socket.SHUT_WR)
                assert _closed(s)
        assert _metric(srv.url, "clearsight_http_fast_lane_requests_total", "") == before
        with _connect(srv) as s:
            s.sendall(_post("/api/v1/query", form))
            assert _read_answers(s, 1)[0][0] == b"HTTP/1.1 200 OK"


def test_pipelined_after_a_large_answer(pairs: dict[str, tuple[Server, Server]]) -> None:
    """A large answer compressed on a thread, the next request already sent: answered in order."""
    on, _ = pairs["open"]
    big = f"/api/v1/query?query=big&time={T}"
    with _connect(on) as s:
        for _ in range(3):
            s.sendall(_request(big, "Accept-Encoding: zstd\r\n") + _request(Q))
            (s1, h1, b1), (s2, _, b2) = _read_answers(s, 2)
            assert s1 == s2 == b"HTTP/1.1 200 OK" and h1[b"content-encoding"] == b"zstd"
            assert len(orjson.loads(bytes(cramjam.zstd.decompress(b1)))["data"]["result"]) == SERIES
            assert orjson.loads(b2)["data"]["resultType"] == "vector"


@pytest.mark.parametrize(("extra", "version"), [("Connection: close\r\n", "1.1"), ("", "1.0"),
                                                ("Connection: keep-alive\r\n", "1.0")])
def test_connection_closed_when_asked(pairs: dict[str, tuple[Server, Server]], extra: str, version: str) -> None:
    on, _ = pairs["open"]
    for _ in range(3):  # the first goes to the query pool, the next ones inline
        with _connect(on) as s:
            s.sendall(_request(Q, extra, version))
            (status, headers, _), = _read_answers(s, 1)
            assert status == b"HTTP/1.1 200 OK" and headers[b"connection"] == b"close"
            assert _closed(s)


def test_header_deadline_still_enforced(tmp_path: Path) -> None:
    proc = start_clearsight(tmp_path, config_yaml="server:\n  header_read_timeout: 1s\n  keep_alive_timeout: 60s\n")
    try:
        srv = Server(proc, "", {})
        with _connect(srv) as s:
            for _ in range(3):  # laned requests, then an unfinished one
                s.sendall(_request(f"/api/v1/query?query=1&time={T}"))
                _read_answers(s, 1)
            s.sendall(b"GET /api/v1/query?query=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            began = time.monotonic()
            assert _closed(s)
            assert time.monotonic() - began < 10
    finally:
        proc.stop()


def test_client_gone_during_a_query_on_the_pool_cancels_it(pairs: dict[str, tuple[Server, Server]]) -> None:
    """A query not proven cheap runs on the query pool (the usual path): a client that goes away
    cancels it, as without the lane."""
    on, _ = pairs["open"]
    before = _metric(on.url, "clearsight_query_client_canceled_total", "")
    slow = "count_over_time(big[5m]) * on(instance) group_left() avg_over_time(big[5m])"
    for i in range(5):  # a text never evaluated before: no recorded cost, so never inline
        text = f"({slow}) + {time.monotonic_ns() + i}"
        path = "/api/v1/query_range?" + str(httpx.QueryParams({"query": text, "start": str(NOW_MS / 1000 - 600),
                                                                "end": T, "step": "1"}))
        s = _connect(on)
        s.sendall(_request(path))
        time.sleep(0.05)
        s.close()
    deadline = time.monotonic() + 20
    while _metric(on.url, "clearsight_query_client_canceled_total", "") <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _metric(on.url, "clearsight_query_client_canceled_total", "") > before
