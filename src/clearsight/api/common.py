"""Helpers shared by the HTTP surfaces: Prometheus-style envelopes, time params, body limits."""

from __future__ import annotations

import asyncio
import math
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import orjson
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from clearsight.pipeline.errors import IngestError, PayloadTooLarge

if TYPE_CHECKING:
    from clearsight.query.write_priority import WritePriority


def _unquote_plus_py(s: str) -> str:
    return urllib.parse.unquote(s.replace("+", " "))


try:  # percent-decoding in one C loop (api/_urldecode.pyx), the same strings as urllib's
    from clearsight.api._urldecode import unquote_plus
except ImportError:  # pragma: no cover - built by `pip install -e .` (CLEARSIGHT_NO_NATIVE: not)
    unquote_plus = _unquote_plus_py

# The organisation of a request (server.make_tenant_of: it reads the scope and the headers only, so
# the fast lane hands it a bare HTTPConnection, not a whole Request).
TenantOf = Callable[[HTTPConnection], str]

# Prometheus' "all time" bounds for series/labels queries without start/end (ms).
MIN_TIME_MS = -(2**63) // 1_000_000 * 1000
MAX_TIME_MS = (2**63 - 1) // 1_000_000 * 1000


class ApiError(Exception):
    """An error answered with Prometheus' envelope: ``errorType`` and HTTP status."""

    STATUS: ClassVar[dict[str, int]] = {"bad_data": 400, "execution": 422, "canceled": 499, "timeout": 503, "internal": 500,
              "not_found": 404, "not_acceptable": 406, "unavailable": 503}

    def __init__(self, error_type: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status if status is not None else self.STATUS.get(error_type, 500)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json", headers=headers)


# A large answer's pieces: a list of at most this many items per ``orjson.dumps`` call, and a body
# message of at least this many bytes (the event loop runs other work between two messages).
PART_ITEMS = 16
SEND_BYTES = 256 * 1024


class PartsResponse(Response):
    """A response whose body is a list of byte strings, never joined into one buffer: a large
    answer (a query's matrix of megabytes) is encoded piece by piece on a query thread, each piece
    a short call that lets other threads have the GIL in between, and sent in messages of about
    ``SEND_BYTES``, the event loop free between two of them (one ``orjson.dumps`` and one socket
    write of 18 MB held the GIL, or the loop, for 10-27 ms: writes waited behind them), and
    stepping aside there while a metrics write is in flight (``writes``: the query thread's
    ``WritePriority``; query/write_priority.py). There is no ``body`` attribute: ``parts`` and
    ``length`` are the body."""

    def __init__(self, parts: list[bytes], status_code: int = 200, media_type: str = "application/json",
                 writes: WritePriority | None = None) -> None:
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.writes = writes
        self.parts = parts
        self.length = sum(map(len, parts))
        self.init_headers({"content-length": str(self.length)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send_parts(send, self.parts, self.writes)


async def send_parts(send: Send, parts: list[bytes], writes: WritePriority | None = None) -> None:
    """``parts`` as body messages of at least ``SEND_BYTES`` (the last one smaller), yielding to the
    event loop between two messages, and with ``writes`` waiting there while a write is in flight
    (``WritePriority.step_aside``)."""
    pending: list[bytes] = []
    size = 0
    last = len(parts) - 1
    for i, part in enumerate(parts):
        pending.append(part)
        size += len(part)
        if size >= SEND_BYTES and i < last:
            await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
            await asyncio.sleep(0)
            if writes is not None and writes.in_flight:
                await writes.step_aside()
            pending, size = [], 0
    await send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})


def success_in_parts(data: dict[str, Any], key: str, warnings: list[str] | None = None,
                     infos: list[str] | None = None, between: Callable[[], None] | None = None,
                     writes: WritePriority | None = None) -> PartsResponse:
    """``success(data, warnings, infos)`` with the same bytes, the long list ``data[key]`` encoded
    ``PART_ITEMS`` items at a time (``between`` called before each piece: a query thread's
    checkpoint; ``writes``: what its sending steps aside for, ``PartsResponse``)."""
    parts = [b'{"status":"success","data":{']
    for i, (name, value) in enumerate(data.items()):
        lead = (b"," if i else b"") + orjson.dumps(name) + b":"
        if name != key:
            parts.append(lead + orjson.dumps(value))
            continue
        parts.append(lead + b"[")
        for at in range(0, len(value), PART_ITEMS):
            if between is not None:
                between()
            piece = orjson.dumps(value[at:at + PART_ITEMS])[1:-1]  # without the list's brackets
            parts.append(b"," + piece if at else piece)
        parts.append(b"]")
    parts.append(b"}")
    if warnings:
        parts.append(b',"warnings":' + orjson.dumps(warnings))
    if infos:
        parts.append(b',"infos":' + orjson.dumps(infos))
    parts.append(b"}")
    return PartsResponse(parts, writes=writes)


class JsonOk(Response):
    """A 200 answer of encoded JSON, its headers those ``Response(body, media_type=
    "application/json")`` makes (content-length, content-type) built directly: every query's
    answer is one, and Starlette's ``init_headers`` cost more than the rest of it."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]


def success(data: Any, warnings: list[str] | None = None, infos: list[str] | None = None) -> Response:
    body: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = warnings
    if infos:
        body["infos"] = infos
    return JsonOk(orjson.dumps(body))


def error_response(err: ApiError) -> Response:
    return json_response({"status": "error", "errorType": err.error_type, "error": err.message}, err.status)


def ingest_error_response(err: IngestError) -> Response:
    headers: dict[str, str] = {}
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return Response(err.message + "\n", status_code=err.status, media_type="text/plain; charset=utf-8",
                    headers=headers)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """Reads the raw body, failing with 413 as soon as it exceeds ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise PayloadTooLarge("client disconnected before sending the whole body") from None
    return b"".join(chunks)


async def run_blocking(fn: Callable[[], Any]) -> Any:
    """Runs a blocking store call in the default executor (off the event loop)."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)


MAX_FORM_BYTES = 4 * 1024 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


class Params(dict[str, Any]):
    """Request parameters: a dict of each name's last value (as Starlette's ``ImmutableMultiDict``
    gives it) plus ``getlist`` for repeated names (``match[]``). A plain dict's lookups are a C
    call, where the multi-dict's ``get`` runs Python code: a query handler makes about ten."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        super().__init__(items)
        self._items = items

    def getlist(self, name: str) -> list[Any]:
        return [v for k, v in self._items if k == name]


def query_params(query_string: bytes) -> list[tuple[str, Any]]:
    """The parameters of a query string (a GET request's: ``params`` without a body): the pairs
    ``urllib.parse.parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)`` gives,
    without its general machinery (argument coercion, checks, a ``+`` replace and an ``unquote``
    call for every name and value: ~1/10 of a small query's CPU in the fast lane); a name or value
    with ``%`` or ``+`` is decoded exactly as there (``unquote_plus``)."""
    if not query_string:
        return []
    return _pairs(query_string.decode("latin-1"))


def _pairs(qs: str) -> list[tuple[str, Any]]:
    """``urllib.parse.parse_qsl(qs, keep_blank_values=True)`` (UTF-8, errors replaced)."""
    out: list[tuple[str, Any]] = []
    for pair in qs.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        out.append((name, value))
    return out


# The most fields a form body may have (``parse_qsl``'s ``max_num_fields``, as before).
MAX_FORM_FIELDS = 10_000


def form_params(body: bytes) -> list[tuple[str, Any]]:
    """The parameters of an urlencoded form body (ApiError bad_data when it is not one): what
    ``urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10_000)``
    gives, with its errors."""
    try:
        qs = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError("bad_data", f"invalid form body: {e}") from None
    if qs and qs.count("&") + 1 > MAX_FORM_FIELDS:
        raise ApiError("bad_data", "invalid form body: Max number of fields exceeded")
    return _pairs(qs)


async def params(request: Request) -> Params:
    """Query-string and (for POST) urlencoded form parameters, merged like Prometheus does: the
    query string's pairs, then the body's, a name's last value winning (``Params``): a name in
    both has the body's value, as Go's ``r.FormValue`` gives it (``r.Form`` holds the body's values
    first). Two differences, kept: a name repeated within the body has its last value here (Go: its
    first), and ``getlist`` has the query string's values first (Go: the body's), which only orders
    the ``match[]`` sets, whose answers are sorted anyway."""
    items = query_params(request.scope["query_string"])
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(FORM_TYPE):
            try:
                body = await read_body(request, MAX_FORM_BYTES)
            except PayloadTooLarge as e:
                raise ApiError("bad_data", f"form body too large: {e}", status=413) from None
            items.extend(form_params(body))
        elif ctype and not ctype.startswith("text/plain"):
            raise ApiError("bad_data", f"unsupported content type {ctype!r}: use application/x-www-form-urlencoded",
                           status=415)
    return Params(items)


def parse_time_ms(value: str, name: str) -> int:
    """Prometheus time parameter: unix seconds (float) or RFC3339 -> ms."""
    v = value.strip()
    try:
        f = float(v)
    except ValueError:
        pass
    else:
        if math.isnan(f) or math.isinf(f):
            raise ApiError("bad_data", f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp')
        if abs(f) > MAX_TIME_MS / 1000:
            raise ApiError("bad_data", f'invalid parameter "{name}": timestamp "{value}" is out of range')
        return _bounded(round(f * 1000), value, name)
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("bad_data", f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp') from None
    if dt.tzinfo is None:
        raise ApiError("bad_data", f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp')
    return _bounded(round(dt.timestamp() * 1000), value, name)


def _bounded(ms: int, value: str, name: str) -> int:
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise ApiError("bad_data", f'invalid parameter "{name}": timestamp "{value}" is out of range')
    return ms


def time_param(p: Mapping[str, Any], name: str, default: int) -> int:
    raw = p.get(name)
    if raw is None or raw == "":
        return default
    return parse_time_ms(str(raw), name)


def limit_param(p: Mapping[str, Any], name: str = "limit") -> int | None:
    raw = p.get(name)
    if raw is None or raw == "":
        return None
    try:
        n = int(str(raw))
    except ValueError:
        raise ApiError("bad_data", f'invalid parameter "{name}": cannot parse "{raw}" to a valid limit') from None
    if n < 0:
        raise ApiError("bad_data", f'invalid parameter "{name}": limit must be non-negative')
    return n or None


def format_float(v: float) -> str:
    """Prometheus' float-to-string (Go's encoding/json rule): NaN, +Inf, -Inf; exponent form below
    1e-6 and from 1e21 on, shortest positional form otherwise."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    a = abs(v)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return repr(v)
    return np.format_float_positional(v, unique=True, trim="-")


def format_floats(values: list[float]) -> list[str]:
    """``format_float`` over many values: C ``repr`` for the common case, the exact rule for the
    rest (exponents, NaN/Inf)."""
    out = [repr(v) for v in values]
    for i, r in enumerate(out):
        if r[-2:] == ".0":
            out[i] = r[:-2]
        elif "e" in r or "n" in r:  # 1e+16, 1e-05, nan, inf
            out[i] = format_float(values[i])
    return out


def format_timestamps(ms: list[int]) -> list[float | int]:
    """``format_ts`` over many timestamps."""
    return [t // 1000 if t % 1000 == 0 else t / 1000 for t in ms]


def format_ts(ms: int) -> float | int:
    """A timestamp in seconds with ms precision, as Prometheus encodes it (number, not string)."""
    if ms % 1000 == 0:
        return ms // 1000
    return ms / 1000
