"""The sealed block codec (store/embedded/log_blocks.py): round trips, sizes, the substring scan."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.store.embedded import log_blocks

row_st = st.tuples(
    st.integers(0, 2**40),  # ts offset
    st.integers(0, 10**6),  # seq
    st.text(max_size=40),  # body (any unicode, empty included)
    st.integers(0, 24),
    st.sampled_from(["", "INFO", "error"]),
    st.lists(st.tuples(st.text(max_size=4), st.text(max_size=4)), max_size=3),
    st.one_of(st.none(), st.binary(min_size=16, max_size=16)),
    st.one_of(st.none(), st.binary(min_size=8, max_size=8)),
    st.integers(0, 2**32 - 1),
)


def _table(rows: list[tuple[object, ...]], base: int) -> pa.Table:
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    return pa.table([
        pa.array([base + r[0] for r in rows], pa.int64()),
        pa.array([9] * len(rows), pa.uint32()),
        pa.array([r[3] for r in rows], pa.uint8()),
        pa.array([r[4] for r in rows], pa.string()),
        pa.array([r[2] for r in rows], pa.string()),
        pa.array([[k for k, _ in r[5]] for r in rows], pa.list_(pa.string())),  # type: ignore[attr-defined]
        pa.array([[v for _, v in r[5]] for r in rows], pa.list_(pa.string())),  # type: ignore[attr-defined]
        pa.array([r[6] for r in rows], pa.binary(16)),
        pa.array([r[7] for r in rows], pa.binary(8)),
        pa.array([r[8] for r in rows], pa.uint32()),
        pa.array([r[1] for r in rows], pa.int64()),
    ], schema=log_blocks.ROW_SCHEMA)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row_st, min_size=1, max_size=40), base=st.integers(0, 2**62))
def test_block_round_trips_every_column(rows: list[tuple[object, ...]], base: int) -> None:
    t = _table(rows, base)
    b = log_blocks.encode(9, t)
    assert (b.info.n, b.info.min_ts, b.info.max_ts) == (t.num_rows, t.column("ts")[0].as_py(), t.column("ts")[-1].as_py())
    assert (b.info.first_seq, b.info.last_seq) == (min(r[1] for r in rows), max(r[1] for r in rows))
    back = log_blocks.decode(9, b.info.min_ts, b.info.first_seq, b.meta, log_blocks.body_data(b.body, b.info.body_bytes))
    assert back.equals(t)
    ts, size, seq = log_blocks.sizes(b.info.min_ts, b.info.first_seq, b.meta)
    assert ts.tolist() == t.column("ts").to_pylist()
    assert seq.tolist() == t.column("seq").to_pylist()
    assert size.tolist() == [len(s.encode()) for s in t.column("body").to_pylist()]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), needles=st.lists(st.binary(min_size=1, max_size=4), max_size=3))
def test_native_scan_agrees_with_bytes_contains(data: bytes, needles: list[bytes]) -> None:
    want = all(nd in data for nd in needles)
    assert log_blocks.contains_all(data, tuple(needles)) is want
    body = log_blocks.encode(1, _table([(0, 0, data.decode("latin-1"), 0, "", [], None, None, 0)], 0))
    found = log_blocks.scan(body.body, body.info.body_bytes, tuple(nd.decode("latin-1").encode() for nd in needles))
    assert (found is not None) == all(nd.decode("latin-1").encode() in data.decode("latin-1").encode()
                                      for nd in needles)


def test_the_native_scanner_is_built() -> None:
    """setup.py builds _logscan; without it reads fall back to bytes.__contains__ under the GIL."""
    assert log_blocks._logscan is not None


def test_a_block_with_a_truncated_body_is_refused() -> None:
    t = _table([(i, i, f"line {i}", 0, "", [], None, None, 0) for i in range(10)], 5)
    b = log_blocks.encode(9, t)
    data = log_blocks.body_data(b.body, b.info.body_bytes)
    with pytest.raises(ValueError, match="body bytes"):
        log_blocks.decode(9, b.info.min_ts, b.info.first_seq, b.meta, data[:-1])
    assert np.array_equal(log_blocks.sizes(b.info.min_ts, b.info.first_seq, b.meta)[0], np.arange(10) + 5)
