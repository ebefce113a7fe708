"""Alertmanager API v2 (the parts ``amtool`` and Grafana's Alertmanager data source use).

``/api/v2/alerts`` (GET, POST), ``/api/v2/alerts/groups``, ``/api/v2/silences`` (GET, POST),
``/api/v2/silence/{id}`` (GET, DELETE), ``/api/v2/status``, ``/api/v2/receivers``, and
``/api/v1/notifications`` (Clearsight's delivery history: successes, retries, failures).
Bad input is a 400 with a message naming the field and changes nothing (a POST of alerts is
all-or-nothing). Extensions on silences: ``expireOnResolve`` (expire once the muted alerts
resolved; with no ``endsAt`` the silence lasts until then: "mute until resolved").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight import __version__
from clearsight.model.matchers import Matcher, compile_anchored, matches_all
from clearsight.notify.alert import AlertError, format_time, parse_time
from clearsight.notify.matchers import MatcherError, parse_matchers
from clearsight.notify.notifier import AlertStatus, Notifier
from clearsight.notify.silences import FOREVER, SilenceError, matcher_from_json, silence_json

MAX_BODY = 16 * 1024 * 1024


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def _error(message: str, status: int = 400) -> Response:
    # Alertmanager answers validation errors with the message as a JSON string.
    return _json(message, status)


def _bool(request: Request, name: str, default: bool) -> bool:
    v = request.query_params.get(name)
    if v is None or v == "":
        return default
    if v.lower() not in ("true", "false"):
        raise ValueError(f'invalid parameter "{name}": expected true or false, got {v!r}')
    return v.lower() == "true"


def _filters(request: Request) -> list[Matcher]:
    out: list[Matcher] = []
    for f in request.query_params.getlist("filter"):
        try:
            out.extend(parse_matchers(f))
        except MatcherError as e:
            raise ValueError(f'invalid parameter "filter": {e}') from None
    return out


def _labels(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def alert_json(st: AlertStatus) -> dict[str, Any]:
    a = st.alert
    return {"labels": dict(a.labels), "annotations": dict(a.annotations), "startsAt": format_time(a.starts_at),
            "endsAt": format_time(a.ends_at), "updatedAt": format_time(a.updated_at),
            "generatorURL": a.generator_url, "fingerprint": a.fingerprint,
            "receivers": [{"name": r} for r in st.receivers],
            "status": {"state": st.state, "silencedBy": st.silenced_by, "inhibitedBy": st.inhibited_by,
                       "mutedBy": []}}


def make_alertmanager_routes(notifier: Notifier) -> list[Route]:
    n = notifier

    async def _body(request: Request) -> Any:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ValueError("request body too large")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"invalid JSON body: {e}") from None

    def _selected(request: Request) -> list[AlertStatus]:
        active = _bool(request, "active", True)
        silenced = _bool(request, "silenced", True)
        inhibited = _bool(request, "inhibited", True)
        _bool(request, "unprocessed", True)
        receiver = request.query_params.get("receiver") or ""
        matchers = _filters(request)
        now = n.clock.now()
        out = []
        for a in sorted(n.alerts.values(), key=lambda x: x.fingerprint):
            if a.resolved(now) or not matches_all(matchers, _labels(a.labels)):
                continue
            st = n.status_of(a)
            if receiver and not any(_full_match(receiver, r) for r in st.receivers):
                continue
            if (not silenced and st.silenced_by) or (not inhibited and st.inhibited_by):
                continue
            if not active and st.state == "active":
                continue
            out.append(st)
        return out

    async def get_alerts(request: Request) -> Response:
        """Alerts held by the notifier (filter, active, silenced, inhibited, receiver)."""
        try:
            return _json([alert_json(st) for st in _selected(request)])
        except ValueError as e:
            return _error(str(e))

    async def post_alerts(request: Request) -> Response:
        """Receives alerts (Alertmanager postable alerts); all-or-nothing."""
        try:
            body = await _body(request)
            n.put_alerts(body)
        except (ValueError, AlertError) as e:
            return _error(str(e))
        return _json(None)

    async def alert_groups(request: Request) -> Response:
        """Alerts grouped by route and group labels, as the aggregation groups hold them."""
        try:
            selected = {st.alert.fingerprint: st for st in _selected(request)}
        except ValueError as e:
            return _error(str(e))
        groups = []
        for g in list(n.dispatcher.groups.values()) if n.dispatcher else []:
            alerts = [alert_json(selected[fp]) for fp in sorted(g.alerts) if fp in selected]
            if alerts:
                groups.append({"labels": g.labels, "receiver": {"name": g.receiver.name}, "alerts": alerts})
        return _json(groups)

    async def get_silences(request: Request) -> Response:
        """Silences (filter: matchers that a silence's own matchers must contain)."""
        try:
            wanted = _filters(request)
        except ValueError as e:
            return _error(str(e))
        now = n.clock.now()
        order = {"active": 0, "pending": 1, "expired": 2}
        items = [s for s in n.silences.all() if all(any(m == w for m in s.matchers) for w in wanted)]
        items.sort(key=lambda s: (order[s.state(now)], s.ends_at if s.state(now) != "expired" else -s.ends_at))
        return _json([silence_json(s, now) for s in items])

    async def post_silence(request: Request) -> Response:
        """Creates or updates (with ``id``) a silence; answers ``{"silenceID": ...}``."""
        try:
            body = await _body(request)
            if not isinstance(body, Mapping):
                raise SilenceError("expected a silence object")
            raw = body.get("matchers")
            if not isinstance(raw, list) or not raw:
                raise SilenceError("matchers: at least one matcher required")
            matchers = [matcher_from_json(m, f"matchers[{i}]") for i, m in enumerate(raw)]
            now = n.clock.now()
            expire_on_resolve = body.get("expireOnResolve", False)
            if not isinstance(expire_on_resolve, bool):
                raise SilenceError("expireOnResolve: expected true or false")
            starts = parse_time(body.get("startsAt"), "startsAt") or now
            ends = parse_time(body.get("endsAt"), "endsAt")
            if not ends:
                if not expire_on_resolve:
                    raise SilenceError("endsAt: required (or expireOnResolve: true to mute until resolved)")
                ends = now + FOREVER
            sid = body.get("id") or ""
            if not isinstance(sid, str):
                raise SilenceError("id: expected a string")
            new_id = n.silences.put(matchers, starts, ends, str(body.get("createdBy") or ""),
                                    str(body.get("comment") or ""), sid=sid, expire_on_resolve=expire_on_resolve)
        except SilenceError as e:
            return _error(str(e), 404 if e.not_found else 400)
        except (ValueError, AlertError) as e:
            return _error(str(e))
        matched = n.matching_alerts(lambda labels: matches_all(matchers, _labels(labels)))
        out: dict[str, Any] = {"silenceID": new_id}
        if matched == 0:
            out["warnings"] = ["the silence matches no firing alert"]
        return _json(out)

    async def get_silence(request: Request) -> Response:
        """One silence by id."""
        try:
            s = n.silences.get(request.path_params["id"])
        except SilenceError as e:
            return _error(str(e), 404)
        return _json(silence_json(s, n.clock.now()))

    async def delete_silence(request: Request) -> Response:
        """Expires a silence."""
        try:
            n.silences.expire(request.path_params["id"])
        except SilenceError as e:
            return _error(str(e), 404 if e.not_found else 400)
        return _json(None)

    async def status(request: Request) -> Response:
        """Cluster (single node), version and the loaded notification config."""
        return _json({
            "cluster": {"name": "clearsight", "status": "disabled", "peers": []},
            "versionInfo": {"version": __version__, "branch": "", "buildDate": "", "buildUser": "",
                            "goVersion": "", "revision": ""},
            "config": {"original": n.config.original},
            "uptime": format_time(n.started_at),
        })

    async def receivers(request: Request) -> Response:
        """Receiver names."""
        return _json([{"name": r} for r in n.config.receivers])

    async def history(request: Request) -> Response:
        """Delivery history, newest last (success, retrying, failed) with the error text."""
        return _json({"status": "success", "data": n.history()})

    H = Callable[[Request], Awaitable[Response]]
    table: list[tuple[str, H, list[str]]] = [
        ("/api/v2/alerts", get_alerts, ["GET"]),
        ("/api/v2/alerts", post_alerts, ["POST"]),
        ("/api/v2/alerts/groups", alert_groups, ["GET"]),
        ("/api/v2/silences", get_silences, ["GET"]),
        ("/api/v2/silences", post_silence, ["POST"]),
        ("/api/v2/silence/{id}", get_silence, ["GET"]),
        ("/api/v2/silence/{id}", delete_silence, ["DELETE"]),
        ("/api/v2/status", status, ["GET"]),
        ("/api/v2/receivers", receivers, ["GET"]),
        ("/api/v1/notifications", history, ["GET"]),
    ]
    return [Route(path, h, methods=methods, name=f"alertmanager_{h.__name__}") for path, h, methods in table]


def _full_match(pattern: str, value: str) -> bool:
    try:
        return compile_anchored(pattern).fullmatch(value) is not None
    except ValueError:
        return pattern == value

