"""The metrics store runs without pyarrow (whose import alone costs ~50 MiB of RSS, docs/storage.md
"Memory"): importing it and storing and compacting samples loads no pyarrow module, and its zstd
frames (``zstd_frames``, cramjam) refuse damaged input with ``ZstdError`` only."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.store.embedded import zstd_frames


def test_the_metrics_store_writes_compacts_and_reads_without_pyarrow(tmp_path: object) -> None:
    # a fresh interpreter: this test process may have imported pyarrow through other tests
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from clearsight.model.samples import SampleBatch
        from clearsight.model.matchers import Matcher
        from clearsight.store.embedded import EmbeddedMetricsStore, chunks
        from clearsight.store.embedded import deletion, histogram_codec, histogram_table
        from clearsight.store.kernel import repair

        store = EmbeddedMetricsStore({str(tmp_path)!r})
        keys = [b"a", b"b"]
        labels = {{b"a": (("__name__", "up"), ("job", "a")), b"b": (("__name__", "up"), ("job", "b"))}}
        n = 240
        batch = SampleBatch(keys=keys, key_kind="t", decode_labels=labels.__getitem__,
                            series_idx=np.repeat(np.arange(2, dtype=np.int32), n),
                            timestamps=np.tile(np.arange(n, dtype=np.int64) * 15_000, 2),
                            values=np.arange(2 * n, dtype=np.float64) / 4)
        store.append("t", batch).result()
        store.compact()
        got = store.select("t", [Matcher.of("=", "__name__", "up")], 0, 10**12)
        assert len(got) == 2 and np.diff(got.offsets).tolist() == [n, n], got
        assert sorted(got.values.tolist()) == (np.arange(2 * n) / 4).tolist()
        old = chunks.encode(np.zeros(n, np.uint32), np.arange(n, dtype=np.int64), np.arange(n) / 3, pack=False)
        assert old.codec.tolist() == [chunks.XOR]  # the first format: byte planes in a zstd frame
        ts, vals = chunks.decode(old.n, old.codec, old.scale, old.data, min_ts=old.min_ts, max_ts=old.max_ts)
        assert (ts == np.arange(n)).all() and (vals == np.arange(n) / 3).all()
        store.close()
        print(sorted(m for m in sys.modules if m.split(".")[0] == "pyarrow"))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 4096))
def test_damaged_frames_raise_zstd_error_only(data: bytes, size: int) -> None:
    try:
        raw = zstd_frames.decompress(data, size)
    except zstd_frames.ZstdError:
        return
    assert len(raw) == size


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=5000), st.integers(1, 19))
def test_frames_round_trip_and_refuse_another_size(raw: bytes, level: int) -> None:
    frame = zstd_frames.compress(raw, level)
    assert zstd_frames.decompress(frame, len(raw)) == raw
    for wrong in (len(raw) + 1, max(0, len(raw) - 1)):
        if wrong != len(raw):
            try:
                zstd_frames.decompress(frame, wrong)
            except zstd_frames.ZstdError:
                continue
            raise AssertionError(f"a frame of {len(raw)} bytes decompressed to {wrong}")
