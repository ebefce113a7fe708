"""Roles narrowed by label matchers (the Failsight entitlement model; label-based access control):
a custom role may carry a selector such as ``{team="payments"}``; a principal holding it sees only
series, log streams and events that match it, in every query and export.

Enforced here, in the authentication seam, by rewriting the request before any handler sees it (as
prom-label-proxy does in front of Prometheus): the selector's matchers are added to every vector
selector of a PromQL query and every stream selector of a LogQL query (the query is parsed, changed
and printed again), to every ``match[]`` selector, and a ``match[]``/``query`` with just the selector
is added where the request has none; the native log API gets one exact ``label=`` filter per
matcher, and so do events (an event's ``name=value`` tags are its stream labels,
pipeline/event_entries.py). Read endpoints that cannot be narrowed that way (remote read, metadata,
TSDB status, rules, alerts, targets, log context, WebSockets, catalog, resources) answer 403 (the
event gRPC ``Query`` is narrowed by its handler with ``exact_matchers``) to a narrowed principal: the model fails closed, so a new read
endpoint is refused until it is listed in ``NARROWABLE``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import Receive, Scope

from clearsight.auth.errors import Forbidden, InvalidInput
from clearsight.auth.replay import replay_body
from clearsight.auth.route_permissions import match_route, template_regex
from clearsight.model.matchers import Matcher
from clearsight.query.logql import ast as logql_ast
from clearsight.query.logql.parser import LogQLParseError
from clearsight.query.logql.parser import parse_expr as parse_logql
from clearsight.query.logql.printer import format_expr as format_logql
from clearsight.query.promql.ast import VectorSelector
from clearsight.query.promql.parser import ParseError
from clearsight.query.promql.parser import parse as parse_promql
from clearsight.query.promql.printer import format_expr as format_promql

MAX_FORM_BYTES = 1024 * 1024
# how each narrowable read's parameters are rewritten: (param, kind)
#   promql: a PromQL query;  match: PromQL selectors (one with just the selector added when none);
#   logql: a LogQL query;  logsel: an optional LogQL selector (set to the selector when absent);
#   logmatch: LogQL selectors in match[] (or Loki's match), one added when none;
#   labelparams: the native log API's ``label=name=value`` filters (ANDed), one per matcher (equality
#   matchers only: a selector with another kind of matcher is refused there).
_PROMQL, _MATCH = (("query", "promql"),), (("match[]", "match"),)
NARROWABLE: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    **{
        (m, p): _PROMQL
        for m in ("GET", "POST")
        for p in ("/api/v1/query", "/api/v1/query_range", "/api/v1/query_exemplars")
    },
    **{(m, p): _MATCH for m in ("GET", "POST") for p in ("/api/v1/series", "/api/v1/labels")},
    ("GET", "/api/v1/label/{name}/values"): _MATCH,
    ("GET", "/federate"): _MATCH,
    ("GET", "/loki/api/v1/query"): (("query", "logql"),),
    ("GET", "/loki/api/v1/query_range"): (("query", "logql"),),
    ("GET", "/loki/api/v1/labels"): (("query", "logsel"),),
    ("GET", "/loki/api/v1/label/{name}/values"): (("query", "logsel"),),
    ("GET", "/loki/api/v1/series"): (("match[]", "logmatch"),),
    ("GET", "/api/v1/logs"): (("label", "labelparams"),),
    ("GET", "/api/v1/logs/export"): (("label", "labelparams"),),
    ("GET", "/api/v1/events"): (("label", "labelparams"),),  # name=value tags are event stream labels
    # no data in the answer: the query is only parsed or printed
    **{(m, p): () for m in ("GET", "POST") for p in ("/api/v1/format_query", "/api/v1/parse_query")},
    ("GET", "/loki/api/v1/format_query"): (),
}
_TEMPLATES = [(m, template_regex(t), rule) for (m, t), rule in NARROWABLE.items() if "{" in t]


def parse_selector(text: str) -> tuple[str, tuple[Matcher, ...]]:
    """A role's selector (``{team="payments"}``): its canonical text and matchers; InvalidInput when
    it is not a bare label selector with at least one matcher."""
    try:
        e = parse_promql(text)
    except ParseError as err:
        raise InvalidInput(f"invalid selector {text!r}: {err}") from None
    if (
        not isinstance(e, VectorSelector)
        or e.name is not None
        or e.offset
        or e.at is not None
        or not e.matchers
    ):
        raise InvalidInput('a selector is label matchers in braces, e.g. {team="payments"}')
    if any(m.name == "__name__" for m in e.matchers):
        raise InvalidInput("a selector narrows by labels, not by metric name")
    return format_promql(e), tuple(e.matchers)


def exact_matchers(selector: str) -> tuple[Matcher, ...]:
    """The matchers of a principal's selector for a read narrowed by exact labels (the event gRPC
    ``Query``): () when there is no selector; PermissionError when one of them is not an equality
    with a value (a regular expression cannot be applied there)."""
    if not selector:
        return ()
    _, matchers = parse_selector(selector)
    if any(m.type.value != "=" or not m.value for m in matchers):
        raise PermissionError(f"event queries filter by exact labels only: not available to a role narrowed to {selector}")
    return matchers


def _map(node: Any, fn: Callable[[Any], Any | None]) -> Any:
    """``node`` with ``fn`` applied bottom-up wherever it answers a replacement (dataclass trees)."""
    got = fn(node)
    if got is not None:
        return got
    if isinstance(node, list | tuple):
        items = [_map(x, fn) for x in node]
        return items if isinstance(node, list) else tuple(items)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {}
        for f in dataclasses.fields(node):
            if not f.init:
                continue
            old = getattr(node, f.name)
            new = _map(old, fn)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(node, **changes) if changes else node
    return node


def narrow_promql(query: str, extra: tuple[Matcher, ...]) -> str:
    try:
        e = parse_promql(query)
    except ParseError as err:
        raise InvalidInput(f"invalid query: {err}") from None

    def add(n: Any) -> Any | None:
        return (
            dataclasses.replace(n, matchers=[*n.matchers, *extra]) if isinstance(n, VectorSelector) else None
        )

    return format_promql(_map(e, add))


def narrow_logql(query: str, extra: tuple[Matcher, ...]) -> str:
    try:
        e = parse_logql(query)
    except LogQLParseError as err:
        raise InvalidInput(f"invalid LogQL query: {err}") from None

    def add(n: Any) -> Any | None:
        if isinstance(n, logql_ast.LogSelector):
            return dataclasses.replace(n, matchers=(*n.matchers, *extra), stages=n.stages)
        return None

    return format_logql(_map(e, add))


def rewrite_params(
    pairs: list[tuple[str, str]], rule: tuple[tuple[str, str], ...], selector: str, extra: tuple[Matcher, ...]
) -> list[tuple[str, str]]:
    out = list(pairs)
    for param, kind in rule:
        if kind == "labelparams":
            if any(m.type.value != "=" or not m.value for m in extra):
                raise Forbidden(
                    f"the native log API filters by exact labels only: not available to a role narrowed to {selector}"
                )
            out += [(param, f"{m.name}={m.value}") for m in extra]
            continue
        names = (param, "match") if kind == "logmatch" else (param,)
        present = False
        for i, (k, v) in enumerate(out):
            if k not in names:
                continue
            present = True
            if kind in ("promql", "match"):
                out[i] = (k, narrow_promql(v, extra))
            else:
                out[i] = (k, narrow_logql(v, extra) if v else selector)
        if not present and kind in ("match", "logsel", "logmatch"):
            out.append((param, selector))
    return out


async def narrow_request(scope: Scope, receive: Receive, selector: str) -> Receive:
    """Rewrites a read request of a narrowed principal (query string, and a form body); Forbidden
    for a read endpoint that cannot be narrowed. Answers the ``receive`` to hand on."""
    method = scope["method"] if scope["type"] == "http" else "WS"
    rule = match_route(NARROWABLE, _TEMPLATES, method, scope["path"])
    if rule is None:
        raise Forbidden(f"this endpoint is not available to a role narrowed to {selector}")
    _, extra = parse_selector(selector)
    qs = scope.get("query_string", b"").decode("latin-1")
    pairs = parse_qsl(qs, keep_blank_values=True)
    scope["query_string"] = urlencode(rewrite_params(pairs, rule, selector, extra)).encode("latin-1")
    ctype = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if method != "POST" or not ctype.startswith(b"application/x-www-form-urlencoded"):
        return receive
    body = b""
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            return receive
        body += msg.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput(f"form body over {MAX_FORM_BYTES} bytes")
        if not msg.get("more_body"):
            break
    form = parse_qsl(body.decode("utf-8", "surrogateescape"), keep_blank_values=True)
    new_body = urlencode(rewrite_params(form, rule, selector, extra)).encode()
    scope["headers"] = [
        (k, str(len(new_body)).encode() if k == b"content-length" else v) for k, v in scope["headers"]
    ]
    return replay_body(new_body, receive)
