"""The global cap on decompressed request bytes (pipeline/decoded_bytes.py) and the decompressors
that hold against it: remote-write's snappy (declared length, before decompressing), OTLP's gzip and
deflate (step by step as inflated), Loki push's snappy."""

from __future__ import annotations

import gzip
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.ingest import otlp_common
from clearsight.ingest.log_common import LogLimits
from clearsight.ingest.loki_push import snappy_block_decompress
from clearsight.ingest.remote_write import decompress as snappy_decompress
from clearsight.pipeline.decoded_bytes import DecodedBytes, HoldingPool, grow_current
from clearsight.pipeline.errors import InvalidInput, Overloaded, PayloadTooLarge
from clearsight.pipeline.limits import WriteLimits

MIB = 1 << 20


def test_a_hold_is_given_back_when_its_block_ends() -> None:
    cap = DecodedBytes(100)
    with cap.hold(60) as h:
        h.grow(30)
        assert cap.held == 90
    assert cap.held == 0
    assert cap.peak == 90


def test_beyond_the_cap_is_503_with_retry_after_and_the_setting_named() -> None:
    cap = DecodedBytes(100)
    with cap.hold(60):
        with pytest.raises(Overloaded) as e:
            cap.hold(41)
        assert e.value.status == 503
        assert e.value.retry_after >= 1
        assert "server.max_inflight_decoded_bytes" in e.value.message
        assert cap.refused == 1
        assert cap.held == 60  # the refused hold took nothing
    assert cap.held == 0


def test_a_request_alone_always_fits() -> None:
    cap = DecodedBytes(100)
    with cap.hold(150):  # nothing else held: bounded by max_decompressed_bytes, not refused here
        assert cap.held == 150
    assert cap.held == 0


def test_a_hold_that_fails_to_grow_still_gives_back_what_it_held() -> None:
    cap = DecodedBytes(100)
    other = cap.hold(50)
    with pytest.raises(Overloaded):
        with cap.hold(40) as h:
            h.grow(20)
    assert cap.held == 50
    other.__exit__(None, None, None)
    assert cap.held == 0


def test_zero_means_unbounded_but_counted() -> None:
    cap = DecodedBytes(0)
    with cap.hold(10 << 40):
        with cap.hold(10 << 40):
            assert cap.held == 20 << 40
    assert cap.peak == 20 << 40


def test_grow_current_outside_the_pool_holds_nothing() -> None:
    grow_current(1 << 40)  # the event loop's inline decodes: no hold current, no effect


def test_the_pool_holds_what_its_calls_decompress_and_releases_it_after() -> None:
    cap = DecodedBytes(64 * MIB)
    pool = HoldingPool(ThreadPoolExecutor(max_workers=2), cap)
    body = cramjam.snappy.compress_raw(b"\0" * (5 * MIB)).read()
    seen: list[int] = []

    def decode() -> int:
        out = snappy_decompress(body, WriteLimits())
        seen.append(cap.held)
        return len(out)

    assert pool.submit(decode).result() == 5 * MIB
    assert seen == [5 * MIB]
    assert cap.held == 0
    pool.shutdown()


def test_the_pool_refuses_a_decode_that_does_not_fit_beside_another_and_lets_it_in_after() -> None:
    cap = DecodedBytes(8 * MIB)
    pool = HoldingPool(ThreadPoolExecutor(max_workers=2), cap)
    body = cramjam.snappy.compress_raw(b"x" * (6 * MIB)).read()
    inside = threading.Event()
    leave = threading.Event()

    def first() -> None:
        snappy_decompress(body, WriteLimits())
        inside.set()
        leave.wait(10)

    f1 = pool.submit(first)
    assert inside.wait(10)
    with pytest.raises(Overloaded):  # 6 + 6 MiB > 8 MiB: refused before decompressing
        pool.submit(lambda: snappy_decompress(body, WriteLimits())).result()
    leave.set()
    f1.result()
    assert len(pool.submit(lambda: snappy_decompress(body, WriteLimits())).result()) == 6 * MIB
    assert cap.held == 0
    assert cap.refused == 1
    pool.shutdown()


def test_gzip_is_held_step_by_step_as_it_is_inflated() -> None:
    cap = DecodedBytes(0)
    pool = HoldingPool(ThreadPoolExecutor(max_workers=1), cap)
    raw = b"a" * (40 * MIB + 123)
    body = gzip.compress(raw, 6)
    out = pool.submit(otlp_common.decompress, body, "gzip", WriteLimits()).result()
    assert out == raw
    assert cap.peak == len(raw)  # every byte of output held, in steps
    assert cap.held == 0
    pool.shutdown()


def test_gzip_beyond_the_cap_beside_another_hold_is_refused_midway() -> None:
    cap = DecodedBytes(24 * MIB)
    pool = HoldingPool(ThreadPoolExecutor(max_workers=1), cap)
    body = gzip.compress(b"a" * (20 * MIB), 6)
    with cap.hold(10 * MIB):
        with pytest.raises(Overloaded):
            pool.submit(otlp_common.decompress, body, "gzip", WriteLimits()).result()
    assert cap.held == 0
    pool.shutdown()


def test_loki_snappy_holds_the_buffer_and_its_copy() -> None:
    cap = DecodedBytes(0)
    pool = HoldingPool(ThreadPoolExecutor(max_workers=1), cap)
    body = cramjam.snappy.compress_raw(b"y" * MIB).read()
    assert len(pool.submit(snappy_block_decompress, body, LogLimits()).result()) == MIB
    assert cap.peak == 2 * MIB
    pool.shutdown()


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=4096), members=st.integers(1, 3), chunk=st.sampled_from([1, 7, 64, 1 << 20]),
       wbits=st.sampled_from(["gzip", "deflate"]))
def test_stepwise_inflate_gives_the_same_bytes_and_errors(raw: bytes, members: int, chunk: int, wbits: str) -> None:
    """Inflating in steps of ``chunk`` bytes returns what zlib returns in one call, for several gzip
    members, and a stream cut short is still an error, not a silent truncation."""
    with mock.patch.object(otlp_common, "INFLATE_CHUNK", chunk):
        _check_inflate(raw, members, wbits)


def _check_inflate(raw: bytes, members: int, wbits: str) -> None:
    if wbits == "gzip":
        body = b"".join(gzip.compress(raw) for _ in range(members))
        expected = raw * members
    else:
        body = zlib.compress(raw)
        expected = raw
    assert otlp_common.decompress(body, wbits, WriteLimits()) == expected
    with pytest.raises(InvalidInput):
        otlp_common.decompress(body[: len(body) - 3], wbits, WriteLimits())
    small = WriteLimits(max_decompressed_bytes=max(0, len(expected) - 1))
    if expected:
        with pytest.raises(PayloadTooLarge):
            otlp_common.decompress(body, wbits, small)
