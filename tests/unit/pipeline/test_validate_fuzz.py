"""Property tests for the validation step: decode + validate of arbitrary label sets, values and
timestamps either passes with canonical labels or raises exactly the error the rules predict."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.ingest import remote_write as rw
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.pipeline.errors import InvalidInput, LimitExceeded
from clearsight.pipeline.limits import WriteLimits
from clearsight.pipeline.validate import make_validator

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW_S = 1_700_000_000.0
NOW_MS = int(NOW_S * 1000)
LIMITS = WriteLimits(
    max_labels_per_series=8,
    max_label_name_length=16,
    max_label_value_length=24,
    max_future_ms=60_000,
    max_past_ms=3_600_000,
)

text = st.one_of(st.text(max_size=20), st.binary(max_size=20), st.sampled_from(["", "__name__", "job", "a"]))
label_list = st.lists(st.tuples(text, text), max_size=12)
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(math.inf), st.just(-math.inf))
timestamps = st.one_of(
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.integers(NOW_MS - LIMITS.max_past_ms - 5, NOW_MS + LIMITS.max_future_ms + 5),
)


def expected_error(labels: list[tuple[str | bytes, str | bytes]]) -> tuple[type[Exception], str] | None:
    """The rules of pipeline.validate, restated independently, in their documented order."""
    raw = []
    for n, v in labels:
        nb = n if isinstance(n, bytes) else n.encode()
        vb = v if isinstance(v, bytes) else v.encode()
        try:
            raw.append((nb.decode(), vb.decode()))
        except UnicodeDecodeError:
            return InvalidInput, "is not valid UTF-8"
    kept = [p for p in raw if p[1]]
    if len(kept) > LIMITS.max_labels_per_series:
        return LimitExceeded, "max_labels_per_series"
    for n, v in raw:
        if not n:
            return InvalidInput, "empty label name"
        if len(n.encode()) > LIMITS.max_label_name_length:
            return LimitExceeded, "max_label_name_length"
        if len(v.encode()) > LIMITS.max_label_value_length:
            return LimitExceeded, "max_label_value_length"
    names = [n for n, _ in raw]
    if len(set(names)) != len(names):
        return InvalidInput, "duplicate label name"
    if not any(n == "__name__" for n, _ in kept):
        return InvalidInput, "has no metric name"
    return None


@settings(parent=FUZZ)
@given(label_list, values, timestamps)
def test_validation_matches_the_rules(
    labels: list[tuple[str | bytes, str | bytes]], value: float, ts: int
) -> None:
    body = encode_snappy(WriteRequest([TimeSeries(labels, [(ts, value)])]))
    batch = rw.decode_write_request(body, content_encoding="snappy", content_type=None, limits=LIMITS)
    validate = make_validator(LIMITS, lambda: NOW_S)
    ts_ok = NOW_MS - LIMITS.max_past_ms <= ts <= NOW_MS + LIMITS.max_future_ms
    want = None if not ts_ok else expected_error(labels)
    try:
        out = validate("t", batch)
    except (InvalidInput, LimitExceeded) as e:
        if not ts_ok:
            assert isinstance(e, InvalidInput) and e.reason in ("too_old", "too_far_in_future")
            return
        assert want is not None, f"unexpected rejection: {e.message}"
        cls, fragment = want
        assert type(e) is cls and fragment in e.message, (e.message, want)
        return
    assert ts_ok and want is None
    canon = out.decode_labels(out.keys[0])
    assert list(canon) == sorted(canon) and all(v for _, v in canon)
    assert dict(canon) == {
        (n if isinstance(n, str) else n.decode()): (v if isinstance(v, str) else v.decode())
        for n, v in labels
        if v
    }
    assert out.values.tobytes() == batch.values.tobytes()


@settings(parent=FUZZ, max_examples=30)
@given(st.integers(9, 3000))
def test_huge_label_sets_hit_the_labels_limit(n: int) -> None:
    labels = [("__name__", "x")] + [(f"l{i}", "v") for i in range(n)]
    body = encode_snappy(WriteRequest([TimeSeries(labels, [(NOW_MS, 1.0)])]))
    batch = rw.decode_write_request(body, content_encoding="snappy", content_type=None, limits=LIMITS)
    try:
        make_validator(LIMITS, lambda: NOW_S)("t", batch)
    except LimitExceeded as e:
        assert e.limit == "labels_per_series" and f"has {n + 1} labels" in e.message
        assert len(e.message) < 2000
    else:
        raise AssertionError("accepted a huge label set")
