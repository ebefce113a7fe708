"""A full disk under a running server: writes answer 503 + Retry-After, nothing of a refused batch is
stored, every acknowledged batch is, and writes are accepted again by themselves once there is space.

Two real ways to fill the disk, both tried here:

- ``tmpfs``: the data directory on a size-limited tmpfs (``mount -t tmpfs -o size=...``, needs
  root/CAP_SYS_ADMIN), filled with a file; deleting the file gives the space back (ENOSPC). Where
  mounting is not permitted (not root) the case runs the ``fsize`` method instead and says so in its
  output; as root (CI) a failed mount fails the test.
- ``fsize``: the server's RLIMIT_FSIZE lowered to just above its files' sizes with ``prlimit``
  (writes past it fail with EFBIG; Python ignores SIGXFSZ), raised again afterwards.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.model.matchers import Matcher
from clearsight.store.embedded import EmbeddedMetricsStore
from tests.support.peers import Proc, start_clearsight

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
SERIES = 300
PER_BATCH = 4


def _batch(batch_id: int, base_ms: int) -> bytes:
    ts = [base_ms + batch_id * PER_BATCH + j for j in range(PER_BATCH)]
    return encode_snappy(WriteRequest([
        TimeSeries([("__name__", "enospc_test"), ("series", str(s)), ("pad", "x" * 40)],
                   [(t, float(batch_id) + s / 1000) for t in ts])
        for s in range(SERIES)
    ]))


def _try_mount(mnt: Path, size: str) -> bool:
    mnt.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                       capture_output=True, check=False)
    return r.returncode == 0


class Disk:
    """Fills and frees the disk under the server by one of the two methods."""

    def __init__(self, method: str, root: Path) -> None:
        self.method = method
        self.root = root
        self.data_dir = root / "data"
        self.proc: Proc | None = None

    def fill(self) -> None:
        if self.method == "tmpfs":
            st = os.statvfs(self.root)
            free = st.f_bavail * st.f_frsize
            with open(self.root / "filler", "wb") as f:
                f.write(b"\0" * max(0, free - 1_500_000))
        else:
            assert self.proc is not None
            biggest = max(p.stat().st_size for p in self.data_dir.iterdir() if p.is_file())
            resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (biggest + 1_500_000, resource.RLIM_INFINITY))

    def free(self) -> None:
        if self.method == "tmpfs":
            (self.root / "filler").unlink()
        else:
            assert self.proc is not None
            resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


@contextlib.contextmanager
def _disk(method: str, tmp_path: Path) -> Iterator[Disk]:
    if method == "tmpfs":
        mnt = tmp_path / "mnt"
        if _try_mount(mnt, "48m"):
            try:
                yield Disk("tmpfs", mnt)
            finally:
                subprocess.run(["umount", "-l", str(mnt)], check=False)
            return
        # As root (CI runs the suite as root) a mount that fails is a failure, not a quiet fallback.
        assert os.geteuid() != 0, "tmpfs could not be mounted as root: the real full-disk case cannot run"
        print("tmpfs cannot be mounted here (not root): using RLIMIT_FSIZE")
    root = tmp_path / "disk"
    root.mkdir()
    yield Disk("fsize", root)


@pytest.mark.parametrize("method", ["tmpfs", "fsize"])
def test_full_disk_answers_503_and_recovers(tmp_path: Path, method: str) -> None:
    base_ms = int(time.time() * 1000) - 1_200_000
    acked: list[int] = []
    refused: list[int] = []
    with _disk(method, tmp_path) as disk:
        proc = start_clearsight(tmp_path / "run", data_dir=disk.data_dir)
        disk.proc = proc
        try:
            with httpx.Client(base_url=proc.url, timeout=30) as client:
                def post(bid: int) -> httpx.Response:
                    r = client.post("/api/v1/write", content=_batch(bid, base_ms), headers=HEADERS)
                    if r.status_code == 204:
                        acked.append(bid)
                    else:
                        refused.append(bid)
                    return r

                for bid in range(20):
                    assert post(bid).status_code == 204
                disk.fill()
                bid = 20
                first_503: httpx.Response | None = None
                while first_503 is None and bid < 5000:
                    r = post(bid)
                    bid += 1
                    if r.status_code != 204:
                        assert r.status_code == 503, r.text
                        first_503 = r
                assert first_503 is not None, "the disk never filled up"
                assert int(first_503.headers["Retry-After"]) >= 1
                # Still full: more writes are refused the same way; the server stays up and reads work.
                for _ in range(5):
                    r = post(bid)
                    bid += 1
                    assert r.status_code == 503, r.text
                    assert "Retry-After" in r.headers
                assert client.get("/-/healthy").status_code == 200
                q = client.get("/api/v1/query", params={"query": "count(last_over_time(enospc_test[1h]))"})
                assert q.status_code == 200 and q.json()["data"]["result"][0]["value"][1] == str(SERIES)

                disk.free()
                deadline = time.monotonic() + 30
                ok = 0
                while ok < 10 and time.monotonic() < deadline:
                    r = post(bid)
                    bid += 1
                    if r.status_code == 204:
                        ok += 1
                    else:
                        assert r.status_code == 503, r.text
                        time.sleep(0.2)
                assert ok == 10, f"writes were not accepted again after the space came back:\n{proc.log()}"
        finally:
            code = proc.stop()
        assert code == 0, proc.log()
        log = proc.log()
        assert "No space left on device" in log or "File too large" in log

        store = EmbeddedMetricsStore(disk.data_dir, retention_ms=10**12, out_of_order_window_ms=10**10,
                                     queue_max_batches=8)
        try:
            data = store.select("default", [Matcher.of("=", "__name__", "enospc_test")], 0, 2**62)
            assert len(data) == SERIES
            for i in range(len(data)):
                _labels, ts, _vals = data.series(i)
                have = set(((ts - base_ms) // PER_BATCH).tolist())
                lost = [b for b in acked if b not in have]
                assert not lost, f"series {i}: acknowledged batches lost: {lost[:5]}"
                leaked = [b for b in refused if b in have]
                assert not leaked, f"series {i}: refused batches were stored: {leaked[:5]}"
                assert ts.size == len(acked) * PER_BATCH
        finally:
            store.close()


def test_sender_threads_do_not_hang_on_a_broken_database(tmp_path: Path) -> None:
    """Many concurrent writers while the disk fills: every request is answered (204 or 503)."""
    with _disk("fsize", tmp_path) as disk:
        proc = start_clearsight(tmp_path / "run", data_dir=disk.data_dir)
        disk.proc = proc
        codes: list[int] = []
        errors: list[str] = []
        base_ms = int(time.time() * 1000) - 1_200_000

        def sender(k: int) -> None:
            # Until the disk is full and a few more (the head log takes ~3-8 bytes per sample of
            # WAL, so filling the 1.5 MB of room left takes a few hundred of these requests).
            with httpx.Client(base_url=proc.url, timeout=30) as client:
                for j in range(1000):
                    if codes.count(503) >= 20:
                        return
                    try:
                        r = client.post("/api/v1/write", content=_batch(k * 10_000 + j, base_ms), headers=HEADERS)
                    except httpx.HTTPError as e:
                        errors.append(repr(e))
                        return
                    codes.append(r.status_code)

        try:
            disk.fill()
            threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert not any(t.is_alive() for t in threads)
        finally:
            disk.free()
            code = proc.stop()
        assert not errors, errors
        assert set(codes) <= {204, 503} and 503 in codes, sorted(set(codes))
        assert code == 0, proc.log()
