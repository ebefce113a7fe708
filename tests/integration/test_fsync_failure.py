"""A failed fsync (issue 8 point 5: "treated as fatal for that batch and reported"), through the
whole app built by ``server.build`` over the real store, in process: the head log's ``fdatasync``
fails once with EIO (the kernel's answer when a device could not write back the page cache, which
no unprivileged test can make a real disk do here: device-mapper's ``error``/``flakey`` targets are
not in this kernel). That remote-write is answered 503 with Retry-After and the error, the server
logs it, the writes before and after it are acknowledged, and after a restart on the same directory
exactly those are stored: nothing of the refused batch, nothing acknowledged lost."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import build
from clearsight.store.kernel import record_log

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
NOW = int(time.time()) * 1000


def _body(batch: int, now: int = NOW) -> bytes:
    return encode_snappy(WriteRequest([TimeSeries([("__name__", "fsync_test"), ("s", str(s))],
                                                  [(now - 60_000 + batch * 1000, float(batch * 100 + s))])
                                       for s in range(50)]))


def _stored(tmp: Path) -> set[int]:
    """The batches stored (a sample's value names its batch), after a restart on ``tmp``; every
    series must hold the same batches (no batch partly stored)."""
    built = build(load_config(env={}, overrides={"storage.data_dir": str(tmp / "data")}))
    try:
        with TestClient(create_app(built.services)) as c:
            r = c.get("/api/v1/query_range", params={"query": "fsync_test", "start": (NOW - 60_000) / 1000,
                                                     "end": NOW / 1000, "step": "1"})
            assert r.status_code == 200, r.text
            per_series = [frozenset(int(float(v)) // 100 for _, v in s["values"]) for s in r.json()["data"]["result"]]
    finally:
        built.store.close()
    assert len(per_series) == 50
    assert len(set(per_series)) == 1, per_series
    return set(per_series[0])


def test_a_failed_fsync_refuses_that_batch_and_loses_nothing_acknowledged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real_sync = os.fdatasync
    fail = {"left": 0}

    def fdatasync(fd: int) -> None:
        if fail["left"]:
            fail["left"] -= 1
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_sync(fd)

    monkeypatch.setattr(record_log.os, "fdatasync", fdatasync)
    built = build(load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data"),
                                                 "server.inline_decode_max_bytes": 0}))
    acknowledged: list[int] = []
    try:
        with TestClient(create_app(built.services)) as c, caplog.at_level(logging.WARNING):
            for b in range(1, 4):
                assert c.post("/api/v1/write", content=_body(b), headers=RW).status_code == 204
                acknowledged.append(b)
            fail["left"] = 1
            r = c.post("/api/v1/write", content=_body(4), headers=RW)
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) >= 1
            assert "Input/output error" in r.text and "syncing" in r.text
            assert any("Input/output error" in rec.getMessage() for rec in caplog.records)
            for b in range(5, 8):
                assert c.post("/api/v1/write", content=_body(b), headers=RW).status_code == 204
                acknowledged.append(b)
    finally:
        built.store.close()
    monkeypatch.undo()
    assert _stored(tmp_path) == set(acknowledged)


def test_a_failed_fsync_then_kill_9_keeps_only_what_was_acknowledged(tmp_path: Path) -> None:
    """The same fault in a child process that is then killed with SIGKILL: the refused record was
    zeroed or abandoned with its segment, so replaying the head log brings back only the
    acknowledged batches."""
    child = textwrap.dedent(f"""
        import errno, os, signal, sys
        from starlette.testclient import TestClient
        from clearsight.api.app import create_app
        from clearsight.config import load_config
        from clearsight.server import build
        from clearsight.store.kernel import record_log
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.integration.test_fsync_failure import RW, _body
        real = os.fdatasync
        fail = {{"left": 0}}
        def fdatasync(fd):
            if fail["left"]:
                fail["left"] -= 1
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real(fd)
        record_log.os.fdatasync = fdatasync
        built = build(load_config(env={{}}, overrides={{"storage.data_dir": sys.argv[1],
                                                       "server.inline_decode_max_bytes": 0}}))
        now = int(sys.argv[2])  # the parent's: the samples are where it looks for them
        with TestClient(create_app(built.services)) as c:
            for b in (1, 2):
                assert c.post("/api/v1/write", content=_body(b, now), headers=RW).status_code == 204
            fail["left"] = 1
            assert c.post("/api/v1/write", content=_body(3, now), headers=RW).status_code == 503
            assert c.post("/api/v1/write", content=_body(4, now), headers=RW).status_code == 204
            print("acknowledged", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", child, str(tmp_path / "data"), str(NOW)], capture_output=True, text=True,
                       timeout=120, check=False)
    assert "acknowledged" in r.stdout, r.stderr[-3000:]
    assert r.returncode == -9
    assert _stored(tmp_path) == {1, 2, 4}
