import asyncio
import math
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.api.common import (
    PART_ITEMS,
    SEND_BYTES,
    ApiError,
    PartsResponse,
    form_params,
    format_float,
    format_ts,
    json_response,
    parse_time_ms,
    query_params,
    success,
    success_in_parts,
)
from clearsight.query.write_priority import WritePriority


@pytest.mark.parametrize(
    ("v", "s"),
    [
        (1.2345678e-67, "1.2345678e-67"),
        (0.0000012345678, "0.0000012345678"),
        (1234567.8, "1234567.8"),
        (1.0, "1"),
        (1e21, "1e+21"),
        (float("nan"), "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (-2.5, "-2.5"),
    ],
)
def test_format_float_matches_prometheus(v: float, s: str) -> None:
    assert format_float(v) == s


def test_format_ts() -> None:
    assert format_ts(123400) == 123.4
    assert format_ts(1) == 0.001
    assert format_ts(5000) == 5


def test_parse_time() -> None:
    assert parse_time_ms("1.5", "t") == 1500
    assert parse_time_ms("2015-07-01T20:10:51.781Z", "t") == 1435781451781
    for bad in ("abc", "NaN", "2015-07-01T20:10:51"):
        with pytest.raises(ApiError) as e:
            parse_time_ms(bad, "start")
        assert e.value.error_type == "bad_data"
        assert 'invalid parameter "start"' in e.value.message


@pytest.mark.parametrize("value", ["1e308", "-1e308", "1e20", "9999999999-01-01T00:00:00Z"])
def test_parse_time_out_of_range(value: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_time_ms(value, "end")
    assert e.value.error_type == "bad_data"


# A large answer in parts (PartsResponse): the same bytes as one orjson.dumps, sent in messages.
_label = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
_item = st.fixed_dictionaries({"metric": st.dictionaries(_label, _label, max_size=3),
                               "values": st.lists(st.tuples(st.floats(0, 2e9), _label).map(list), max_size=4)})


@settings(max_examples=200)
@given(items=st.lists(_item, max_size=3 * PART_ITEMS + 3),
       warnings=st.one_of(st.none(), st.lists(_label, min_size=1, max_size=2)),
       infos=st.one_of(st.none(), st.lists(_label, min_size=1, max_size=2)),
       stats=st.booleans())
def test_success_in_parts_is_byte_for_byte_success(items: list[dict[str, object]], warnings: list[str] | None,
                                                   infos: list[str] | None, stats: bool) -> None:
    data: dict[str, object] = {"resultType": "matrix", "result": items}
    if stats:
        data["stats"] = {"samples": {"totalQueryableSamples": len(items)}}
    calls: list[int] = []
    parted = success_in_parts(data, "result", warnings, infos, between=lambda: calls.append(1))
    whole = success(data, warnings, infos)
    assert b"".join(parted.parts) == whole.body
    assert parted.length == len(whole.body)
    assert dict(parted.raw_headers) == dict(whole.raw_headers)
    assert len(calls) == -(-len(items) // PART_ITEMS)  # one checkpoint per piece


def test_a_parts_response_leaves_in_messages_of_send_bytes() -> None:
    parts = [bytes([65 + i % 26]) * (SEND_BYTES // 4 + 1) for i in range(10)]
    messages: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    async def receive() -> dict[str, object]:
        raise AssertionError("a response does not read")

    response = PartsResponse(parts)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    asyncio.run(response(scope, receive, send))  # type: ignore[arg-type]
    start, *bodies = messages
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert (b"content-length", str(sum(map(len, parts))).encode()) in start["headers"]  # type: ignore[operator]
    assert [m.get("more_body", False) for m in bodies] == [True, True, False]
    sizes = [len(m["body"]) for m in bodies]  # type: ignore[arg-type]
    assert all(size >= SEND_BYTES for size in sizes[:-1])
    assert b"".join(m["body"] for m in bodies) == b"".join(parts)  # type: ignore[misc]


def test_a_parts_response_waits_between_messages_while_a_write_is_in_flight() -> None:
    """api/common.send_parts with the query thread's WritePriority: no message leaves while a
    write is in flight (query/write_priority.step_aside), all of them once it is answered."""
    parts = [bytes([65 + i % 26]) * (SEND_BYTES // 2 + 1) for i in range(8)]
    wp = WritePriority(max_pause_s=30.0)
    messages: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    async def receive() -> dict[str, object]:
        raise AssertionError("a response does not read")

    async def scenario() -> tuple[int, int]:
        response = PartsResponse(parts, writes=wp)
        wp.begin()
        sending = asyncio.ensure_future(response({"type": "http"}, receive, send))  # type: ignore[arg-type]
        for _ in range(20):
            await asyncio.sleep(0)
        held = len(messages)  # the start and the first body message, then the sender waits
        wp.end()
        await asyncio.wait_for(sending, 30)
        return held, len(messages)

    held, total = asyncio.run(scenario())
    assert held == 2 and total == 5  # start + 4 bodies of >= SEND_BYTES (two parts each)
    assert b"".join(m["body"] for m in messages[1:]) == b"".join(parts)  # type: ignore[misc]
    assert (wp.loop_pauses, wp.loop_capped) == (1, 0)


@settings(max_examples=100)
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                    max_leaves=20),
       st.lists(st.text(max_size=5), max_size=2), st.lists(st.text(max_size=5), max_size=2))
def test_success_is_the_plain_json_response(data: object, warnings: list[str], infos: list[str]) -> None:
    """``success`` builds its response's headers itself: the same status, body, media type and
    raw headers (names, values, order) as Starlette's ``Response`` of the same JSON."""
    body: dict[str, object] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = warnings
    if infos:
        body["infos"] = infos
    got, want = success(data, warnings or None, infos or None), json_response(body)
    assert (got.status_code, got.body, got.media_type, got.raw_headers, got.background) == \
        (want.status_code, want.body, want.media_type, want.raw_headers, want.background)
    assert dict(got.headers) == dict(want.headers)


_QS_ALPHABET = "ab=&+%2F0x7Eé;?# \x00"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=_QS_ALPHABET, max_size=40))
def test_query_params_are_parse_qsls(text: str) -> None:
    """The query-string parser gives exactly what ``urllib.parse.parse_qsl`` gives (the handlers'
    parameters, lane or not), also for stray ``%``, ``+``, empty pairs and names without ``=``."""
    raw = text.encode("latin-1", "replace")
    assert query_params(raw) == urllib.parse.parse_qsl(raw.decode("latin-1"), keep_blank_values=True)


def test_query_params_decode_escapes_and_keep_blanks() -> None:
    raw = b"query=rate%28m%5B5m%5D%29+%2B+1&time=&&match%5B%5D=a&match[]=b&flag&x=%E2%82%AC&bad=%zz%2"
    assert query_params(raw) == [("query", "rate(m[5m]) + 1"), ("time", ""), ("match[]", "a"), ("match[]", "b"),
                                 ("flag", ""), ("x", "€"), ("bad", "%zz%2")]


# Percent escapes of every kind: valid (either case), cut short, not hex, UTF-8 sequences whole,
# cut and invalid, '+', and raw non-ASCII characters.
_ESCAPES = st.sampled_from(["%41", "%7e", "%7E", "%2B", "%2b", "%25", "%", "%4", "%zz", "%g1", "%E2%82%AC", "%E2%82",
                            "%C3", "%FF", "%80%80", "%00", "+", "=", "&", "a", "Z", "0", " ", "é", "€", "\x7f"])


@settings(max_examples=1000, deadline=None)
@given(st.lists(_ESCAPES, max_size=20).map("".join))
def test_unquote_plus_is_urllibs(text: str) -> None:
    """The compiled percent-decoder gives what ``urllib.parse.unquote`` gives after the ``+``
    replace, for ASCII strings (its own loop) and non-ASCII ones (urllib's path)."""
    from clearsight.api import _urldecode  # type: ignore[attr-defined]

    assert _urldecode.unquote_plus(text) == urllib.parse.unquote(text.replace("+", " "))


@settings(max_examples=500, deadline=None)
@given(st.lists(_ESCAPES, max_size=30).map("".join))
def test_form_params_are_parse_qsls(text: str) -> None:
    """A form body's parameters are what ``urllib.parse.parse_qsl`` gives for its UTF-8 text."""
    body = text.encode("utf-8")
    assert form_params(body) == urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=10_000)


def test_form_params_refuse_what_parse_qsl_refuses() -> None:
    """Invalid UTF-8 and more than 10,000 fields are refused as ``bad_data``, as before."""
    with pytest.raises(ApiError, match="invalid form body: 'utf-8' codec can't decode"):
        form_params(b"query=\xff")
    assert len(form_params(b"a=1" + b"&a=1" * 9_999)) == 10_000
    with pytest.raises(ApiError, match="Max number of fields exceeded") as e:
        form_params(b"a=1" + b"&a=1" * 10_000)
    assert e.value.error_type == "bad_data"
