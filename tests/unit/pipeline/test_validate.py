"""The validation step: request limits, timestamp window, label rules, the key cache, canonical labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from clearsight.ingest import remote_write as rw
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_write_request
from clearsight.model.labels import Labels
from clearsight.model.samples import STALE_NAN, SampleBatch
from clearsight.pipeline.errors import InvalidInput, LimitExceeded
from clearsight.pipeline.limits import WriteLimits
from clearsight.pipeline.validate import describe, make_validator
from clearsight.store.embedded import EmbeddedMetricsStore

NOW_S = 1_700_000_000.0
NOW_MS = int(NOW_S * 1000)


def validator(**limits: int):  # type: ignore[no-untyped-def]
    return make_validator(WriteLimits(**limits), lambda: NOW_S)


def prompb_batch(
    series: list[tuple[list[tuple[str | bytes, str | bytes]], list[tuple[int, float]]]],
) -> SampleBatch:
    pb = encode_write_request(WriteRequest([TimeSeries(lbls, s) for lbls, s in series]))
    return rw.batch_from_protobuf(pb)


def one(labels: list[tuple[str | bytes, str | bytes]], ts: int = NOW_MS, v: float = 1.0) -> SampleBatch:
    return prompb_batch([(labels, [(ts, v)])])


class CountingDecode:
    def __init__(self, inner: SampleBatch) -> None:
        self.inner = inner.decode_labels
        self.calls: list[bytes] = []

    def __call__(self, key: bytes) -> Labels:
        self.calls.append(key)
        return self.inner(key)


def test_valid_batch_passes_and_decode_labels_is_canonical() -> None:
    b = prompb_batch(
        [
            ([("job", "n"), ("__name__", "up"), ("empty", ""), ("a", "1")], [(NOW_MS, 1.0)]),
            ([("__name__", "x")], [(NOW_MS - 1000, STALE_NAN), (NOW_MS, math.nan)]),
        ]
    )
    out = validator()("t", b)
    assert out.keys == b.keys and out.values is b.values and out.timestamps is b.timestamps
    assert out.decode_labels(out.keys[0]) == (("__name__", "up"), ("a", "1"), ("job", "n"))
    assert out.decode_labels(out.keys[1]) == (("__name__", "x"),)


def test_nan_and_inf_values_are_valid() -> None:
    b = prompb_batch([([("__name__", "x")], [(NOW_MS, math.inf), (NOW_MS, -math.inf), (NOW_MS, math.nan)])])
    assert validator()("t", b).num_samples == 3


def test_series_and_samples_per_request() -> None:
    b = prompb_batch([([("__name__", f"m{i}")], [(NOW_MS, 1.0), (NOW_MS + 1, 2.0)]) for i in range(3)])
    with pytest.raises(
        LimitExceeded,
        match=r"request has 3 series, over the limit of 2 series per request "
        r"\(max_series_per_request\)",
    ) as ei:
        validator(max_series_per_request=2)("t", b)
    assert ei.value.limit == "series_per_request" and ei.value.status == 400
    with pytest.raises(
        LimitExceeded, match=r"request has 6 samples, over the limit of 5 .*max_samples_per_request"
    ):
        validator(max_samples_per_request=5)("t", b)
    validator(max_series_per_request=3, max_samples_per_request=6)("t", b)


def test_timestamp_window_is_inclusive() -> None:
    v = validator(max_future_ms=1000, max_past_ms=5000)
    v("t", one([("__name__", "x")], NOW_MS + 1000))
    v("t", one([("__name__", "x")], NOW_MS - 5000))
    with pytest.raises(
        InvalidInput,
        match=r"sample timestamp 1700000001001 \(2023-11-14T22:13:21.001\+00:00\) of "
        r'series \{__name__="x", a="b"\} is too far in the future: more than '
        r"1000 ms \(max_future_ms\)",
    ) as ei:
        v("t", one([("__name__", "x"), ("a", "b")], NOW_MS + 1001))
    assert ei.value.reason == "too_far_in_future"
    with pytest.raises(InvalidInput, match=r"is too old: more than 5000 ms \(max_past_ms\)") as ei:
        v("t", one([("__name__", "x")], NOW_MS - 5001))
    assert ei.value.reason == "too_old"


def test_timestamp_error_names_the_first_offending_sample() -> None:
    b = prompb_batch(
        [([("__name__", "ok")], [(NOW_MS, 1.0)]), ([("__name__", "bad")], [(NOW_MS, 1.0), (-(1 << 63), 2.0)])]
    )
    with pytest.raises(
        InvalidInput, match=r'-9223372036854775808 \(out of range\) of series \{__name__="bad"\}'
    ):
        validator()("t", b)


@pytest.mark.parametrize(
    "labels, cls, match",
    [
        ([("job", "x")], InvalidInput, r'series \{job="x"\} has no metric name'),
        ([("__name__", ""), ("job", "x")], InvalidInput, "has no metric name"),
        ([], InvalidInput, r"series \{\} has no metric name"),
        (
            [("__name__", "x"), ("", "v")],
            InvalidInput,
            r"empty label name \(value 'v'\) in series \{__name__=\"x\", =\"v\"\}",
        ),
        ([("__name__", "x"), ("a", "1"), ("a", "2")], InvalidInput, r"duplicate label name 'a' in series"),
        ([("__name__", "x"), ("a", ""), ("a", "2")], InvalidInput, r"duplicate label name 'a'"),
        (
            [("__name__", "x"), ("a" * 9, "1")],
            LimitExceeded,
            r"label name 'aaaaaaaaa' is 9 bytes, over the limit of 8 bytes \(max_label_name_length\) in series",
        ),
        ([("__name__", "x"), ("é" * 5, "1")], LimitExceeded, r"is 10 bytes, over the limit of 8 bytes"),
        (
            [("__name__", "x"), ("a", "v" * 17)],
            LimitExceeded,
            r"value of label 'a' is 17 bytes, over the limit of 16 bytes \(max_label_value_length\) in series "
            r'\{__name__="x", a="vvvvvvvvvvvvvvvvv"\}',
        ),
        ([("__name__", "x"), ("a", "ü" * 9)], LimitExceeded, r"is 18 bytes, over the limit of 16 bytes"),
        (
            [("__name__", "x")] + [(f"l{i}", "v") for i in range(4)],
            LimitExceeded,
            r"has 5 labels, over the limit of 4 labels per series \(max_labels_per_series\)",
        ),
        ([("__name__", "x"), ("a", b"\xc3\x28")], InvalidInput, r'label value "\\xc3\(" is not valid UTF-8'),
        ([("__name__", "x"), (b"\xff", "v")], InvalidInput, r'label name "\\xff" is not valid UTF-8'),
    ],
)
def test_label_rules(labels: list[tuple[str | bytes, str | bytes]], cls: type[Exception], match: str) -> None:
    v = validator(max_label_name_length=8, max_label_value_length=16, max_labels_per_series=4)
    with pytest.raises(cls, match=match):
        v("t", one(labels))


@pytest.mark.parametrize(
    "labels",
    [
        [("__name__", "x"), ("a" * 8, "v" * 16)],
        [("__name__", "x"), ("é" * 4, "ü" * 8)],
        [("__name__", "x")] + [(f"l{i}", "v") for i in range(3)] + [(f"e{i}", "") for i in range(10)],
        [("__name__", "mé.dots"), ("😀", "ok")],  # Prometheus 3: UTF-8 names
    ],
)
def test_labels_at_the_limits_pass(labels: list[tuple[str, str]]) -> None:
    v = validator(max_label_name_length=8, max_label_value_length=16, max_labels_per_series=4)
    v("t", one(labels))  # type: ignore[arg-type]


def test_limit_exceeded_reasons() -> None:
    with pytest.raises(LimitExceeded) as ei:
        validator(max_labels_per_series=1)("t", one([("__name__", "x"), ("a", "b")]))
    assert ei.value.limit == "labels_per_series" and ei.value.reason == "limit_labels_per_series"


def test_known_keys_are_not_decoded_again() -> None:
    v = validator()
    first = one([("__name__", "x"), ("a", "1")])
    counting = CountingDecode(first)
    first.decode_labels = counting
    out = v("t", first)
    assert counting.calls == first.keys
    assert out.decode_labels(first.keys[0]) == (("__name__", "x"), ("a", "1"))
    assert counting.calls == first.keys  # memoized: the store's call does not decode again

    second = one([("__name__", "x"), ("a", "1")], NOW_MS + 5)
    counting2 = CountingDecode(second)
    second.decode_labels = counting2
    out2 = v("t", second)
    assert counting2.calls == []
    # a store that has not seen the key still gets canonical labels, decoded on demand
    assert out2.decode_labels(second.keys[0]) == (("__name__", "x"), ("a", "1"))
    assert counting2.calls == second.keys


def test_cache_is_per_key_kind() -> None:
    v = validator()
    prompb = one([("__name__", "x")])
    v("t", prompb)
    canon = SampleBatch.from_series([((("__name__", "x"),), [(NOW_MS, 1.0)])])
    counting = CountingDecode(canon)
    canon.decode_labels = counting
    v("t", canon)
    assert counting.calls == canon.keys


def test_cache_is_bounded_and_evicted_keys_are_validated_again() -> None:
    v = make_validator(WriteLimits(), lambda: NOW_S, cache_size=4)
    batches = [one([("__name__", f"m{i}")]) for i in range(10)]
    for b in batches:
        v("t", b)
    again = batches[0]
    counting = CountingDecode(again)
    again.decode_labels = counting
    v("t", again)
    assert counting.calls == again.keys


def test_invalid_key_is_not_cached() -> None:
    v = validator(max_labels_per_series=1)
    bad = one([("__name__", "x"), ("a", "1")])
    for _ in range(2):
        with pytest.raises(LimitExceeded):
            v("t", bad)


def test_duplicate_keys_in_one_request_are_validated_once() -> None:
    b = prompb_batch([([("__name__", "x")], [(NOW_MS, 1.0)]), ([("__name__", "x")], [(NOW_MS + 1, 2.0)])])
    counting = CountingDecode(b)
    b.decode_labels = counting
    validator()("t", b)
    assert len(counting.calls) == 1


def test_canon_batches_are_validated_too() -> None:
    b = SampleBatch.from_series([((("job", "x"),), [(NOW_MS, 1.0)])])
    with pytest.raises(InvalidInput, match="no metric name"):
        validator()("t", b)


def test_inconsistent_batch_is_rejected() -> None:
    b = one([("__name__", "x")])
    b.series_idx = np.array([3], dtype=np.int32)
    with pytest.raises(InvalidInput, match="series index outside the batch"):
        validator()("t", b)


def test_empty_batch() -> None:
    assert validator()("t", SampleBatch.empty()).num_series == 0


def test_describe_is_bounded() -> None:
    labels = tuple([("__name__", "x")] + [(f"l{i:02}", "v" * 500) for i in range(30)])
    text = describe(labels)
    assert text.startswith('{__name__="x", l00="' + "v" * 100 + '..."')
    assert text.endswith("... 19 more}")
    assert len(text) < 2000


def test_concurrent_use_with_cache_turnover() -> None:
    import threading

    v = make_validator(WriteLimits(), lambda: NOW_S, cache_size=16)
    batches = [
        prompb_batch([([("__name__", f"m{i % 40}"), ("k", str(j))], [(NOW_MS, 1.0)]) for j in range(5)])
        for i in range(200)
    ]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for b in batches[offset::4]:
                out = v("t", b)
                for key in out.keys:
                    labels = out.decode_labels(key)
                    assert list(labels) == sorted(labels) and labels[0][0] == "__name__"
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_with_the_stores_known_keys_only_keys_the_store_lacks_are_validated(tmp_path: Path) -> None:
    store = EmbeddedMetricsStore(tmp_path)
    try:
        v = make_validator(WriteLimits(), lambda: NOW_S, known_keys=store.known_keys)
        first = one([("__name__", "x")])
        counting = CountingDecode(first)
        first.decode_labels = counting
        out = v("t", first)
        assert counting.calls == first.keys
        assert store.append("t", out).result().series_created == 1
        for tenant, calls in (("t", []), ("u", first.keys)):  # known to the store for tenant t only
            again = one([("__name__", "x")], ts=NOW_MS + 1000)
            counting = CountingDecode(again)
            again.decode_labels = counting
            v(tenant, again)
            assert counting.calls == calls
        other = one([("__name__", "y")])  # validated but not stored: validated again next time
        for _ in range(2):
            counting = CountingDecode(other)
            other.decode_labels = counting
            v("t", other)
            assert counting.calls == other.keys
        bad = one([("__name__", "x"), ("a", "1")])
        with pytest.raises(LimitExceeded):
            make_validator(WriteLimits(max_labels_per_series=1), lambda: NOW_S, known_keys=store.known_keys)("t", bad)
    finally:
        store.close()
